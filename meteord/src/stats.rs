//! Counters behind SHOWSTATS (and, later, the metrics endpoint). Plain
//! relaxed atomics: each is independent and exactness across counters is
//! not promised.
//!
//! SHOWSTATS shows the original's counters only, and like the original a
//! counter appears once something has happened to it (a fresh daemon has
//! no `unique_messages` line). The others here are for the metrics
//! endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// Streaming subscribers right now (SHOWSTATS' `current_subscribers` is
    /// another figure: every open subscriber-port connection).
    pub current_subscribers: AtomicU64,
    pub subscriber_connections_accepted: AtomicU64,
    pub current_controllers: AtomicU64,
    pub controller_connections_accepted: AtomicU64,
    /// Message deliveries written to subscribers (one message to one subscriber = 1).
    pub messages_served: AtomicU64,
    /// Messages published.
    pub unique_messages: AtomicU64,
    pub documents_served: AtomicU64,
    pub documents_not_found: AtomicU64,
    /// 4xx/5xx answers on the subscriber port (other than document 404s).
    pub errors_served: AtomicU64,
    pub total_outbound_bytes: AtomicU64,
    pub total_inbound_bytes: AtomicU64,
    /// Subscribers closed because they fell out of the history.
    pub subscribers_lagged: AtomicU64,
    /// Connections refused at the MaxConnections limit.
    pub connections_refused: AtomicU64,
    pub udp_messages: AtomicU64,

    // cluster broker (issue 13): zero and absent from SHOWSTATS on a single
    // node.
    /// [`ClusterState`] as a number.
    pub cluster_state: AtomicU64,
    /// Times the connection to Redis was lost (and a reconnect began).
    pub cluster_reconnects: AtomicU64,
    /// Milliseconds between the publish of the last message the feed
    /// applied and its application here; 0 when the feed is idle.
    pub cluster_lag_ms: AtomicU64,
    /// Times this node found messages it may have missed (the shared log
    /// trimmed past it, or Redis lost its data) and reloaded the histories.
    pub cluster_gaps: AtomicU64,
    /// Publishes answered ERR because Redis was unreachable or failed.
    pub cluster_publish_errors: AtomicU64,

    // subscriber tokens (issue 14)
    /// Stream requests answered 403 for want of a good token.
    pub tokens_refused: AtomicU64,

    // ops (issue 14): for /metrics.
    /// Refusals and cut-offs by limit, and the ControllerAllow log.
    pub limits: crate::limits::Guard,
    /// Messages published from the controller port (UDP: `udp_messages`).
    pub controller_messages: AtomicU64,
    /// Streams ended by a newer connection with the same hostid.
    pub closes_takeover: AtomicU64,
    /// Streams ended by MaxTime.
    pub closes_maxtime: AtomicU64,
    /// Streams ended by the daemon's shutdown.
    pub closes_shutdown: AtomicU64,
    /// Streams ended by `/disconnect/<hostid>`.
    pub closes_disconnect: AtomicU64,
    /// Streams cut off by a limit (WriteTimeout: a client that never reads).
    pub closes_limit: AtomicU64,
    /// `.r<id>` joins whose messages were all still held, and those that
    /// had missed some.
    pub resumes_full: AtomicU64,
    pub resumes_gap: AtomicU64,
    /// Deliveries written by their publisher straight to a caught-up
    /// stream's socket (part of `messages_served`).
    pub direct_deliveries: AtomicU64,
    /// Deliveries and bytes of ended streams, by transport.
    pub ended_streams: crate::metrics::EndedStreams,
}

/// Where a cluster node's link to Redis is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// Not a cluster node.
    Off = 0,
    /// No connection: publishes are refused; reconnecting with backoff.
    Reconnecting = 1,
    /// Connected, applying what was published while away; publishes are
    /// taken.
    CatchingUp = 2,
    Connected = 3,
}

