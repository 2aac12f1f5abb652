//! The controller port: one task per publisher connection. Lines may arrive
//! several to a packet or split over packets; replies to everything that
//! arrived together are written together. ADDMESSAGE goes through the
//! broker ([`crate::broker`]) and its reply waits for the broker's answer:
//! `OK\t<id>` once the message is stored, `ERR <reason>` when it could not
//! be. Consecutive ADDMESSAGE lines of a packet are in flight together
//! (`pipeline.rs`); any other line runs after they are answered, so
//! replies keep the lines' order.
//!
//! QUIT behaves as the original's: the lines after it in the same packet
//! are still run and answered, then the connection closes; a second QUIT
//! in that packet closes at once and nothing is written (the lines after
//! it still run). What each listing prints is in `listing.rs`.
//!
//! Limits (docs/limits.md): a line longer than ControllerMaxLine is
//! answered `ERR Line too long` and the connection closed; ADDMESSAGE text
//! over MaxMessageSize or a channel name over MaxChannelNameLength is
//! answered `ERR …` and the connection goes on; a connection silent for
//! ControllerIdleTimeout seconds (when set) is closed.

pub mod command;
mod listing;
mod pipeline;

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, Bytes, BytesMut};
use meteor_proto::reply::OkReply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::broker;
use crate::connections::{Conn, StopReason};
use crate::limits::Limit;
use crate::state::State;
use crate::stats::Stats;
use command::{Command, channel_line, list_reply};

/// First size of the read buffer, and the size the reply buffer shrinks
/// back to after a large reply (a LISTCHANNELS of many channels).
const BUFFER: usize = 4096;
const KEEP_REPLY_CAPACITY: usize = 64 * 1024;

/// Serve one controller connection to its end.
pub async fn serve(state: Arc<State>, stream: TcpStream, conn: Arc<Conn>) {
    Stats::add(&state.stats.current_controllers, 1);
    if let Err(e) = handle(&state, stream, &conn).await {
        tracing::debug!(conn = conn.number, ip = %conn.ip, error = %e, "controller connection ended");
    }
    Stats::sub(&state.stats.current_controllers, 1);
    state.connections.remove(&conn);
}

/// Resolves after `secs` seconds of silence (never when 0).
async fn idle_deadline(secs: u64) {
    if secs == 0 {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
}

/// Where the connection stands after the lines run so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    Open,
    /// QUIT seen: answer what is pending, then close.
    Quitting,
    /// A second QUIT: close without writing.
    Dropped,
}

