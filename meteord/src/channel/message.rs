//! One published message: immutable after publish, shared by `Arc` between
//! the channel history and every subscriber that sends it.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// A message as stored in a channel's history.
#[derive(Debug)]
pub struct Message {
    /// From the daemon-wide sequence ([`crate::ids::Ids`]).
    pub id: u64,
    pub channel: Arc<str>,
    /// Seconds since the epoch when it was published (`~timestamp~`).
    pub timestamp: u64,
    /// Raw bytes, inserted into templates unescaped (as the original does).
    pub text: Bytes,
    /// Configuration generation the render slots belong to.
    generation: u64,
    /// One rendering per mode, made by the first subscriber of that mode who
    /// needs it and shared by all others.
    renders: Box<[OnceLock<Bytes>]>,
}

impl Message {
    pub fn new(
        id: u64,
        channel: Arc<str>,
        timestamp: u64,
        text: Bytes,
        generation: u64,
        slots: usize,
    ) -> Message {
        Message {
            id,
            channel,
            timestamp,
            text,
            generation,
            renders: (0..slots).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The cache slot for `slot` under `generation`, if this message has one.
    pub fn render_slot(&self, generation: u64, slot: usize) -> Option<&OnceLock<Bytes>> {
        if generation == self.generation {
            self.renders.get(slot)
        } else {
            None
        }
    }
}
