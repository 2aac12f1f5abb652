//! The lines of LISTSUBSCRIBERS, LISTCONNECTIONS, DESCRIBE and SHOWSTATS,
//! as the original prints them.
//!
//! - Only persistent (streaming) subscribers have a subscriber id in these
//!   listings: the original forgets a poll's id as soon as it is answered,
//!   and a stream's once it is asked to stop.
//! - A connection time limit exists only when the mode's MaxTime is set;
//!   without one LISTSUBSCRIBERS prints an empty limit and, for the time
//!   left, minus the current time (the original's arithmetic on a missing
//!   value), and DESCRIBE has no `connectionTimeLimit` line.
//! - A missing user agent is `-`; one that was sent is printed as sent,
//!   quotes included.

use std::sync::atomic::Ordering;

use super::command::key_values;
use crate::connections::{Conn, ConnKind, StopReason};
use crate::state::{State, unix_now};
use crate::subscriber::StreamDetails;

/// The stream details of a connection that still answers to its id.
fn streaming(conn: &Conn) -> Option<&StreamDetails> {
    conn.details
        .get()
        .filter(|d| d.persist && conn.stop_reason() == StopReason::Running)
}

fn user_agent(d: &StreamDetails) -> &str {
    match d.user_agent() {
        "" => "-",
        ua => ua,
    }
}

/// `connectionTimeLimit`: start + MaxTime, when MaxTime is set.
fn time_limit(conn: &Conn, d: &StreamDetails) -> Option<u64> {
    (d.max_time > 0).then(|| u64::from(conn.started) + d.max_time)
}

pub fn subscribers(state: &State) -> Vec<Vec<u8>> {
    let now = unix_now() as i64;
    state
        .connections
        .all()
        .iter()
        .filter_map(|conn| {
            let d = streaming(conn)?;
            let limit = time_limit(conn, d);
            let left = limit.map_or(0, |l| l as i64) - now;
            let limit = limit.map(|l| l.to_string()).unwrap_or_default();
            Some(
                format!(
                    "{} {} {} {limit} {left} {} \"{}\"",
                    d.hostid(),
                    conn.ip,
                    conn.started,
                    conn.messages.load(Ordering::Relaxed),
                    user_agent(d)
                )
                .into_bytes(),
            )
        })
        .collect()
}

pub fn connections(state: &State) -> Vec<Vec<u8>> {
    state
        .connections
        .all()
        .iter()
        .map(|conn| {
            let mut line = format!("{} {} {}", conn.number, conn.ip, conn.kind.meteor_type());
            if let Some(d) = streaming(conn) {
                line.push(' ');
                line.push_str(d.hostid());
            }
            line.into_bytes()
        })
        .collect()
}

/// DESCRIBE's lines, in the original's order. `buffers` are the
/// connection's unsent output and unread input, as far as we know them.
pub fn describe(conn: &Conn, buffers: (&[u8], &[u8])) -> Vec<Vec<u8>> {
    let text = |v: &dyn ToString| v.to_string().into_bytes();
    let subscriber = conn.kind == ConnKind::Subscriber;
    let details = conn.details.get().filter(|_| subscriber);
    let mut pairs: Vec<(&str, Vec<u8>)> = vec![
        ("socketFN", text(&conn.number)),
        ("connectionStart", text(&conn.started)),
        ("writeBuffer", buffers.0.to_vec()),
        ("readBuffer", buffers.1.to_vec()),
        (
            "bytesWritten",
            text(&conn.bytes_written.load(Ordering::Relaxed)),
        ),
        ("type", conn.kind.meteor_type().as_bytes().to_vec()),
    ];
    if let Some(d) = details {
        pairs.push(("mode", d.mode().as_bytes().to_vec()));
    }
    pairs.push(("ip", text(&conn.ip)));
    if subscriber {
        if details.is_none() {
            // Still reading the request head (or answering a document).
            pairs.push(("headerBuffer", Vec::new()));
        }
        pairs.push(("messageCount", text(&conn.messages.load(Ordering::Relaxed))));
    }
    let age = unix_now().saturating_sub(u64::from(conn.started));
    pairs.push(("age", text(&age)));
    if let Some(d) = details {
        if let Some(limit) = time_limit(conn, d) {
            pairs.push(("connectionTimeLimit", text(&limit)));
        }
        pairs.push(("useragent", user_agent(d).as_bytes().to_vec()));
    }
    if let Some(d) = streaming(conn).filter(|_| subscriber) {
        pairs.push(("subscriberID", d.hostid().as_bytes().to_vec()));
    }
    key_values(pairs)
}

pub fn stats(state: &State) -> Vec<Vec<u8>> {
    let open = state.connections.len_by_kind();
    let pollers = state.connections.recent_pollers(unix_now());
    let mut pairs: Vec<(&str, Vec<u8>)> = vec![
        ("uptime", state.stats.uptime_secs().to_string().into_bytes()),
        (
            "channel_count",
            state.channels.len().to_string().into_bytes(),
        ),
        (
            "connection_count",
            state.connections.len().to_string().into_bytes(),
        ),
        (
            "real_subscribers",
            (open.0 + pollers).to_string().into_bytes(),
        ),
    ];
    pairs.extend(
        state
            .stats
            .showstats_counters(open)
            .into_iter()
            .map(|(k, v)| (k, v.to_string().into_bytes())),
    );
    pairs.extend(
        state
            .stats
            .cluster_lines()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    key_values(pairs)
}