async fn handle(state: &State, mut stream: TcpStream, conn: &Conn) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(BUFFER);
    let mut replies: Vec<u8> = Vec::new();
    loop {
        // Read per packet, so a reload changes the limits of open
        // connections too.
        let config = state.config();
        let idle = idle_deadline(config.limits.controller_idle_timeout);
        let n = tokio::select! {
            read = stream.read_buf(&mut buf) => read?,
            _ = conn.wakeup.wait() => 0,
            () = idle => {
                state.stats.limits.refused(Limit::ControllerIdle);
                tracing::debug!(conn = conn.number, ip = %conn.ip, "controller idle past ControllerIdleTimeout; closed");
                let _ = stream.shutdown().await;
                return Ok(());
            }
        };
        if conn.stop_reason() == StopReason::Shutdown {
            let message = state.config().controller_shutdown_msg.clone();
            if !message.is_empty() {
                stream.write_all(message.as_bytes()).await?;
            }
            return Ok(());
        }
        if n == 0 {
            // A partial last line is not a command: run nothing.
            if !buf.is_empty() {
                tracing::debug!(
                    bytes = buf.len(),
                    "controller closed with an unterminated line"
                );
            }
            return Ok(());
        }
        Stats::add(&state.stats.total_inbound_bytes, n as u64);
        let mut session = Session::Open;
        // The lines stay in `buf` until all of them ran: publishes in
        // flight borrow their channel names from it.
        let mut done = 0;
        {
            let mut pending = pipeline::Pending::default();
            while let Some(len) = buf[done..].iter().position(|&b| b == b'\n') {
                let end = done + len;
                let mut line = &buf[done..end];
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                done = end + 1;
                if let Some(publish) = start_publish(state, line) {
                    pending.push(publish);
                    continue;
                }
                pending.settle(state, &mut replies).await;
                let unread = &buf[done..];
                if execute(state, conn, line, unread, &mut replies).await {
                    session = match session {
                        Session::Open => Session::Quitting,
                        _ => Session::Dropped,
                    };
                }
            }
            pending.settle(state, &mut replies).await;
        }
        buf.advance(done);
        if session == Session::Dropped {
            return Ok(());
        }
        if session == Session::Open && buf.len() > config.limits.controller_max_line {
            state.stats.limits.refused(Limit::ControllerLine);
            replies.extend_from_slice(b"ERR Line too long\r\n");
            session = Session::Quitting;
        }
        if !replies.is_empty() {
            // What the broker promises an acknowledged publish (the history
            // file: written) happens now, once for the whole batch; if it
            // cannot, these publishes get no OK: the connection closes.
            if state.broker.flush().is_err() {
                return Ok(());
            }
            let written = replies.len() as u64;
            // Counted before the write, so whoever has read this reply sees
            // it counted in a SHOWSTATS asked next.
            Stats::add(&state.stats.total_outbound_bytes, written);
            stream.write_all(&replies).await?;
            conn.bytes_written.fetch_add(written, Ordering::Relaxed);
            replies.clear();
            if replies.capacity() > KEEP_REPLY_CAPACITY {
                replies.shrink_to(BUFFER);
            }
        }
        if session == Session::Quitting {
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

/// The publish an ADDMESSAGE line asks for, started; `None` for any other
/// line, and for an ADDMESSAGE over a limit ([`execute`] answers those).
fn start_publish<'a>(state: &'a State, line: &'a [u8]) -> Option<broker::Publish<'a>> {
    let Ok(Command::AddMessage { channel, text }) = command::parse(line) else {
        return None;
    };
    let limits = &state.config().limits;
    if text.len() > limits.max_message_size || channel.len() > limits.max_channel_name_length {
        return None;
    }
    Some(broker::publish(
        state,
        channel,
        Bytes::copy_from_slice(text),
    ))
}

/// Run one line, appending its reply to `out` (the replies not yet
/// written); `unread` is what arrived after the line. Returns true for QUIT.
/// An ADDMESSAGE gets here only when [`start_publish`] did not take it
/// (over a limit); it is then answered with the limit's error.
async fn execute(
    state: &State,
    conn: &Conn,
    line: &[u8],
    unread: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let command = match command::parse(line) {
        Ok(c) => c,
        Err(e) => {
            out.extend_from_slice(e.as_bytes());
            out.extend_from_slice(command::EOL);
            return false;
        }
    };
    match command {
        Command::AddMessage { channel, text } => {
            let limits = &state.config().limits;
            if text.len() > limits.max_message_size {
                state.stats.limits.refused(Limit::MessageSize);
                out.extend_from_slice(b"ERR Message too large\r\n");
                return false;
            }
            if channel.len() > limits.max_channel_name_length {
                state.stats.limits.refused(Limit::ChannelNameLength);
                out.extend_from_slice(b"ERR Channel name too long\r\n");
                return false;
            }
            match broker::publish(state, channel, Bytes::copy_from_slice(text)).await {
                Ok(id) => {
                    Stats::add(&state.stats.controller_messages, 1);
                    out.extend_from_slice(OkReply(id).to_string().as_bytes());
                }
                Err(e) => out.extend_from_slice(format!("ERR {e}\r\n").as_bytes()),
            }
        }
        Command::CountSubscribers { channel } => {
            let n = state.channels.count_subscribers(channel);
            out.extend_from_slice(format!("OK {n}\r\n").as_bytes());
        }
        Command::ListChannels => {
            let lines = state
                .channels
                .list()
                .into_iter()
                .map(|c| channel_line(c.name.as_bytes(), c.messages, c.subscribers));
            list_reply(out, lines);
        }
        Command::ListSubscribers => list_reply(out, listing::subscribers(state)),
        Command::ListConnections => list_reply(out, listing::connections(state)),
        Command::Describe(number) => match number.and_then(|n| state.connections.get(n)) {
            Some(target) => {
                // The original shows a connection's unsent replies and
                // unread input; we hold those only for the asking one.
                let own = std::ptr::eq(Arc::as_ptr(&target), conn);
                let buffers = if own {
                    (&out[..], unread)
                } else {
                    (&[][..], &[][..])
                };
                let lines = listing::describe(&target, buffers);
                list_reply(out, lines);
            }
            None => out.extend_from_slice(b"ERR Unknown client\r\n"),
        },
        Command::ShowStats => list_reply(out, listing::stats(state)),
        Command::Quit => {
            out.extend_from_slice(b"OK\r\n");
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use tokio::net::TcpListener;

    use crate::broker::{Broker, BrokerError, Publish};
    use crate::connections::ConnKind;

    /// A broker that answers after a round trip (its future is not ready
    /// when first polled), as a cluster's does; `up: false` = unreachable.
    #[derive(Debug)]
    struct RoundTrip {
        next: AtomicU64,
        up: bool,
    }

    impl Broker for RoundTrip {
        fn publish<'a>(&'a self, _: &'a State, _: &'a [u8], _: Bytes) -> Publish<'a> {
            Publish::waiting(async move {
                tokio::task::yield_now().await;
                if self.up {
                    Ok(self.next.fetch_add(1, Ordering::SeqCst))
                } else {
                    Err(BrokerError::Unavailable("cluster unreachable".to_owned()))
                }
            })
        }

        fn next_id(&self) -> u64 {
            self.next.load(Ordering::SeqCst)
        }

        fn save(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Send `input` in one write to a controller connection over `broker`
    /// and read `want` bytes of replies.
    async fn exchange(broker: RoundTrip, input: &[u8], want: usize) -> (String, Arc<State>) {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = Arc::new(State::with_broker(config, Arc::new(broker)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let conn = Arc::new(Conn::new(1, ConnKind::Controller, peer.ip(), 0));
        tokio::spawn(serve(state.clone(), server, conn));
        client.write_all(input).await.unwrap();
        let mut got = vec![0; want];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got));
        read.await.expect("the replies arrive").unwrap();
        (String::from_utf8_lossy(&got).into_owned(), state)
    }

    #[tokio::test]
    async fn pipelined_lines_wait_for_the_broker_and_keep_their_order() {
        let broker = RoundTrip {
            next: AtomicU64::new(7),
            up: true,
        };
        let input = b"ADDMESSAGE a x\nADDMESSAGE b y\r\nCOUNTSUBSCRIBERS a\nQUIT\n";
        let want = "OK\t7\r\nOK\t8\r\nOK 0\r\nOK\r\n";
        let (got, _) = exchange(broker, input, want.len()).await;
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_broker_that_cannot_store_is_answered_err_with_its_reason() {
        let broker = RoundTrip {
            next: AtomicU64::new(1),
            up: false,
        };
        let want = "ERR cluster unreachable\r\nOK\r\n";
        let (got, state) = exchange(broker, b"ADDMESSAGE a x\nQUIT\n", want.len()).await;
        assert_eq!(got, want);
        assert!(state.channels.summary("a").is_none(), "nothing stored");
    }

    /// Publishes whose answers come only once they are all under way (as
    /// a round trip to Redis does for a pipeline): awaited one by one they
    /// never would.
    #[derive(Debug, Default)]
    struct Together {
        started: std::sync::atomic::AtomicUsize,
        want: usize,
    }

    impl Broker for Together {
        fn publish<'a>(&'a self, _: &'a State, _: &'a [u8], _: Bytes) -> Publish<'a> {
            Publish::waiting(async move {
                let mine = self.started.fetch_add(1, Ordering::SeqCst) as u64;
                while self.started.load(Ordering::SeqCst) < self.want {
                    tokio::task::yield_now().await;
                }
                Ok(100 + mine)
            })
        }

        fn next_id(&self) -> u64 {
            100
        }

        fn save(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_publishes_of_one_packet_are_in_flight_together_and_answered_in_order() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let broker = Together {
            want: 3,
            ..Together::default()
        };
        let state = Arc::new(State::with_broker(config, Arc::new(broker)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let conn = Arc::new(Conn::new(1, ConnKind::Controller, peer.ip(), 0));
        tokio::spawn(serve(state.clone(), server, conn));
        client
            .write_all(b"ADDMESSAGE a 1\nADDMESSAGE b 2\nADDMESSAGE c 3\nCOUNTSUBSCRIBERS a\n")
            .await
            .unwrap();
        let want = "OK\t100\r\nOK\t101\r\nOK\t102\r\nOK 0\r\n";
        let mut got = vec![0; want.len()];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got));
        read.await
            .expect("all three answered: they were in flight together")
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
}
