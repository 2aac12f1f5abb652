//! The controller port: one task per publisher connection. Lines may arrive
//! several to a packet or split over packets; replies to everything that
//! arrived together are written together.

pub mod command;

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::broker;
use crate::registry::{Conn, ConnKind, StopReason};
use crate::state::{State, unix_now};
use crate::stats::Stats;
use command::{Command, channel_line, key_values, list_reply};

/// Longest line accepted. Messages are inserted into pages verbatim, so a
/// megabyte is already far more than any page wants; the bound keeps one
/// publisher from holding unbounded memory.
pub const MAX_LINE: usize = 1024 * 1024;

/// Serve one controller connection to its end.
pub async fn serve(state: Arc<State>, stream: TcpStream, conn: Arc<Conn>) {
    Stats::add(&state.stats.current_controllers, 1);
    if let Err(e) = handle(&state, stream, &conn).await {
        tracing::debug!(conn = conn.number, ip = %conn.ip, error = %e, "controller connection ended");
    }
    Stats::sub(&state.stats.current_controllers, 1);
    state.connections.remove(&conn);
}

async fn handle(state: &State, mut stream: TcpStream, conn: &Conn) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut replies = String::new();
    loop {
        let n = tokio::select! {
            read = stream.read_buf(&mut buf) => read?,
            _ = conn.wakeup.wait() => 0,
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
        let mut quit = false;
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let mut line = &buf[..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            quit = execute(state, line, &mut replies);
            buf.advance(end + 1);
            if quit {
                break;
            }
        }
        if buf.len() > MAX_LINE {
            replies.push_str("ERR Line too long\r\n");
            quit = true;
        }
        if !replies.is_empty() {
            stream.write_all(replies.as_bytes()).await?;
            conn.bytes_written
                .fetch_add(replies.len() as u64, Ordering::Relaxed);
            replies.clear();
            if replies.capacity() > 64 * 1024 {
                replies.shrink_to(4096);
            }
        }
        if quit {
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

/// Run one line, appending its reply; returns true for QUIT.
fn execute(state: &State, line: &[u8], out: &mut String) -> bool {
    let command = match command::parse(line) {
        Ok(c) => c,
        Err(e) => {
            out.push_str(e);
            out.push_str("\r\n");
            return false;
        }
    };
    match command {
        Command::AddMessage { channel, text } => {
            match broker::publish(state, channel, Bytes::copy_from_slice(text)) {
                // Formatting into a String cannot fail.
                Ok(id) => {
                    let _ = write!(out, "OK\t{id}\r\n");
                }
                Err(e) => {
                    let _ = write!(out, "ERR {e}\r\n");
                }
            }
        }
        Command::CountSubscribers { channel } => {
            let n = std::str::from_utf8(channel)
                .map(|c| state.channels.count_subscribers(c))
                .unwrap_or(0);
            let _ = write!(out, "OK {n}\r\n");
        }
        Command::ListChannels => {
            let lines = state
                .channels
                .list()
                .into_iter()
                .map(|c| channel_line(&c.name, c.messages, c.subscribers));
            out.push_str(&list_reply(lines));
        }
        Command::ListSubscribers => out.push_str(&list_reply(subscriber_lines(state))),
        Command::ListConnections => out.push_str(&list_reply(connection_lines(state))),
        Command::Describe(number) => match state.connections.get(number) {
            Some(conn) => out.push_str(&list_reply(describe(&conn))),
            None => out.push_str("ERR Unknown client\r\n"),
        },
        Command::ShowStats => out.push_str(&list_reply(stats_lines(state))),
        Command::Quit => {
            out.push_str("OK\r\n");
            return true;
        }
    }
    false
}

fn subscriber_lines(state: &State) -> Vec<String> {
    let now = unix_now();
    state
        .connections
        .all()
        .iter()
        .filter_map(|conn| {
            let d = conn.details.get()?;
            let left = if d.max_time > 0 {
                (u64::from(conn.started) + d.max_time).saturating_sub(now)
            } else {
                0
            };
            Some(format!(
                "{} {} {} {} {} {} \"{}\"",
                d.hostid(),
                conn.ip,
                conn.started,
                d.max_time,
                left,
                conn.messages.load(Ordering::Relaxed),
                d.user_agent().replace('"', "'")
            ))
        })
        .collect()
}

fn connection_lines(state: &State) -> Vec<String> {
    state
        .connections
        .all()
        .iter()
        .map(|conn| {
            let mut line = format!("{} {} {}", conn.number, conn.ip, conn.kind.meteor_type());
            if let Some(d) = conn.details.get() {
                line.push(' ');
                line.push_str(d.hostid());
            }
            line
        })
        .collect()
}

fn describe(conn: &Conn) -> Vec<String> {
    let now = unix_now();
    let mut pairs: Vec<(&str, String)> = vec![
        ("socketFN", conn.number.to_string()),
        ("connectionStart", conn.started.to_string()),
        (
            "writeBuffer",
            conn.write_pending.load(Ordering::Relaxed).to_string(),
        ),
        ("readBuffer", "0".to_string()),
        (
            "bytesWritten",
            conn.bytes_written.load(Ordering::Relaxed).to_string(),
        ),
        ("type", conn.kind.meteor_type().to_string()),
        ("ip", conn.ip.to_string()),
        (
            "age",
            now.saturating_sub(u64::from(conn.started)).to_string(),
        ),
    ];
    if conn.kind == ConnKind::Subscriber
        && let Some(d) = conn.details.get()
    {
        pairs.push(("mode", d.mode().to_string()));
        pairs.push(("headerBuffer", "0".to_string()));
        pairs.push((
            "messageCount",
            conn.messages.load(Ordering::Relaxed).to_string(),
        ));
        pairs.push(("connectionTimeLimit", d.max_time.to_string()));
        pairs.push(("useragent", d.user_agent().to_string()));
        pairs.push(("subscriberID", d.hostid().to_string()));
    }
    key_values(pairs)
}

fn stats_lines(state: &State) -> Vec<String> {
    let real_subscribers = state.stats.current_subscribers.load(Ordering::Relaxed);
    let mut pairs: Vec<(&str, String)> = vec![
        ("uptime", state.stats.uptime_secs().to_string()),
        ("channel_count", state.channels.len().to_string()),
        ("connection_count", state.connections.len().to_string()),
        ("real_subscribers", real_subscribers.to_string()),
    ];
    pairs.extend(
        state
            .stats
            .counters()
            .into_iter()
            .map(|(k, v)| (k, v.to_string())),
    );
    pairs.push(("next_message_id", state.ids.peek().to_string()));
    key_values(pairs)
}
