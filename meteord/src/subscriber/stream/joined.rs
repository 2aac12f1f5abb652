//! The channels one stream joined, with its cursor in each (almost always
//! one, kept inline).

use std::sync::Arc;

use crate::channel::{Message, Subscription};

/// The channels one stream joined, with its cursor in each. Almost always
/// one, so the first is kept inline (no allocation per subscriber), and
/// the rest behind one pointer (8 bytes in every idle task, not a `Vec`'s
/// 24).
// The box is the point: one pointer in the idle task instead of three words.
#[allow(clippy::box_collection)]
#[derive(Debug, Default)]
pub(super) struct Joined {
    first: Option<Subscription>,
    rest: Option<Box<Vec<Subscription>>>,
}

impl Joined {
    pub(super) fn push(&mut self, subscription: Subscription) {
        match self.first {
            None => self.first = Some(subscription),
            Some(_) => self.rest.get_or_insert_default().push(subscription),
        }
    }

    pub(super) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest().len()
    }

    fn rest(&self) -> &[Subscription] {
        self.rest.as_deref().map_or(&[], Vec::as_slice)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.first.iter().chain(self.rest().iter())
    }

    /// Move the cursors past `messages` (which have been written).
    pub(super) fn advance(&mut self, messages: &[Arc<Message>]) {
        for message in messages {
            let subscription = self
                .first
                .iter_mut()
                .chain(self.rest.iter_mut().flat_map(|rest| rest.iter_mut()))
                .find(|s| Arc::ptr_eq(&s.channel.name, &message.channel));
            if let Some(subscription) = subscription {
                subscription.cursor = subscription.cursor.max(message.id);
            }
        }
    }

    /// The one channel's cursor, moved on by publishers' direct writes.
    pub(super) fn catch_up_first(&mut self, cursor: u64) {
        if let Some(first) = self.first.as_mut() {
            first.cursor = first.cursor.max(cursor);
        }
    }

    pub(super) fn contains(&self, channel: &str) -> bool {
        self.iter()
            .any(|s| s.channel.name.as_bytes() == channel.as_bytes())
    }

    /// Take the subscription to `channel` out, if there is one.
    pub(super) fn remove(&mut self, channel: &str) -> Option<Subscription> {
        let is = |s: &Subscription| s.channel.name.as_bytes() == channel.as_bytes();
        let found = if self.first.as_ref().is_some_and(is) {
            let first = self.first.take();
            self.first = self
                .rest
                .as_mut()
                .filter(|r| !r.is_empty())
                .map(|r| r.remove(0));
            first
        } else {
            let rest = self.rest.as_mut()?;
            let at = rest.iter().position(is)?;
            Some(rest.remove(at))
        };
        if self.rest.as_ref().is_some_and(|r| r.is_empty()) {
            self.rest = None;
        }
        found
    }

    pub(super) fn take_all(&mut self) -> impl Iterator<Item = Subscription> {
        let rest = self.rest.take().map_or_else(Vec::new, |rest| *rest);
        self.first.take().into_iter().chain(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Backlog, Channels, Limits};
    use crate::connections::{Conn, ConnKind};

    #[test]
    fn channels_leave_in_any_order() {
        let channels = Channels::new(Limits {
            replay_limit: 10,
            max_age: 60,
        });
        let conn = Arc::new(Conn::new(1, ConnKind::Subscriber, [127, 0, 0, 1].into(), 0));
        let mut joined = Joined::default();
        for name in ["a", "b", "c"] {
            joined.push(channels.subscribe(name, Backlog::None, &conn, &mut Vec::new()));
        }
        let names =
            |j: &Joined| -> Vec<String> { j.iter().map(|s| s.channel.name.to_string()).collect() };
        assert!(joined.contains("b") && !joined.contains("d"));
        assert!(joined.remove("d").is_none());
        assert_eq!(joined.remove("a").unwrap().channel.name.to_string(), "a");
        assert_eq!(names(&joined), ["b", "c"]);
        assert_eq!(joined.remove("c").unwrap().channel.name.to_string(), "c");
        assert_eq!(
            (names(&joined), joined.rest.is_none()),
            (vec!["b".to_string()], true)
        );
        assert!(joined.remove("b").is_some());
        assert_eq!(joined.len(), 0);
    }
}
