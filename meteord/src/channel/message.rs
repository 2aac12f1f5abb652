//! One published message: immutable after publish, shared by `Arc` between
//! the channel history and every subscriber that sends it.

use std::sync::{Arc, Mutex, OnceLock};

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
    /// Configuration generation the cached renderings belong to.
    generation: u64,
    /// The rendering for the first mode that asked (nearly always the only
    /// one), readable without a lock by every subscriber of that mode.
    first: OnceLock<(usize, Bytes)>,
    /// Renderings for further modes. A history holds hundreds of messages
    /// per channel, so a slot per configured mode in every message would
    /// cost more than the message.
    others: Mutex<Vec<(usize, Bytes)>>,
}

impl Message {
    pub fn new(
        id: u64,
        channel: Arc<str>,
        timestamp: u64,
        text: Bytes,
        generation: u64,
    ) -> Message {
        Message {
            id,
            channel,
            timestamp,
            text,
            generation,
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The rendering for mode `slot` of configuration `generation`: made by
    /// `render` the first time, shared afterwards. Renderings for another
    /// generation (after a reload) are made fresh and not kept.
    pub fn rendered(&self, generation: u64, slot: usize, render: impl FnOnce() -> Bytes) -> Bytes {
        if generation != self.generation {
            return render();
        }
        match self.first.get() {
            Some((first_slot, bytes)) if *first_slot == slot => bytes.clone(),
            Some(_) => self.other(slot, render),
            None => {
                // Two subscribers of one mode may both render here; one
                // rendering wins and both send the same bytes.
                let bytes = render();
                let (first_slot, first) = self.first.get_or_init(|| (slot, bytes.clone()));
                if *first_slot == slot {
                    first.clone()
                } else {
                    self.other(slot, || bytes)
                }
            }
        }
    }

    fn other(&self, slot: usize, render: impl FnOnce() -> Bytes) -> Bytes {
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, bytes)) = others.iter().find(|(s, _)| *s == slot) {
            return bytes.clone();
        }
        let bytes = render();
        others.push((slot, bytes.clone()));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_renders_once() {
        let m = Message::new(1, "c".into(), 0, Bytes::from_static(b"t"), 7);
        let count = std::cell::Cell::new(0);
        let render = |tag: &'static str| {
            count.set(count.get() + 1);
            Bytes::from_static(tag.as_bytes())
        };
        assert_eq!(m.rendered(7, 0, || render("a")), "a");
        assert_eq!(m.rendered(7, 0, || render("x")), "a");
        assert_eq!(m.rendered(7, 3, || render("b")), "b");
        assert_eq!(m.rendered(7, 3, || render("x")), "b");
        assert_eq!(count.get(), 2);
        assert_eq!(
            m.rendered(8, 0, || render("new")),
            "new",
            "other generations are not cached"
        );
        assert_eq!(m.rendered(7, 0, || render("x")), "a");
    }
}
