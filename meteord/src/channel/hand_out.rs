//! Who delivers a stored message to each of a channel's subscribers: its
//! publisher, straight to the sockets of the subscribers caught up on the
//! channel (handed back in a [`Direct`]), or each subscriber's own task,
//! woken to read the history after its cursor.
//!
//! A message that comes less than [`DIRECT_MIN_GAP`] after the one before —
//! or after the publisher finished writing the one before itself: a
//! publisher's writes take milliseconds at thousands of subscribers, and a
//! message that waited for them is part of a burst — is left to the
//! tasks: each of them then writes everything pending in one write
//! (~0.2 µs a delivery when messages queue), where a publisher writing
//! every message to every socket pays a `send` each (~4 µs): max-throughput
//! fell from millions of deliveries a second to 0.24 M when every message
//! was written by its publisher (BENCHMARKS.md). At human rates (chat,
//! notifications, the fan-out and many-channels cases) each message finds
//! the subscribers idle, and the publisher's write spares a tokio wake-up
//! per subscriber.

use std::time::{Duration, Instant};

use std::sync::Arc;

use super::{Channel, Waiter};

/// Messages of one channel closer together than this are delivered by
/// the subscribers' tasks, in batches.
pub const DIRECT_MIN_GAP: Duration = Duration::from_millis(1);

/// The subscribers a publisher writes one message to itself: those that
/// had been given everything up to `after` (the channel's live cursor just
/// before the message) and offered their socket for the next one
/// ([`crate::connections::Conn::may_take_direct`]).
#[derive(Debug, Default)]
pub struct Direct {
    pub after: u64,
    pub conns: Vec<Waiter>,
    /// The channel, told when the writes are over ([`Direct::finished`]).
    channel: Option<Arc<Channel>>,
}

impl Direct {
    /// The publisher wrote the message to every subscriber it took: the
    /// next message's gap counts from now.
    pub fn finished(&mut self) {
        if let Some(channel) = self.channel.take() {
            channel.direct_written(Instant::now());
        }
    }
}

/// When the channel last stored a message, or finished a publisher's
/// writes of one.
#[derive(Debug, Default)]
pub struct Pace {
    last_stored: Option<Instant>,
}

impl Pace {
    /// A message is stored `now`: whether it came at least
    /// [`DIRECT_MIN_GAP`] after the one before.
    fn spaced(&mut self, now: Instant) -> bool {
        let spaced = self
            .last_stored
            .is_none_or(|last| now.saturating_duration_since(last) >= DIRECT_MIN_GAP);
        self.last_stored = Some(self.last_stored.map_or(now, |last| last.max(now)));
        spaced
    }

    /// A publisher's writes of a message ended at `at`.
    pub(super) fn direct_written(&mut self, at: Instant) {
        self.last_stored = Some(self.last_stored.map_or(at, |last| last.max(at)));
    }
}

/// Deliver the message stored after live cursor `after`: the subscribers
/// that take it from the publisher go to `direct` (when the caller writes
/// directly and the channel is not publishing faster than the tasks
/// batch), every other one is woken.
pub fn hand_out<'a>(
    channel: &Arc<Channel>,
    waiters: impl Iterator<Item = &'a Waiter>,
    after: u64,
    pace: &mut Pace,
    direct: Option<&mut Direct>,
) {
    let direct = direct.filter(|_| pace.spaced(Instant::now()));
    match direct {
        None => {
            for waiter in waiters {
                waiter.wake();
            }
        }
        Some(direct) => {
            direct.after = after;
            direct.channel = Some(channel.clone());
            for waiter in waiters {
                if waiter.may_take_direct(after) {
                    direct.conns.push(waiter.clone());
                } else {
                    waiter.wake();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_spaced_by_the_gap_go_direct() {
        let mut pace = Pace::default();
        let start = Instant::now();
        assert!(pace.spaced(start), "the first message");
        assert!(!pace.spaced(start + DIRECT_MIN_GAP / 2), "a burst");
        assert!(
            !pace.spaced(start + DIRECT_MIN_GAP),
            "measured from the last one"
        );
        assert!(pace.spaced(start + DIRECT_MIN_GAP * 3));
        // A publisher's writes took long: the next message waited for them.
        pace.direct_written(start + DIRECT_MIN_GAP * 10);
        assert!(!pace.spaced(start + DIRECT_MIN_GAP * 10));
    }
}
