//! The bare server (`meteor-bench --bare-server`): the least any push server
//! has to do for a fan-out, as a yardstick for the real ones.
//!
//! It speaks just enough of the Meteor protocol for the load generator:
//! subscribers send one request whose last path segment names the channel
//! (`/push/<host>/<mode>/<chan>.<marker>`), get a fixed response head and
//! then one `<script>p(<id>,"<chan>","<text>");</script>` frame per message;
//! the controller takes `ADDMESSAGE <chan> <text>` and answers `OK\t<id>`.
//! Each message is formatted once and written with one non-blocking `write`
//! per subscriber from `--threads` plain threads, each owning a share of the
//! subscribers. No history, no pings, no buffering, no timers: a subscriber
//! whose socket is full is dropped and counted. Running a scenario against
//! it measures what the kernel and the generator cost on this machine, so a
//! real server's figures can be read as "how far above the floor".
//!
//! Only for `idle`, `fanout` and `many-channels`: it keeps no history, so it
//! cannot serve `.r<id>` resumes (storm), and it drops instead of waiting
//! (max-throughput would measure drops).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use meteor_proto::reply::OkReply;

/// Longest subscriber request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Listen backlog (the kernel caps it at net.core.somaxconn).
const LISTEN_BACKLOG: i32 = 4096;
/// Threads accepting subscribers.
const ACCEPTORS: usize = 8;
/// Bound on a subscriber sending its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The fixed response head: the same shape as meteord's xhrinteractive one.
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
Cache-Control: no-cache, must-revalidate\r\nPragma: no-cache\r\n\r\n";

/// `meteor-bench --bare-server`: the yardstick server (see the module doc).
#[derive(Debug, Parser)]
#[command(name = "meteor-bench --bare-server")]
pub struct Args {
    /// Subscriber address; port 0 = any free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Controller address; port 0 = any free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub controller: SocketAddr,
    /// Writer threads; subscribers are dealt to them in turn.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// The channel named by a subscriber request line: the last path segment,
/// up to its first `.` (the start marker), e.g.
/// `GET /push/h1/xhrinteractive/chat.b10 HTTP/1.1` → `chat`.
pub fn channel_of(request_line: &str) -> Option<&str> {
    let mut words = request_line.split(' ');
    let (method, path) = (words.next()?, words.next()?);
    if method != "GET" {
        return None;
    }
    let last = path.rsplit('/').next()?;
    let chan = last.split('.').next()?;
    (!chan.is_empty()).then_some(chan)
}

/// One controller line → the channel and text to publish, or the reply for
/// a line that is not an ADDMESSAGE.
pub fn parse_command(line: &str) -> Result<(&str, &str), &'static str> {
    let rest = line
        .strip_prefix("ADDMESSAGE ")
        .ok_or("ERR bare server knows only ADDMESSAGE\r\n")?;
    let (chan, text) = rest.split_once(' ').unwrap_or((rest, ""));
    if chan.is_empty() {
        return Err("ERR Invalid command syntax\r\n");
    }
    Ok((chan, text))
}

/// One message as every subscriber receives it.
pub fn frame(id: u64, chan: &str, text: &str) -> Vec<u8> {
    format!("<script>p({id},\"{chan}\",\"{text}\");</script>\r\n").into_bytes()
}

/// One writer thread's subscribers, by channel.
type Share = Mutex<HashMap<String, Vec<TcpStream>>>;

struct Server {
    shares: Vec<Arc<Share>>,
    writers: Vec<mpsc::Sender<(String, Arc<[u8]>)>>,
    next_id: AtomicU64,
    dropped: Arc<AtomicU64>,
}

/// Runs until killed. Prints `bare server listening <sub> <ctl>` on stdout
/// once both ports are open.
pub fn main(args: Args) -> anyhow::Result<()> {
    if args.threads == 0 || args.threads > 64 {
        bail!("--threads must be 1..=64");
    }
    for addr in [args.listen, args.controller] {
        if !addr.ip().is_loopback() {
            bail!("{addr} is not a loopback address; the bare server listens on loopback only");
        }
    }
    meteor_proto::fd_limit::raise_fd_limit();
    let subs = listen(args.listen)?;
    let ctl = listen(args.controller)?;
    let dropped = Arc::new(AtomicU64::new(0));
    let mut shares = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..args.threads {
        let share: Arc<Share> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let (mine, dropped) = (Arc::clone(&share), Arc::clone(&dropped));
        std::thread::spawn(move || write_loop(&mine, &rx, &dropped));
        shares.push(share);
        writers.push(tx);
    }
    let server = Arc::new(Server {
        shares,
        writers,
        next_id: AtomicU64::new(1),
        dropped,
    });
    println!(
        "bare server listening {} {}",
        subs.local_addr()?,
        ctl.local_addr()?
    );
    std::io::stdout().flush()?;
    let for_ctl = Arc::clone(&server);
    std::thread::spawn(move || {
        for conn in ctl.incoming().flatten() {
            let server = Arc::clone(&for_ctl);
            std::thread::spawn(move || {
                if let Err(e) = serve_controller(&server, conn) {
                    eprintln!("bare server: controller: {e:#}");
                }
            });
        }
    });
    // Several acceptors, because each reads its subscriber's request head
    // before taking the next connection.
    let turn = Arc::new(AtomicU64::new(0));
    let acceptors: Vec<_> = (0..ACCEPTORS)
        .map(|_| {
            let (subs, server, turn) = (subs.try_clone(), Arc::clone(&server), Arc::clone(&turn));
            std::thread::spawn(move || subs.map(|subs| accept_loop(&subs, &server, &turn)))
        })
        .collect();
    for a in acceptors {
        a.join()
            .map_err(|_| anyhow::anyhow!("acceptor thread panicked"))??;
    }
    Ok(())
}

