//! The feed task of a cluster node: keeps a connection to Redis, tails the
//! shared log with `XREAD BLOCK` and puts every message into the local
//! channels with [`Channels::append`](crate::channel::Channels::append),
//! the path a local publish takes, so subscribers here see what every node
//! published, once and in id order.
//!
//! - First connect: load every channel's shared history, then tail the log
//!   from the entry that was last when loading began (what the load already
//!   holds, `append` refuses as stale).
//! - Every log entry names the entry before it. If that is not the entry
//!   this node applied last, the node missed something (the log was trimmed
//!   past it during an outage, or Redis lost its data and began a new log):
//!   it reloads the histories the same way, counts a gap, and says so in
//!   the log. Nothing is skipped silently.
//! - Any error or a reply later than the bound (half-open connection,
//!   stalled Redis): publishes are refused, the node reconnects with
//!   bounded backoff, raises the sequence to its high-water mark, and
//!   continues from the entry it applied last.

use std::sync::Arc;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Value, cmd};
use bytes::Bytes;

use super::redis::{Shared, unix_millis};
use super::redis_conn::{self, BLOCK_MILLIS, Backoff, FEED_TIMEOUT, PUBLISH_TIMEOUT};
use super::redis_script::{self as keys, history_pattern};
use super::redis_wire::{self, Entry};
use crate::channel::{Direct, Stamped};
use crate::state::State;
use crate::stats::{ClusterState, Stats};
use crate::subscriber::stream::write_direct;

/// Log entries read per XREAD.
const BATCH: usize = 512;
/// Keys asked for per SCAN step while loading histories.
const SCAN_COUNT: usize = 1_000;

/// Run until the daemon stops: connect, catch up, tail; on failure, pause
/// and start again.
pub(super) async fn run(shared: Arc<Shared>, state: Arc<State>) {
    // Id of the last log entry applied; 0 = nothing loaded yet.
    let mut cursor = 0u64;
    let mut backoff = Backoff::new();
    loop {
        let reason = session(&shared, &state, &mut cursor, &mut backoff).await;
        let was_up = state.stats.cluster_state() != ClusterState::Reconnecting;
        shared.set_unavailable(&reason);
        state.stats.set_cluster_state(ClusterState::Reconnecting);
        if was_up {
            Stats::add(&state.stats.cluster_reconnects, 1);
            tracing::warn!(error = %reason, "lost Redis; publishes refused while reconnecting");
        } else {
            tracing::debug!(error = %reason, "Redis still unreachable");
        }
        tokio::time::sleep(backoff.pause()).await;
    }
}

