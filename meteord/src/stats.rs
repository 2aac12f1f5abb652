//! Counters behind SHOWSTATS (and, later, the metrics endpoint). Plain
//! relaxed atomics: each is independent and exactness across counters is
//! not promised.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// Streaming subscribers right now.
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
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            started: Instant::now(),
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

    /// The counters after the four leading SHOWSTATS lines, in order.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("current_subscribers", get(&self.current_subscribers)),
            (
                "subscriber_connections_accepted",
                get(&self.subscriber_connections_accepted),
            ),
            ("current_controllers", get(&self.current_controllers)),
            (
                "controller_connections_accepted",
                get(&self.controller_connections_accepted),
            ),
            ("messages_served", get(&self.messages_served)),
            ("unique_messages", get(&self.unique_messages)),
            ("documents_served", get(&self.documents_served)),
            ("documents_not_found", get(&self.documents_not_found)),
            ("errors_served", get(&self.errors_served)),
            ("total_outbound_bytes", get(&self.total_outbound_bytes)),
            ("total_inbound_bytes", get(&self.total_inbound_bytes)),
            ("subscribers_lagged", get(&self.subscribers_lagged)),
            ("connections_refused", get(&self.connections_refused)),
            ("udp_messages", get(&self.udp_messages)),
        ]
    }
}
