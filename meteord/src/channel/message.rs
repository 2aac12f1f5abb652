//! One published message: immutable after publish, shared by `Arc` between
//! the channel history and every subscriber that sends it.
//!
//! Memory: a history holds hundreds of messages per channel, so a stored
//! message should cost little more than one rendering of it. Once the first
//! rendering exists, the text is re-pointed at its own bytes inside that
//! rendering and the separate copy made at publish is freed (a 400-byte
//! message: ~1,230 → ~800 B stored, BENCHMARKS.md).

use std::ops::Range;
use std::sync::{Mutex, MutexGuard, OnceLock};

use bytes::Bytes;

use super::ChannelName;

/// A message as stored in a channel's history.
#[derive(Debug)]
pub struct Message {
    /// Decided by the broker (locally: the daemon-wide sequence,
    /// [`crate::ids::Ids`]); increasing within a channel.
    pub id: u64,
    pub channel: ChannelName,
    /// Seconds since the epoch when it was published (`~timestamp~`).
    pub timestamp: u64,
    /// Raw bytes, inserted into templates unescaped (as the original does);
    /// see [`Message::text`].
    text: Mutex<Bytes>,
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
        channel: ChannelName,
        timestamp: u64,
        text: Bytes,
        generation: u64,
    ) -> Message {
        Message {
            id,
            channel,
            timestamp,
            text: Mutex::new(text),
            generation,
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The message text (a cheap handle on shared bytes).
    pub fn text(&self) -> Bytes {
        self.lock_text().clone()
    }

    fn lock_text(&self) -> MutexGuard<'_, Bytes> {
        // A Bytes handle is never left half-written, so a poisoned lock
        // still holds a valid value.
        self.text.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rendering for mode `slot` of configuration `generation`: made by
    /// `render` the first time, shared afterwards. `render` also says where
    /// in the rendering the text was copied, if it was. Renderings for
    /// another generation (after a reload) are made fresh and not kept.
    pub fn rendered(
        &self,
        generation: u64,
        slot: usize,
        render: impl FnOnce() -> (Bytes, Option<Range<usize>>),
    ) -> Bytes {
        if generation != self.generation {
            return render().0;
        }
        match self.first.get() {
            Some((first_slot, bytes)) if *first_slot == slot => bytes.clone(),
            Some(_) => self.other(slot, || render().0),
            None => {
                // Two subscribers of one mode may both render here; one
                // rendering wins and both send the same bytes.
                let (bytes, text_at) = render();
                let mut won = false;
                let (first_slot, first) = self.first.get_or_init(|| {
                    won = true;
                    (slot, bytes.clone())
                });
                if won && let Some(range) = text_at {
                    self.share_text_with(first, range);
                }
                if *first_slot == slot {
                    first.clone()
                } else {
                    self.other(slot, || bytes)
                }
            }
        }
    }

    /// Re-point the text at its copy inside the kept rendering, so the
    /// message holds one buffer instead of two.
    fn share_text_with(&self, rendering: &Bytes, range: Range<usize>) {
        let mut text = self.lock_text();
        if rendering.get(range.clone()) == Some(&text[..]) {
            *text = rendering.slice(range);
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
            (Bytes::from_static(tag.as_bytes()), None)
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

    #[test]
    fn the_text_moves_into_the_first_rendering() {
        let m = Message::new(1, "c".into(), 0, Bytes::from(b"hello".to_vec()), 7);
        let rendering = Bytes::from(b"<p>hello</p>".to_vec());
        let got = m.rendered(7, 0, || (rendering.clone(), Some(3..8)));
        assert_eq!(got, rendering);
        let text = m.text();
        assert_eq!(text, "hello");
        assert!(
            std::ptr::eq(text.as_ptr(), rendering[3..].as_ptr()),
            "the text is a view into the rendering, not a copy"
        );
    }

    #[test]
    fn a_wrong_text_range_is_ignored() {
        let m = Message::new(1, "c".into(), 0, Bytes::from(b"hello".to_vec()), 7);
        let rendering = Bytes::from(b"<p>hello</p>".to_vec());
        m.rendered(7, 0, || (rendering.clone(), Some(0..5)));
        assert_eq!(m.text(), "hello");
        assert!(!std::ptr::eq(m.text().as_ptr(), rendering.as_ptr()));
    }
}
