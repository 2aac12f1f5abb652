//! One subscriber's connection lifecycle: the request line for its mode
//! (a resume asks for what it has not seen yet: `.r<id>`, or meteord's
//! EventSource `Last-Event-ID`), connecting from its own
//! loopback source address, reading the response head, retrying with a
//! backoff, then reading deliveries until the stream ends (long-poll), the
//! server drops it, or a storm makes it reconnect.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::pipe::Plan;
use super::tally::{Shared, SubState, absorb, absorb_frames};
use super::websocket;
use crate::cli::Mode;
use crate::payload;

/// Attempts to (re)connect one subscriber before it gives up for good.
const CONNECT_ATTEMPTS: u32 = 20;
/// Pause after a failed attempt, multiplied by the attempt number.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// Bound on one connect + response-header exchange.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest response head accepted from the server.
const MAX_HEAD: usize = 8 * 1024;

/// How one (re)connect went, for the `READY` / `STORMED` phase totals.
pub struct Outcome {
    pub ok: bool,
    pub attempts_failed: u64,
    pub at: Instant,
    pub error: Option<String>,
}

/// Loopback source address for subscriber `global`: 127.0.1.1, 127.0.1.2, …
/// so that each address has its own ~28,000 ephemeral ports.
fn source_ip(global: usize, spread: usize) -> Ipv4Addr {
    let k = global % spread;
    Ipv4Addr::new(127, 0, (1 + k / 250) as u8, (1 + k % 250) as u8)
}

async fn connect(target: SocketAddr, src: Ipv4Addr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if target.is_ipv4() {
        sock.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
    }
    let std_stream: std::net::TcpStream = sock.into();
    tokio::net::TcpSocket::from_std_stream(std_stream)
        .connect(target)
        .await
}

/// A subscriber's request: the HTTP request, and what to send once the
/// response head came (a WebSocket resume's subscribe).
struct Request {
    http: String,
    after_head: Vec<u8>,
}

fn request(plan: &Plan, local: usize, st: &SubState, resume: bool) -> Request {
    let s = &plan.settings;
    let chan = s.channel_name(st.channel);
    let global = plan.first + local;
    if s.mode == Mode::Websocket {
        // A resume joins a channel nobody publishes to, then asks for its
        // own with `since`: the resume of issue 12's contract.
        let (path_chan, after_head) = if resume {
            let lobby = format!("b{}lobby", s.run_tag);
            (lobby, websocket::subscribe_frame(&chan, st.last_meteor_id))
        } else {
            (chan, Vec::new())
        };
        let http = format!(
            "GET {}/h{}x{global}/websocket/{path_chan} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             User-Agent: meteor-bench\r\n{}\r\n",
            s.push_prefix,
            s.run_tag,
            websocket::upgrade_headers()
        );
        return Request { http, after_head };
    }
    let http = if s.mode.is_nchan() {
        let mut extra = String::new();
        if s.mode == Mode::NchanWebsocket {
            extra.push_str(&websocket::upgrade_headers());
        } else if s.mode == Mode::NchanEventsource {
            extra.push_str("Accept: text/event-stream\r\n");
            if resume && !st.last_event_id.is_empty() {
                extra.push_str("Last-Event-ID: ");
                extra.push_str(&String::from_utf8_lossy(&st.last_event_id));
                extra.push_str("\r\n");
            }
        } else {
            extra.push_str("TE: chunked\r\n");
        }
        format!(
            "GET {}{chan} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: meteor-bench\r\n{extra}\r\n",
            s.nchan_sub
        )
    } else if s.mode == Mode::Eventsource {
        let path = format!(
            "{}/h{}x{global}/eventsource/{chan}",
            s.push_prefix, s.run_tag
        );
        crate::eventsource::request(&path, resume, st.last_meteor_id)
    } else {
        // Resume from the next id; with no id seen yet, the whole history
        // of this run's (fresh) channel is exactly what is still expected.
        let marker = match (resume, st.last_meteor_id) {
            (false, _) => String::new(),
            (true, Some(id)) => format!(".r{}", id + 1),
            (true, None) => ".h".to_owned(),
        };
        let query = s
            .token
            .as_ref()
            .map_or(String::new(), |token| format!("?token={token}"));
        format!(
            "GET {}/h{}x{global}/{}/{chan}{marker}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: meteor-bench\r\n\r\n",
            s.push_prefix,
            s.run_tag,
            s.mode.meteor_word()
        )
    };
    Request {
        http,
        after_head: Vec::new(),
    }
}

/// Connects, sends the request and reads the response head; the bytes after
/// the head stay in `buf`.
async fn open(
    plan: &Plan,
    local: usize,
    req: &Request,
    buf: &mut BytesMut,
) -> anyhow::Result<TcpStream> {
    let s = &plan.settings;
    let global = plan.first + local;
    let exchange = async {
        let mut stream = connect(s.target, source_ip(global, s.source_ips))
            .await
            .with_context(|| format!("connect to {}", s.target))?;
        stream.write_all(req.http.as_bytes()).await?;
        let status: &[u8] = if s.mode.is_websocket() {
            b"101"
        } else {
            b"200"
        };
        buf.clear();
        loop {
            if stream.read_buf(buf).await? == 0 {
                bail!("server closed the connection before the response head");
            }
            if let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") {
                let head = &buf[..end];
                if !(head.starts_with(b"HTTP/1.") && head.get(9..12) == Some(status)) {
                    let first = head.split(|&b| b == b'\r').next().unwrap_or(b"");
                    bail!("server answered {:?}", String::from_utf8_lossy(first));
                }
                buf.advance(end + 4);
                if !req.after_head.is_empty() {
                    stream.write_all(&req.after_head).await?;
                }
                return Ok(stream);
            }
            if buf.len() > MAX_HEAD {
                bail!("response head longer than {MAX_HEAD} bytes");
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, exchange)
        .await
        .context("connect/response timed out")?
}

/// Opens with retries; returns the stream and the number of failed attempts.
async fn open_retrying(
    plan: &Plan,
    local: usize,
    shared: &RefCell<Shared>,
    resume: bool,
    buf: &mut BytesMut,
) -> (Option<TcpStream>, u64, Option<String>) {
    let mut failures = 0;
    let mut first_error = None;
    for attempt in 1..=CONNECT_ATTEMPTS {
        let req = request(plan, local, &shared.borrow().subs[local], resume);
        match open(plan, local, &req, buf).await {
            Ok(stream) => return (Some(stream), failures, first_error),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
                tokio::time::sleep(RETRY_BACKOFF * attempt).await;
            }
        }
    }
    (None, failures, first_error)
}

