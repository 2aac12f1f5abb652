//! The publish seam: every publish — the controller's ADDMESSAGE, UDP
//! datagrams, and later any other path — goes through the daemon's one
//! [`Broker`] (held in [`State`]), so ids, history and counters behave the
//! same whatever the source. A broker decides the message's id and gets
//! the message into [`crate::channel::Channels`]; the reply (`OK\t<id>`)
//! waits for it, which is why [`Broker::publish`] returns a future.
//!
//! The first broker is [`LocalBroker`] (`local.rs`): one process, ids from
//! an [`crate::ids::IdSource`] taken under the channel lock, the message
//! stored and its subscribers woken before the future is polled, so its
//! [`Publish`] is ready at once and costs no allocation.
//!
//! The Redis broker (issue 13) is [`RedisBroker`] (`redis.rs`, with its
//! connections in `redis_conn.rs`, its Lua in `redis_script.rs`, its feed
//! task in `redis_feed.rs` and reply decoding in `redis_wire.rs`), chosen
//! in `main.rs` from `ClusterRedis` and handed to [`State::with_broker`].
//! Its `publish` returns [`Publish::waiting`] around the round trip: a Lua
//! script takes the id from the one cluster-wide sequence, stores the
//! message in the shared, trimmed history and appends it to the shared log;
//! the future resolves with that id (the controller answers only then) or
//! with [`BrokerError::Unavailable`] when Redis is unreachable, which the
//! controller answers as `ERR <reason>`. Nothing is stored locally on that
//! path: a feed task of the broker (started with the daemon's `Arc<State>`)
//! tails the shared log and puts each message, its own included, into the
//! channels with [`crate::channel::Channels::append`], the same path a
//! local publish takes, so every node delivers each message once and in id
//! order; after a reconnect it catches up from the log, and `append`'s
//! refusal of ids at or below a channel's last makes a replayed stretch
//! harmless. `save` has nothing to do there (Redis keeps the sequence).
//!
//! With `HistoryFile` set, [`crate::persist::DurableBroker`] wraps the
//! local broker: the message is appended to the file before the reply.
//!
//! A channel name is whatever bytes the publisher sent (the command grammar
//! already made sure it is non-empty and has no white space); the original
//! stores messages on any such name, and so do we.

mod local;
mod redis;
mod redis_conn;
mod redis_feed;
mod redis_script;
mod redis_wire;

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

pub use local::LocalBroker;
pub use redis::RedisBroker;

use crate::state::State;

/// Where publishes go.
pub trait Broker: Debug + Send + Sync {
    /// Publish `text` on `channel`. Resolves to the message's id once the
    /// message is stored where subscribers read it, or to why nothing was
    /// stored.
    fn publish<'a>(&'a self, state: &'a State, channel: &'a [u8], text: Bytes) -> Publish<'a>;

    /// The id the next publish will get (or a lower bound of it): what a
    /// gap on an empty history names as the first id a client will get.
    fn next_id(&self) -> u64;

    /// Clean stop: record what a restart needs to continue the id sequence
    /// without a gap.
    fn save(&self) -> io::Result<()>;

    /// Called before the replies to publishes are written (and after a UDP
    /// publish): whatever the broker promises about an acknowledged
    /// message that it has deferred until now happens here, once for every
    /// publish since the last call (the history file's broker writes its
    /// buffered records with one system call). An error means those
    /// publishes are not stored as promised: their `OK`s must not be sent.
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    /// SIGUSR1: forget every channel's history (and whatever the broker
    /// keeps of it: the history file's broker empties the file too).
    fn clear(&self, state: &State) {
        state.channels.clear_all();
    }
}

/// Why a publish stored nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker cannot take messages now (its store is out of reach);
    /// the reason is what the publisher is told.
    #[error("{0}")]
    Unavailable(String),
}

type Waiting<'a> = Pin<Box<dyn Future<Output = Result<u64, BrokerError>> + Send + 'a>>;

/// A publish under way: already done (no allocation), or waiting on a
/// round trip.
#[must_use = "a publish reports its id or its failure"]
pub struct Publish<'a>(Step<'a>);

enum Step<'a> {
    /// Taken by the first poll.
    Done(Option<Result<u64, BrokerError>>),
    Waiting(Waiting<'a>),
}

impl<'a> Publish<'a> {
    /// A publish that is already over.
    pub fn done(result: Result<u64, BrokerError>) -> Publish<'a> {
        Publish(Step::Done(Some(result)))
    }

    /// A publish that ends when `future` does.
    pub fn waiting(
        future: impl Future<Output = Result<u64, BrokerError>> + Send + 'a,
    ) -> Publish<'a> {
        Publish(Step::Waiting(Box::pin(future)))
    }
}

impl Future for Publish<'_> {
    type Output = Result<u64, BrokerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Step::Done(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Ready(Err(BrokerError::Unavailable(
                    "publish polled after it completed".to_owned(),
                ))),
            },
            Step::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

/// Publish `text` on `channel` through the daemon's broker.
pub fn publish<'a>(state: &'a State, channel: &'a [u8], text: Bytes) -> Publish<'a> {
    state.broker.publish(state, channel, text)
}

/// `url` fit for a log line or an error: any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact_url("redis://:s3cret@10.0.0.1:6379/2"),
            "redis://***@10.0.0.1:6379/2"
        );
        assert_eq!(
            redact_url("rediss://user:p@ss@host/0"),
            "rediss://***@host/0"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }
}