/// One connection's life; returns why it ended.
async fn session(
    shared: &Shared,
    state: &State,
    cursor: &mut u64,
    backoff: &mut Backoff,
) -> String {
    let result: Result<(), String> = async {
        let mut feed = redis_conn::connect(&shared.client, FEED_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let publish = redis_conn::connect(&shared.client, PUBLISH_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        state.stats.set_cluster_state(ClusterState::CatchingUp);
        let floor: String = shared
            .scripts
            .raise
            .key(keys::seq_key())
            .arg(shared.high_water())
            .invoke_async(&mut feed)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(sequence = %floor, from = *cursor, "connected to Redis");
        if *cursor == 0 {
            *cursor = reload(&mut feed, state, shared).await?;
        }
        shared.set_available(publish);
        backoff.reset();
        tail(&mut feed, shared, state, cursor).await
    }
    .await;
    match result {
        Ok(()) => "the publish connection failed".to_owned(),
        Err(e) => e,
    }
}

/// Read the log until something fails (`Ok` = a publish saw its
/// connection fail).
async fn tail(
    feed: &mut MultiplexedConnection,
    shared: &Shared,
    state: &State,
    cursor: &mut u64,
) -> Result<(), String> {
    loop {
        let mut read = cmd("XREAD");
        read.arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK_MILLIS)
            .arg("STREAMS")
            .arg(keys::log_key())
            .arg(format!("{cursor}-0"));
        let reply: Value = tokio::select! {
            reply = read.query_async(feed) => reply.map_err(|e| e.to_string())?,
            () = shared.broken.notified() => return Ok(()),
        };
        let entries = redis_wire::xread(&reply).map_err(|e| e.to_string())?;
        apply(feed, shared, state, cursor, &entries).await?;
        if entries.len() < BATCH {
            state.stats.set_cluster_state(ClusterState::Connected);
            if entries.is_empty() {
                state
                    .stats
                    .cluster_lag_ms
                    .store(0, std::sync::atomic::Ordering::Relaxed);
            }
            shared.synced.send_replace(true);
        }
    }
}

/// Apply `entries` (in log order) after `cursor`; on a break in the chain,
/// reload the histories instead and continue after them.
async fn apply(
    feed: &mut MultiplexedConnection,
    shared: &Shared,
    state: &State,
    cursor: &mut u64,
    entries: &[Entry],
) -> Result<(), String> {
    let ctx = state.publish_context();
    for entry in entries {
        if entry.prev != *cursor {
            Stats::add(&state.stats.cluster_gaps, 1);
            tracing::warn!(
                applied = *cursor,
                next = entry.id,
                follows = entry.prev,
                "missed part of the shared log (trimmed during an outage, or Redis lost its \
                 data); reloading the channel histories"
            );
            *cursor = reload(feed, state, shared).await?;
            return Ok(());
        }
        shared.observe(entry.id);
        *cursor = entry.id;
        if entry.channel.is_empty() {
            // Not written by our script: no channel to put it in.
            tracing::warn!(id = entry.id, "log entry without a channel; skipped");
            continue;
        }
        let message = Stamped {
            id: entry.id,
            timestamp: entry.millis / 1000,
            text: Bytes::copy_from_slice(&entry.text),
        };
        // Stale = already here (loaded from a history): nothing to do.
        let mut direct = Direct::default();
        if let Ok(message) = state
            .channels
            .append_direct(&entry.channel, message, ctx, &mut direct)
        {
            write_direct(state, &message, &mut direct);
        }
        let lag = unix_millis().saturating_sub(entry.millis);
        state
            .stats
            .cluster_lag_ms
            .store(lag, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// Load every channel's shared history into the local channels; returns
/// the log entry that was last before loading began, to tail from.
async fn reload(
    conn: &mut MultiplexedConnection,
    state: &State,
    shared: &Shared,
) -> Result<u64, String> {
    state.stats.set_cluster_state(ClusterState::CatchingUp);
    let top: Value = cmd("XREVRANGE")
        .arg(keys::log_key())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let top = redis_wire::range(&top)
        .map_err(|e| e.to_string())?
        .first()
        .map_or(0, |e| e.id);
    let mut messages: Vec<(Vec<u8>, Entry)> = Vec::new();
    let mut scan = 0u64;
    loop {
        let (next, found): (u64, Vec<Vec<u8>>) = cmd("SCAN")
            .arg(scan)
            .arg("MATCH")
            .arg(history_pattern())
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        for key in found {
            let Some(channel) = keys::channel_of(&key) else {
                continue;
            };
            let reply: Value = cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query_async(conn)
                .await
                .map_err(|e| e.to_string())?;
            let entries = redis_wire::range(&reply).map_err(|e| e.to_string())?;
            messages.extend(entries.into_iter().map(|e| (channel.to_vec(), e)));
        }
        if next == 0 {
            break;
        }
        scan = next;
    }
    // Id order, as the log would have delivered them.
    messages.sort_by_key(|(_, e)| e.id);
    // What a shared history holds is all a node can vouch for: a resume
    // from before its first message is a gap (it may have been trimmed).
    let mut firsts: std::collections::HashMap<&[u8], u64> = std::collections::HashMap::new();
    for (channel, entry) in &messages {
        firsts.entry(channel.as_slice()).or_insert(entry.id);
    }
    for (channel, first) in firsts {
        state.channels.history_begins_at(channel, first);
    }
    let max_age = state.config().max_message_age;
    let oldest = unix_millis().saturating_sub(max_age.saturating_mul(1000));
    let ctx = state.publish_context();
    let mut loaded = 0usize;
    for (channel, entry) in messages {
        shared.observe(entry.id);
        if entry.millis < oldest {
            continue;
        }
        let message = Stamped {
            id: entry.id,
            timestamp: entry.millis / 1000,
            text: Bytes::from(entry.text),
        };
        if state.channels.append(&channel, message, ctx).is_ok() {
            loaded += 1;
        }
    }
    shared.observe(top);
    // A channel with no shared history now either never had a message or
    // lost them all: a resume on it from before the log's top is a gap.
    state.channels.set_known_from(top.saturating_add(1));
    tracing::info!(loaded, log_top = top, "loaded the shared channel histories");
    Ok(top)
}