fn accept_loop(subs: &TcpListener, server: &Server, turn: &AtomicU64) {
    for conn in subs.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                // Out of fds or similar: say so and keep serving the others.
                eprintln!("bare server: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        match accept_subscriber(conn) {
            Ok((chan, stream)) => {
                let k = turn.fetch_add(1, Ordering::Relaxed) as usize % server.shares.len();
                server.shares[k]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(chan)
                    .or_default()
                    .push(stream);
            }
            Err(e) => eprintln!("bare server: subscriber: {e:#}"),
        }
    }
}

/// A listener with a backlog as deep as meteord's: std's default (128)
/// drops SYNs when the generator opens hundreds at once, and each drop
/// costs the client a one-second retransmit.
fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("bind {addr}"))?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Reads the request head, answers the response head, hands back the
/// channel and the socket (non-blocking, no Nagle, like meteord's).
fn accept_subscriber(mut conn: TcpStream) -> anyhow::Result<(String, TcpStream)> {
    conn.set_read_timeout(Some(HEAD_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            bail!("request head over {MAX_HEAD} bytes");
        }
        let n = conn.read(&mut buf).context("reading the request head")?;
        if n == 0 {
            bail!("closed before the end of the request head");
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("");
    let Some(chan) = channel_of(line) else {
        conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")?;
        bail!("no channel in {line:?}");
    };
    conn.write_all(RESPONSE_HEAD)?;
    conn.set_nodelay(true)?;
    conn.set_nonblocking(true)?;
    Ok((chan.to_owned(), conn))
}

fn serve_controller(server: &Server, conn: TcpStream) -> anyhow::Result<()> {
    let mut out = conn.try_clone()?;
    for line in BufReader::new(conn).lines() {
        let line = line?;
        let line = line.trim_end_matches('\r');
        match parse_command(line) {
            Ok((chan, text)) => {
                let id = server.next_id.fetch_add(1, Ordering::Relaxed);
                let bytes: Arc<[u8]> = frame(id, chan, text).into();
                for w in &server.writers {
                    // A writer thread never exits while the server runs.
                    let _ = w.send((chan.to_owned(), Arc::clone(&bytes)));
                }
                write!(out, "{}", OkReply(id))?;
            }
            Err(reply) => out.write_all(reply.as_bytes())?,
        }
    }
    let dropped = server.dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        eprintln!("bare server: {dropped} subscribers dropped (socket full or closed)");
    }
    Ok(())
}

/// One writer: for every message, one `write` per subscriber of its share
/// on that channel. A short or failed write drops the subscriber.
fn write_loop(share: &Share, rx: &mpsc::Receiver<(String, Arc<[u8]>)>, dropped: &AtomicU64) {
    while let Ok((chan, bytes)) = rx.recv() {
        let mut share = share.lock().unwrap_or_else(|e| e.into_inner());
        let Some(streams) = share.get_mut(&chan) else {
            continue;
        };
        let before = streams.len();
        streams.retain_mut(|s| match s.write(&bytes) {
            Ok(n) if n == bytes.len() => true,
            Ok(_) => false,
            Err(e) if e.kind() == ErrorKind::Interrupted => s.write_all(&bytes).is_ok(),
            Err(_) => false,
        });
        dropped.fetch_add((before - streams.len()) as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_is_the_last_segment_before_the_marker() {
        assert_eq!(
            channel_of("GET /push/h1/xhrinteractive/chat.b10 HTTP/1.1"),
            Some("chat")
        );
        assert_eq!(channel_of("GET /push/h1/iframe/c7 HTTP/1.1"), Some("c7"));
        assert_eq!(channel_of("POST /push/h1/iframe/c7 HTTP/1.1"), None);
        assert_eq!(channel_of("GET /push/h1/iframe/.r5 HTTP/1.1"), None);
        assert_eq!(channel_of("GET"), None);
    }

    #[test]
    fn only_addmessage_is_published() {
        assert_eq!(
            parse_command("ADDMESSAGE c hello world"),
            Ok(("c", "hello world"))
        );
        assert_eq!(parse_command("ADDMESSAGE c"), Ok(("c", "")));
        assert!(parse_command("ADDMESSAGE  x").is_err());
        assert!(parse_command("COUNTSUBSCRIBERS c").is_err());
    }

    #[test]
    fn frame_is_what_the_scanner_reads() {
        let mut body = Vec::new();
        crate::payload::encode(3, 1_700_000_000_000_000, 60, &mut body);
        let text = String::from_utf8(body).unwrap();
        let f = frame(42, "c", &text);
        let mut seen = Vec::new();
        crate::payload::scan(&f, |d| seen.push((d.seq, d.meteor_id)));
        assert_eq!(seen, vec![(3, Some(42))]);
    }
}
