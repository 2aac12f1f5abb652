//! Transport names for `/metrics`' `transport` label (each framing names
//! its own, [`Framing::transport`]), and the totals of streams that have
//! ended, by transport (live streams are added at scrape time).

use std::sync::Mutex;

use crate::subscriber::framing::Framing;

/// The `transport` label of a framing's streams.
pub fn transport_name(framing: &Framing) -> String {
    framing.transport().to_owned()
}

/// Deliveries and bytes written by streams that have ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub deliveries: u64,
    pub bytes: u64,
}

/// Totals of ended streams by transport; a handful of entries (one per
/// framing), so a vector.
#[derive(Debug, Default)]
pub struct EndedStreams(Mutex<Vec<(String, Totals)>>);

impl EndedStreams {
    pub fn add(&self, transport: String, deliveries: u64, bytes: u64) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match all.iter_mut().find(|(name, _)| *name == transport) {
            Some((_, t)) => {
                t.deliveries += deliveries;
                t.bytes += bytes;
            }
            None => all.push((transport, Totals { deliveries, bytes })),
        }
    }

    pub fn snapshot(&self) -> Vec<(String, Totals)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_framing_is_named_for_its_transport() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        for (mode, name) in [
            ("", "classic"),
            ("xhrinteractive", "classic"),
            ("eventsource", "eventsource"),
            ("websocket", "websocket"),
        ] {
            assert_eq!(
                transport_name(&Framing::compile(mode, &config)),
                name,
                "{mode}"
            );
        }
    }

    #[test]
    fn ended_streams_add_up_by_transport() {
        let ended = EndedStreams::default();
        ended.add("classic".into(), 2, 10);
        ended.add("websocket".into(), 1, 5);
        ended.add("classic".into(), 3, 1);
        assert_eq!(
            ended.snapshot(),
            [
                (
                    "classic".to_owned(),
                    Totals {
                        deliveries: 5,
                        bytes: 11
                    }
                ),
                (
                    "websocket".to_owned(),
                    Totals {
                        deliveries: 1,
                        bytes: 5
                    }
                ),
            ]
        );
    }
}
