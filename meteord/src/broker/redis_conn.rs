//! Connections to the cluster's Redis: the client built from `ClusterRedis`,
//! connections with bounded connect and response times (a slow or
//! half-open Redis is an error within a known time, never a hang), and the
//! bounded backoff between reconnect attempts.

use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, RedisResult};

/// Longest a TCP (and TLS) connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a publish may wait for Redis before it is answered ERR.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// XREAD BLOCK: how long the feed waits for news before asking again; an
/// empty answer is the heartbeat that proves the connection is alive.
pub const BLOCK_MILLIS: u64 = 1_000;
/// Longest the feed waits for any answer (a BLOCK reply included): past
/// this the connection is taken for dead (half-open, or Redis stalled) and
/// the node reconnects. So an outage is noticed within ~3 s.
pub const FEED_TIMEOUT: Duration = Duration::from_millis(BLOCK_MILLIS + 2_000);
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
/// Longest pause between reconnect attempts: a restarted Redis is back in
/// use within this (plus the connect time).
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The client for `url` (already checked by the configuration). TLS
/// (`rediss://`) needs a process-wide rustls crypto provider; installing
/// it twice is harmless, so the error is ignored.
pub fn client(url: &str) -> RedisResult<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::open(url)
}

/// A connection whose every command fails after `response` without an
/// answer.
pub async fn connect(client: &Client, response: Duration) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Doubling pauses from 50 ms to [`BACKOFF_MAX`]; reset once connected.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }

    pub fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }

    /// The pause before the next attempt.
    pub fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets() {
        let mut b = Backoff::new();
        let pauses: Vec<u64> = (0..8).map(|_| b.pause().as_millis() as u64).collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.pause(), Duration::from_millis(50));
    }
}
