//! The cluster broker (`ClusterRedis`, issue 13): publishes go to Redis,
//! where one Lua script takes the id from the cluster-wide sequence, stores
//! the message in the channel's shared history and appends it to the shared
//! log (`redis_script.rs`); the publish resolves with that id only once
//! Redis has answered, and stores nothing locally. The feed task
//! (`redis_feed.rs`) tails the log and puts every message, this node's
//! own included, into the local channels, so each node delivers each
//! message once and in id order.
//!
//! A publish while the node has no connection to Redis is refused at once
//! (`ERR Redis unreachable: …`): nothing is accepted that could be lost,
//! and no id is ever decided locally.
//!
//! The node's high-water mark (the highest id it has handed out or seen,
//! starting from the clock in microseconds as a single node's ids do) is
//! sent with every publish and on every reconnect as the sequence's floor,
//! so ids never go back, even after Redis restarts without its data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::MultiplexedConnection;
use bytes::Bytes;
use tokio::sync::{Notify, watch};

use super::redis_conn;
use super::redis_feed;
use super::redis_script::{self, LOG_KEEP, PublishArgs, Scripts};
use super::{Broker, BrokerError, Publish};
use crate::state::State;
use crate::stats::{ClusterState, Stats};

/// What the broker and its feed task share.
#[derive(Debug)]
pub(super) struct Shared {
    pub client: Client,
    pub scripts: Scripts,
    /// The connection publishes use; `None` while Redis is unreachable.
    publish: Mutex<Option<MultiplexedConnection>>,
    /// Why the last connection attempt or command failed (for ERR).
    last_error: Mutex<String>,
    high_water: AtomicU64,
    /// A publish saw its connection fail: the feed reconnects both.
    pub broken: Notify,
    /// True once the feed has loaded the shared state and caught up with
    /// the log for the first time.
    pub synced: watch::Sender<bool>,
}

impl Shared {
    pub fn high_water(&self) -> u64 {
        self.high_water.load(Ordering::Relaxed)
    }

    pub fn observe(&self, id: u64) {
        self.high_water.fetch_max(id, Ordering::Relaxed);
    }

    fn publish_connection(&self) -> Option<MultiplexedConnection> {
        self.publish
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Connected (and publishing) again, with `connection` for publishes.
    pub fn set_available(&self, connection: MultiplexedConnection) {
        *self.publish.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection);
    }

    /// Redis is out of reach: refuse publishes with `reason`.
    pub fn set_unavailable(&self, reason: &str) {
        *self.publish.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = one_line(reason);
    }

    fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A reason fit for an `ERR` line.
fn one_line(reason: &str) -> String {
    reason.replace(['\r', '\n'], " ")
}

/// The broker of a cluster node.
#[derive(Debug)]
pub struct RedisBroker {
    shared: Arc<Shared>,
}

impl RedisBroker {
    /// A broker for `url` (not connected yet: [`RedisBroker::start`]
    /// does that), whose ids start above `floor`.
    pub fn new(url: &str, floor: u64) -> Result<RedisBroker, String> {
        let client = redis_conn::client(url).map_err(|e| e.to_string())?;
        Ok(RedisBroker {
            shared: Arc::new(Shared {
                client,
                scripts: Scripts::new(),
                publish: Mutex::new(None),
                last_error: Mutex::new("not connected yet".to_owned()),
                high_water: AtomicU64::new(floor),
                broken: Notify::new(),
                synced: watch::channel(false).0,
            }),
        })
    }

    /// Start the feed (on the current tokio runtime), then wait up to
    /// `wait` for it to load the shared histories and catch up with the
    /// log: the daemon accepts no connection before that, so a late node
    /// serves resumes from the shared history. If Redis is unreachable
    /// that long the node serves anyway, refusing publishes, and loads
    /// everything when Redis answers.
    pub async fn start(&self, state: Arc<State>, wait: Duration) {
        state.stats.set_cluster_state(ClusterState::Reconnecting);
        let mut synced = self.shared.synced.subscribe();
        tokio::spawn(redis_feed::run(self.shared.clone(), state));
        let ready = tokio::time::timeout(wait, synced.wait_for(|s| *s)).await;
        if ready.is_err() {
            tracing::warn!(
                error = %self.shared.last_error(),
                "not caught up with the cluster yet; serving, publishes refused until Redis answers"
            );
        }
    }
}

impl Broker for RedisBroker {
    fn publish<'a>(&'a self, state: &'a State, channel: &'a [u8], text: Bytes) -> Publish<'a> {
        let Some(mut connection) = self.shared.publish_connection() else {
            Stats::add(&state.stats.cluster_publish_errors, 1);
            return Publish::done(Err(BrokerError::Unavailable(format!(
                "Redis unreachable: {}",
                self.shared.last_error()
            ))));
        };
        let config = state.config();
        let args = PublishArgs {
            millis: unix_millis(),
            floor: self.shared.high_water(),
            keep: config.max_messages_per_channel,
            max_age: config.max_message_age,
        };
        let shared = &self.shared;
        Publish::waiting(async move {
            let reply: Result<String, _> = shared
                .scripts
                .publish
                .key(redis_script::seq_key())
                .key(redis_script::log_key())
                .key(redis_script::history_key(channel))
                .arg(channel)
                .arg(text.as_ref())
                .arg(args.millis)
                .arg(args.floor)
                .arg(args.keep_arg())
                .arg(LOG_KEEP)
                .arg(args.max_age)
                .invoke_async(&mut connection)
                .await;
            let failed = |reason: String| {
                Stats::add(&state.stats.cluster_publish_errors, 1);
                Err(BrokerError::Unavailable(one_line(&reason)))
            };
            match reply {
                Ok(id) => match id.parse::<u64>() {
                    Ok(id) => {
                        shared.observe(id);
                        Stats::add(&state.stats.unique_messages, 1);
                        Ok(id)
                    }
                    Err(_) => failed(format!("Redis answered {id:?} for an id")),
                },
                Err(e) => {
                    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                        // The connection may be dead while the feed's
                        // still looks fine: have the feed reconnect both.
                        // Only a feed tailing now is told (no permit is
                        // kept for a later session, which would reconnect
                        // a fresh connection for nothing).
                        shared.broken.notify_waiters();
                    }
                    failed(format!("Redis: {e}"))
                }
            }
        })
    }

    fn next_id(&self) -> u64 {
        // A lower bound: above everything this node has seen; the next
        // id the cluster assigns is at least this.
        self.shared.high_water().saturating_add(1)
    }

    fn save(&self) -> std::io::Result<()> {
        // Redis keeps the sequence; every node's floor covers the rest.
        Ok(())
    }
}

/// Milliseconds since the epoch, the daemon clock's.
pub(super) fn unix_millis() -> u64 {
    u64::try_from(crate::clock::unix_time().as_millis()).unwrap_or(u64::MAX)
}