impl ClusterState {
    pub fn name(self) -> &'static str {
        match self {
            ClusterState::Off => "off",
            ClusterState::Reconnecting => "reconnecting",
            ClusterState::CatchingUp => "catching_up",
            ClusterState::Connected => "connected",
        }
    }

    fn from_number(n: u64) -> ClusterState {
        match n {
            1 => ClusterState::Reconnecting,
            2 => ClusterState::CatchingUp,
            3 => ClusterState::Connected,
            _ => ClusterState::Off,
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            started: crate::clock::now(),
            current_subscribers: AtomicU64::new(0),
            subscriber_connections_accepted: AtomicU64::new(0),
            current_controllers: AtomicU64::new(0),
            controller_connections_accepted: AtomicU64::new(0),
            messages_served: AtomicU64::new(0),
            unique_messages: AtomicU64::new(0),
            documents_served: AtomicU64::new(0),
            documents_not_found: AtomicU64::new(0),
            errors_served: AtomicU64::new(0),
            total_outbound_bytes: AtomicU64::new(0),
            total_inbound_bytes: AtomicU64::new(0),
            subscribers_lagged: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            udp_messages: AtomicU64::new(0),
            cluster_state: AtomicU64::new(ClusterState::Off as u64),
            cluster_reconnects: AtomicU64::new(0),
            cluster_lag_ms: AtomicU64::new(0),
            cluster_gaps: AtomicU64::new(0),
            cluster_publish_errors: AtomicU64::new(0),
            tokens_refused: AtomicU64::new(0),
            limits: crate::limits::Guard::new(),
            controller_messages: AtomicU64::new(0),
            closes_takeover: AtomicU64::new(0),
            closes_maxtime: AtomicU64::new(0),
            closes_shutdown: AtomicU64::new(0),
            closes_disconnect: AtomicU64::new(0),
            closes_limit: AtomicU64::new(0),
            resumes_full: AtomicU64::new(0),
            resumes_gap: AtomicU64::new(0),
            direct_deliveries: AtomicU64::new(0),
            ended_streams: crate::metrics::EndedStreams::default(),
        }
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// Count why a stream ended (issue 14's closes by reason), from what
    /// its connection record says when the stream is dropped, and add what
    /// it sent to its transport's totals. Lagged and MaxTime are counted
    /// where they happen.
    pub fn count_close(&self, conn: &crate::connections::Conn, transport: String) {
        use crate::connections::StopReason;
        self.ended_streams.add(
            transport,
            conn.messages.load(Ordering::Relaxed),
            conn.bytes_written.load(Ordering::Relaxed),
        );
        let counter = match conn.stop_reason() {
            StopReason::Replaced => &self.closes_takeover,
            StopReason::Shutdown => &self.closes_shutdown,
            StopReason::Disconnected => &self.closes_disconnect,
            StopReason::Running if conn.timers.stalled() => {
                self.limits.refused(crate::limits::Limit::WriteTimeout);
                &self.closes_limit
            }
            StopReason::Running => return,
        };
        Stats::add(counter, 1);
    }

    /// The counters after the four leading SHOWSTATS lines: the original's
    /// set, each once it has been touched. The original prints them in Perl
    /// hash order, which changes from run to run, so no client can depend
    /// on an order; ours is fixed. `open` is the open connections on the
    /// subscriber and the controller port.
    pub fn showstats_counters(&self, open: (usize, usize)) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let subscribers = get(&self.subscriber_connections_accepted);
        let controllers = get(&self.controller_connections_accepted);
        let all = [
            ("current_subscribers", open.0 as u64, subscribers > 0),
            (
                "subscriber_connections_accepted",
                subscribers,
                subscribers > 0,
            ),
            ("current_controllers", open.1 as u64, controllers > 0),
            (
                "controller_connections_accepted",
                controllers,
                controllers > 0,
            ),
            ("messages_served", get(&self.messages_served), false),
            ("unique_messages", get(&self.unique_messages), false),
            ("documents_served", get(&self.documents_served), false),
            ("documents_not_found", get(&self.documents_not_found), false),
            ("errors_served", get(&self.errors_served), false),
            (
                "total_outbound_bytes",
                get(&self.total_outbound_bytes),
                false,
            ),
            ("total_inbound_bytes", get(&self.total_inbound_bytes), false),
            ("total_requests", subscribers + controllers, false),
        ];
        all.into_iter()
            .filter(|&(_, value, touched)| touched || value > 0)
            .map(|(key, value, _)| (key, value))
            .collect()
    }
}

impl Stats {
    pub fn cluster_state(&self) -> ClusterState {
        ClusterState::from_number(self.cluster_state.load(Ordering::Relaxed))
    }

    pub fn set_cluster_state(&self, state: ClusterState) {
        self.cluster_state.store(state as u64, Ordering::Relaxed);
    }

    /// SHOWSTATS lines after the original's, on a cluster node only (a
    /// single node's SHOWSTATS stays the original's set).
    pub fn cluster_lines(&self) -> Vec<(&'static str, String)> {
        let state = self.cluster_state();
        if state == ClusterState::Off {
            return Vec::new();
        }
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        vec![
            ("cluster_state", state.name().to_owned()),
            ("cluster_reconnects", get(&self.cluster_reconnects)),
            ("cluster_lag_ms", get(&self.cluster_lag_ms)),
            ("cluster_gaps", get(&self.cluster_gaps)),
            ("cluster_publish_errors", get(&self.cluster_publish_errors)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_lines_only_on_a_cluster_node() {
        let stats = Stats::new();
        assert!(stats.cluster_lines().is_empty());
        stats.set_cluster_state(ClusterState::Reconnecting);
        Stats::add(&stats.cluster_reconnects, 2);
        assert_eq!(
            stats.cluster_lines(),
            [
                ("cluster_state", "reconnecting".to_owned()),
                ("cluster_reconnects", "2".to_owned()),
                ("cluster_lag_ms", "0".to_owned()),
                ("cluster_gaps", "0".to_owned()),
                ("cluster_publish_errors", "0".to_owned()),
            ]
        );
    }

    #[test]
    fn showstats_lists_only_touched_counters() {
        let stats = Stats::new();
        Stats::add(&stats.controller_connections_accepted, 1);
        Stats::add(&stats.total_inbound_bytes, 10);
        assert_eq!(
            stats.showstats_counters((0, 1)),
            [
                ("current_controllers", 1),
                ("controller_connections_accepted", 1),
                ("total_inbound_bytes", 10),
                ("total_requests", 1),
            ]
        );
        Stats::add(&stats.subscriber_connections_accepted, 2);
        Stats::add(&stats.unique_messages, 1);
        let keys: Vec<&str> = stats
            .showstats_counters((0, 1))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "current_subscribers",
                "subscriber_connections_accepted",
                "current_controllers",
                "controller_connections_accepted",
                "unique_messages",
                "total_inbound_bytes",
                "total_requests",
            ]
        );
    }
}
