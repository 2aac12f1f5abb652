//! What `/metrics` shows, gathered from the daemon's counters
//! ([`crate::stats`]), its connection table and its channels at scrape
//! time. Names follow Prometheus' conventions: `meteord_` prefix, base
//! units (bytes, seconds), `_total` on counters. docs/metrics.md lists
//! every family; the cluster's (broker state, reconnects, lag) are
//! reserved there for the broker that has them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::render::{Family, Type};
use super::transport_name;
use crate::connections::ConnKind;
use crate::limits::Limit;
use crate::state::State;

/// Transport label of a subscriber-port connection that has not (or not
/// yet) become a stream: a document, a 404, a head still arriving.
const NOT_A_STREAM: &str = "http";

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Every family, in the order docs/metrics.md lists them.
pub fn snapshot(state: &State) -> Vec<Family> {
    let stats = &state.stats;
    let modes = state.modes();
    // Open connections by transport, and what live streams have sent.
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    let mut sent: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (transport, totals) in stats.ended_streams.snapshot() {
        sent.insert(transport, (totals.deliveries, totals.bytes));
    }
    for conn in state.connections.all() {
        let transport = match (conn.kind, conn.details.get()) {
            (ConnKind::Controller, _) => "controller".to_owned(),
            (ConnKind::Subscriber, None) => NOT_A_STREAM.to_owned(),
            (ConnKind::Subscriber, Some(d)) => transport_name(&modes.get(d.mode()).framing),
        };
        if conn.kind == ConnKind::Subscriber && conn.details.get().is_some() {
            let entry = sent.entry(transport.clone()).or_default();
            entry.0 += get(&conn.messages);
            entry.1 += get(&conn.bytes_written);
        }
        *open.entry(transport).or_default() += 1;
    }
    let (subscribers, controllers) = state.connections.len_by_kind();
    let (channels, history_messages, history_bytes) = state.channels.history_totals();
    let udp = get(&stats.udp_messages);
    vec![
        Family::labelled(
            "meteord_connections",
            "Open connections by transport (controller; http = not a stream).",
            Type::Gauge,
            "transport",
            open,
        ),
        Family::single(
            "meteord_subscribers",
            "Open subscriber-port connections (SHOWSTATS current_subscribers).",
            Type::Gauge,
            subscribers as u64,
        ),
        Family::single(
            "meteord_controllers",
            "Open controller connections (SHOWSTATS current_controllers).",
            Type::Gauge,
            controllers as u64,
        ),
        Family::labelled(
            "meteord_connections_accepted_total",
            "Connections accepted, by port.",
            Type::Counter,
            "port",
            [
                (
                    "subscriber".to_owned(),
                    get(&stats.subscriber_connections_accepted),
                ),
                (
                    "controller".to_owned(),
                    get(&stats.controller_connections_accepted),
                ),
            ],
        ),
        Family::single(
            "meteord_channels",
            "Channels.",
            Type::Gauge,
            channels as u64,
        ),
        Family::single(
            "meteord_history_messages",
            "Messages held in the channels' histories.",
            Type::Gauge,
            history_messages as u64,
        ),
        Family::single(
            "meteord_history_bytes",
            "Text bytes of the messages held in the histories.",
            Type::Gauge,
            history_bytes as u64,
        ),
        Family::labelled(
            "meteord_messages_published_total",
            "Messages published, by source.",
            Type::Counter,
            "source",
            [
                ("controller".to_owned(), get(&stats.controller_messages)),
                ("udp".to_owned(), udp),
            ],
        ),
        Family::labelled(
            "meteord_deliveries_total",
            "Messages written to subscribers (one message to one subscriber = 1), by transport.",
            Type::Counter,
            "transport",
            sent.iter().map(|(t, (d, _))| (t.clone(), *d)),
        ),
        Family::single(
            "meteord_direct_deliveries_total",
            "Deliveries written by their publisher straight to a caught-up subscriber's socket \
             (the rest by the subscriber's own task).",
            Type::Counter,
            get(&stats.direct_deliveries),
        ),
        Family::labelled(
            "meteord_stream_sent_bytes_total",
            "Bytes written to streams, by transport.",
            Type::Counter,
            "transport",
            sent.iter().map(|(t, (_, b))| (t.clone(), *b)),
        ),
        Family::single(
            "meteord_sent_bytes_total",
            "Bytes written on every port (SHOWSTATS total_outbound_bytes).",
            Type::Counter,
            get(&stats.total_outbound_bytes),
        ),
        Family::single(
            "meteord_received_bytes_total",
            "Bytes read on every port (SHOWSTATS total_inbound_bytes).",
            Type::Counter,
            get(&stats.total_inbound_bytes),
        ),
        Family::labelled(
            "meteord_resumes_total",
            "Channel joins resuming from an id (.r<id>): full, or gap when messages after it had left the history.",
            Type::Counter,
            "result",
            [
                ("full".to_owned(), get(&stats.resumes_full)),
                ("gap".to_owned(), get(&stats.resumes_gap)),
            ],
        ),
        Family::labelled(
            "meteord_closes_total",
            "Streams ended by the daemon, by reason.",
            Type::Counter,
            "reason",
            [
                ("lagged".to_owned(), get(&stats.subscribers_lagged)),
                ("limit".to_owned(), get(&stats.closes_limit)),
                ("takeover".to_owned(), get(&stats.closes_takeover)),
                ("maxtime".to_owned(), get(&stats.closes_maxtime)),
                ("shutdown".to_owned(), get(&stats.closes_shutdown)),
                ("disconnect".to_owned(), get(&stats.closes_disconnect)),
            ],
        ),
        Family::labelled(
            "meteord_limit_refusals_total",
            "Clients refused or cut off, by limit (docs/limits.md).",
            Type::Counter,
            "limit",
            Limit::ALL
                .iter()
                .map(|&l| (l.label().to_owned(), stats.limits.refusals(l))),
        ),
        Family::labelled(
            "meteord_documents_total",
            "Static document requests, by result.",
            Type::Counter,
            "result",
            [
                ("served".to_owned(), get(&stats.documents_served)),
                ("not_found".to_owned(), get(&stats.documents_not_found)),
            ],
        ),
        Family::single(
            "meteord_errors_served_total",
            "Error answers on the subscriber port other than document 404s (SHOWSTATS errors_served).",
            Type::Counter,
            get(&stats.errors_served),
        ),
        Family::single(
            "meteord_uptime_seconds",
            "Seconds since the daemon started.",
            Type::Gauge,
            stats.uptime_secs(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `meteord_…` name in `text`.
    fn names_in(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("meteord_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            names.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        names
    }

    /// The dashboard and the doc name only families that exist (the doc
    /// also the reserved cluster ones), and the doc lists every family.
    #[test]
    fn the_dashboard_and_the_doc_use_the_served_names() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = State::new(config, crate::ids::Ids::starting_at(1));
        let served: Vec<&str> = snapshot(&state).iter().map(|f| f.name).collect();
        let reserved = [
            "meteord_broker_up",
            "meteord_broker_reconnects_total",
            "meteord_broker_lag_seconds",
        ];
        let dashboard = include_str!("../../../docs/grafana-meteord.json");
        for name in names_in(dashboard) {
            assert!(served.contains(&name.as_str()), "dashboard uses {name}");
        }
        let doc = include_str!("../../../docs/metrics.md");
        for name in names_in(doc) {
            assert!(
                served.contains(&name.as_str()) || reserved.contains(&name.as_str()),
                "docs/metrics.md names {name}"
            );
        }
        for name in served {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/metrics.md lacks {name}"
            );
        }
    }
}