/// One subscriber, from its first connect to the end of the run: reports
/// the first connect's [`Outcome`] (and each storm reconnect's) on
/// `outcomes`, and gives its connect permit back once the first connect is
/// over, whatever its outcome.
pub async fn run(
    local: usize,
    plan: Rc<Plan>,
    shared: Rc<RefCell<Shared>>,
    mut storm: watch::Receiver<u64>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let s = &plan.settings;
    let mut buf = BytesMut::with_capacity(s.read_buf);
    let (stream, failures, error) = open_retrying(&plan, local, &shared, false, &mut buf).await;
    drop(permit);
    let ok = stream.is_some();
    let _ = outcomes.send(Outcome {
        ok,
        attempts_failed: failures,
        at: Instant::now(),
        error,
    });
    let Some(mut stream) = stream else {
        shared.borrow_mut().subs[local].gave_up = true;
        return;
    };
    shared.borrow_mut().subs[local].connected = true;
    storm.mark_unchanged();
    let frames = s.mode.is_websocket();
    loop {
        if !buf.is_empty() {
            let n = buf.len();
            if frames {
                let pings = absorb_frames(&shared, local, &mut buf, n);
                let _ = stream.write_all(&websocket::pongs(pings)).await;
            } else {
                absorb(&shared, local, &mut buf, n);
            }
        }
        let storming = match read_until_end(
            &mut stream,
            &mut buf,
            &shared,
            local,
            &mut storm,
            (s.read_buf, frames),
        )
        .await
        {
            Ended::WorkerDone => return,
            Ended::Closed => false,
            Ended::Storm => true,
        };
        drop(stream);
        match reconnect(&plan, local, &shared, &outcomes, storming, &mut buf).await {
            Some(next) => stream = next,
            None => return,
        }
    }
}

/// Why a subscriber stopped reading its stream.
enum Ended {
    /// The server ended the response: normal for long-poll, a disconnect
    /// otherwise.
    Closed,
    /// A storm began: drop the connection and resume.
    Storm,
    /// The worker is finishing.
    WorkerDone,
}

/// Reads deliveries into the tally until the stream ends or a storm says
/// to drop it; `frames`: a WebSocket stream, whose pings are answered.
async fn read_until_end(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    shared: &RefCell<Shared>,
    local: usize,
    storm: &mut watch::Receiver<u64>,
    (read_buf, frames): (usize, bool),
) -> Ended {
    loop {
        if buf.capacity() - buf.len() < payload::PREFIX_MAX {
            buf.reserve(read_buf);
        }
        tokio::select! {
            r = stream.read_buf(buf) => match r {
                Ok(n) if n > 0 && frames => {
                    let pings = absorb_frames(shared, local, buf, n);
                    if pings > 0 && stream.write_all(&websocket::pongs(pings)).await.is_err() {
                        return Ended::Closed;
                    }
                }
                Ok(n) if n > 0 => absorb(shared, local, buf, n),
                _ => return Ended::Closed,
            },
            changed = storm.changed() => {
                return if changed.is_err() { Ended::WorkerDone } else { Ended::Storm };
            }
        }
    }
}

/// Opens the next connection, resuming after the last message seen, and
/// counts why: a long-poll re-poll, or a disconnect (then a reconnect) the
/// server caused; a storm's reconnect is reported as an [`Outcome`]
/// instead. `None`: the subscriber gave up.
async fn reconnect(
    plan: &Plan,
    local: usize,
    shared: &RefCell<Shared>,
    outcomes: &mpsc::UnboundedSender<Outcome>,
    storming: bool,
    buf: &mut BytesMut,
) -> Option<TcpStream> {
    let longpoll = plan.settings.mode == Mode::Longpoll;
    if !storming {
        let mut sh = shared.borrow_mut();
        if longpoll {
            sh.reconnects += 1;
        } else {
            sh.disconnects += 1;
        }
    }
    let (next, failures, error) = open_retrying(plan, local, shared, true, buf).await;
    if storming {
        let _ = outcomes.send(Outcome {
            ok: next.is_some(),
            attempts_failed: failures,
            at: Instant::now(),
            error,
        });
    }
    let Some(next) = next else {
        let mut sh = shared.borrow_mut();
        sh.subs[local].gave_up = true;
        sh.subs[local].connected = false;
        return None;
    };
    if !storming && !longpoll {
        shared.borrow_mut().reconnects += 1;
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_stay_in_loopback_and_spread() {
        assert_eq!(source_ip(0, 16), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(source_ip(17, 16), Ipv4Addr::new(127, 0, 1, 2));
        assert_eq!(source_ip(251, 1000), Ipv4Addr::new(127, 0, 2, 2));
        assert!(source_ip(62_499, 62_500).is_loopback());
    }
}
