//! Transport names for `/metrics`' `transport` label, derived from a
//! mode's framing so that a new framing (EventSource, WebSocket) shows up
//! under its own name without a change here, and the totals of streams
//! that have ended, by transport (live streams are added at scrape time).

use std::fmt::{self, Write};
use std::sync::Mutex;

use crate::subscriber::framing::Framing;

/// The framing's variant name in lower case (`Framing::Classic` →
/// `classic`): the first identifier its `Debug` output writes. The writer
/// stops there, so nothing else is formatted.
pub fn transport_name(framing: &Framing) -> String {
    struct FirstWord(String);
    impl Write for FirstWord {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for c in s.chars() {
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    return Err(fmt::Error);
                }
                self.0.push(c.to_ascii_lowercase());
            }
            Ok(())
        }
    }
    let mut word = FirstWord(String::new());
    // The error is the writer's own stop signal.
    let _ = write!(word, "{framing:?}");
    if word.0.is_empty() {
        "unknown".to_owned()
    } else {
        word.0
    }
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
    fn the_classic_framing_is_named_classic() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let framing = Framing::compile(&config.modes.default);
        assert_eq!(transport_name(&framing), "classic");
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
