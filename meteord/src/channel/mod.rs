//! Channels: the registry (name → channel) and each channel's history and
//! waiting subscribers.
//!
//! Fan-out works like a commit log with cursors: publishing appends to the
//! history and wakes every waiting subscriber; each subscriber then reads the
//! messages after its own cursor. Catch-up after a burst and live delivery are
//! the same code path, a slow subscriber costs nothing but its cursor, and
//! the publisher never waits for anybody.
//!
//! Locks: one for the name map, one per channel; never held across `.await`,
//! always taken map-then-channel. A channel removed from the map is marked
//! `removed` under its own lock so a publisher that raced the removal retries
//! on the live channel instead of writing into a dead one.

mod history;
mod message;
mod name;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

pub use history::{Backlog, History, LIVE_EXTRA, LIVE_GRACE_SECS, Lagged};
pub use message::Message;
pub use name::ChannelName;

use crate::ids::Ids;

/// A channel's handle on one of its subscribers, woken on every publish: a
/// thin pointer, because a busy channel holds one per subscriber.
pub type Waiter = Arc<crate::connections::Conn>;

#[derive(Debug)]
struct ChannelState {
    history: History,
    /// Waiting subscribers; a slot is `None` after its subscriber left, and
    /// reused (see `free`), so tokens stay valid and removal is O(1).
    waiters: Vec<Option<Waiter>>,
    free: Vec<u32>,
    /// Streaming (persistent) subscribers: what LISTCHANNELS and
    /// COUNTSUBSCRIBERS count and what keeps an empty channel alive. A poll
    /// waits here too while it is answered, but like in the original it is
    /// not a subscriber of the channel.
    subscribers: usize,
    /// Set when the registry dropped this channel.
    removed: bool,
}

/// One channel.
#[derive(Debug)]
pub struct Channel {
    pub name: ChannelName,
    state: Mutex<ChannelState>,
}

/// A subscriber's membership in one channel; give it back with
/// [`Channels::unsubscribe`].
#[derive(Debug)]
pub struct Subscription {
    pub channel: Arc<Channel>,
    /// Index into `waiters`: 32 bits, because the connection limit keeps
    /// subscribers far below 2^32, and with `counted` it packs into 8 bytes
    /// (every idle subscriber task holds a `Subscription`).
    token: u32,
    /// Counted in the channel's `subscribers` (a streaming subscriber).
    counted: bool,
    /// Id of the last message this subscriber has been given.
    pub cursor: u64,
}

/// Snapshot of one channel for LISTCHANNELS / channel info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    pub name: ChannelName,
    pub messages: usize,
    pub subscribers: usize,
    pub last_id: u64,
}

impl Channel {
    fn new(name: ChannelName, replay_limit: usize) -> Channel {
        Channel {
            name,
            state: Mutex::new(ChannelState {
                history: History::new(replay_limit),
                waiters: Vec::new(),
                free: Vec::new(),
                subscribers: 0,
                removed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        // A panic while holding the lock cannot leave the history half
        // updated in a way that matters more than losing the daemon, so
        // recover the data instead of poisoning every later publish.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append up to `max` messages newer than `cursor` to `out`.
    pub fn read_after(
        &self,
        cursor: u64,
        max: usize,
        out: &mut Vec<Arc<Message>>,
    ) -> Result<(), Lagged> {
        self.lock().history.read_after(cursor, max, out)
    }

    pub fn summary(&self) -> ChannelSummary {
        let state = self.lock();
        ChannelSummary {
            name: self.name.clone(),
            messages: state.history.replayable_len(),
            subscribers: state.subscribers,
            last_id: state.history.last_id(),
        }
    }
}

/// History limits, changed by SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MaxMessagesPerChannel`.
    pub replay_limit: usize,
    /// `MaxMessageAge`, seconds.
    pub max_age: u64,
}

/// Everything a publish needs besides the channel and text.
#[derive(Debug, Clone, Copy)]
pub struct PublishContext {
    pub now: u64,
    pub generation: u64,
}

#[derive(Debug)]
struct Registry {
    map: HashMap<ChannelName, Arc<Channel>>,
    limits: Limits,
}

/// The channel registry.
#[derive(Debug)]
pub struct Channels {
    inner: Mutex<Registry>,
}

impl Channels {
    pub fn new(limits: Limits) -> Channels {
        Channels {
            inner: Mutex::new(Registry {
                map: HashMap::new(),
                limits,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_or_create(registry: &mut Registry, name: &[u8]) -> Arc<Channel> {
        if let Some(channel) = registry.map.get(name) {
            return channel.clone();
        }
        let name = ChannelName::from(name);
        let channel = Arc::new(Channel::new(name.clone(), registry.limits.replay_limit));
        registry.map.insert(name, channel.clone());
        channel
    }

    /// Publish `text` to `channel` with the next id from `ids`; wakes every
    /// subscriber of the channel. Returns the message.
    pub fn publish(
        &self,
        channel: impl AsRef<[u8]>,
        text: Bytes,
        ids: &Ids,
        ctx: PublishContext,
    ) -> Arc<Message> {
        loop {
            let target = Self::get_or_create(&mut self.lock(), channel.as_ref());
            let mut state = target.lock();
            if state.removed {
                continue;
            }
            // The id is taken under the channel lock so ids in every history
            // are increasing.
            let message = Arc::new(Message::new(
                ids.next(),
                target.name.clone(),
                ctx.now,
                text,
                ctx.generation,
            ));
            state.history.push(message.clone(), ctx.now);
            for waiter in state.waiters.iter().flatten() {
                waiter.wake();
            }
            return message;
        }
    }

    /// Join `channel` (created if it does not exist, also by a poll):
    /// registers `waiter`, appends the replay for `backlog` to `out`, all
    /// atomically with respect to publishes, so nothing falls between the
    /// replay and live delivery. Only a persistent subscriber counts as one
    /// of the channel's subscribers (see `ChannelState::subscribers`).
    pub fn subscribe(
        &self,
        channel: impl AsRef<[u8]>,
        backlog: Backlog,
        waiter: &Waiter,
        out: &mut Vec<Arc<Message>>,
    ) -> Subscription {
        let counted = waiter.details.get().is_none_or(|d| d.persist);
        let mut registry = self.lock();
        let target = Self::get_or_create(&mut registry, channel.as_ref());
        let mut state = target.lock();
        drop(registry);
        state.history.backlog(backlog, out);
        let token = match state.free.pop() {
            Some(slot) => {
                state.waiters[slot as usize] = Some(waiter.clone());
                slot
            }
            None => {
                state.waiters.push(Some(waiter.clone()));
                (state.waiters.len() - 1) as u32
            }
        };
        if counted {
            state.subscribers += 1;
        }
        let cursor = state.history.live_cursor();
        drop(state);
        Subscription {
            channel: target,
            token,
            counted,
            cursor,
        }
    }

    /// Leave a channel. When the last streaming subscriber leaves a channel
    /// that holds no message, the channel goes at once; a poll leaving
    /// frees nothing, so a poll on an unknown channel leaves it listed as
    /// `name(0/0)` until the housekeeping (the original's behaviour).
    pub fn unsubscribe(&self, subscription: Subscription) {
        let mut registry = self.lock();
        let channel = &subscription.channel;
        let mut state = channel.lock();
        if let Some(slot) = state.waiters.get_mut(subscription.token as usize)
            && slot.take().is_some()
        {
            state.free.push(subscription.token);
            if subscription.counted {
                state.subscribers -= 1;
                if state.subscribers == 0 && state.history.replayable_len() == 0 {
                    drop(state);
                    Self::remove(&mut registry, channel);
                }
            }
        }
    }

    /// Take `channel` out of the map (if it is still the one there); marks
    /// it removed so a racing publisher retries on a fresh channel.
    fn remove(registry: &mut Registry, channel: &Arc<Channel>) {
        channel.lock().removed = true;
        if registry
            .map
            .get(&channel.name)
            .is_some_and(|c| Arc::ptr_eq(c, channel))
        {
            registry.map.remove(&channel.name);
        }
    }

    pub fn count_subscribers(&self, channel: impl AsRef<[u8]>) -> usize {
        let registry = self.lock();
        registry
            .map
            .get(channel.as_ref())
            .map_or(0, |c| c.lock().subscribers)
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Summaries of every channel, sorted by name.
    pub fn list(&self) -> Vec<ChannelSummary> {
        let channels: Vec<Arc<Channel>> = self.lock().map.values().cloned().collect();
        let mut list: Vec<ChannelSummary> = channels.iter().map(|c| c.summary()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Summary of one channel, if it exists.
    pub fn summary(&self, channel: impl AsRef<[u8]>) -> Option<ChannelSummary> {
        let target = self.lock().map.get(channel.as_ref()).cloned();
        target.map(|c| c.summary())
    }

    /// Periodic housekeeping: expire old messages, free channels with no
    /// messages and no subscribers.
    pub fn housekeep(&self, now: u64) {
        let mut registry = self.lock();
        let max_age = registry.limits.max_age;
        registry.map.retain(|_, channel| {
            let mut state = channel.lock();
            state.history.expire(now, max_age);
            let keep = state.subscribers > 0 || state.history.replayable_len() > 0;
            if !keep {
                state.removed = true;
            }
            keep
        });
    }

    /// SIGUSR1: forget every channel's history (ids are *not* reset); a
    /// channel left with no streaming subscriber goes at once, as in the
    /// original.
    pub fn clear_all(&self) {
        self.lock().map.retain(|_, channel| {
            let mut state = channel.lock();
            state.history.clear();
            let keep = state.subscribers > 0;
            if !keep {
                state.removed = true;
            }
            keep
        });
    }

    /// SIGHUP: apply new history limits to every channel.
    pub fn set_limits(&self, limits: Limits, now: u64) {
        let mut registry = self.lock();
        registry.limits = limits;
        for channel in registry.map.values() {
            let mut state = channel.lock();
            state.history.set_replay_limit(limits.replay_limit, now);
            state.history.expire(now, limits.max_age);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter() -> (Waiter, Waiter) {
        let conn = Arc::new(crate::connections::Conn::new(
            1,
            crate::connections::ConnKind::Subscriber,
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            0,
        ));
        (conn.clone(), conn)
    }

    fn ctx() -> PublishContext {
        PublishContext {
            now: 1000,
            generation: 0,
        }
    }

    fn channels() -> Channels {
        Channels::new(Limits {
            replay_limit: 3,
            max_age: 60,
        })
    }

    #[test]
    fn subscribe_replays_then_reads_live() {
        let ids = Ids::starting_at(1);
        let ch = channels();
        for i in 0..5 {
            ch.publish("a", Bytes::from(format!("{i}")), &ids, ctx());
        }
        ch.publish("b", Bytes::from_static(b"other"), &ids, ctx());
        let (_, waiter) = waiter();
        let mut out = Vec::new();
        let sub = ch.subscribe("a", Backlog::Last(2), &waiter, &mut out);
        assert_eq!(out.iter().map(|m| m.id).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(sub.cursor, 5);
        let m = ch.publish("a", Bytes::from_static(b"live"), &ids, ctx());
        assert_eq!(m.id, 7, "one id sequence across channels");
        out.clear();
        sub.channel.read_after(sub.cursor, 10, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].text()[..], b"live");
        assert_eq!(ch.count_subscribers("a"), 1);
        ch.unsubscribe(sub);
        assert_eq!(ch.count_subscribers("a"), 0);
    }

    #[test]
    fn empty_channel_is_freed_when_last_subscriber_leaves() {
        let ch = channels();
        let (_, waiter) = waiter();
        let mut out = Vec::new();
        let s1 = ch.subscribe("x", Backlog::All, &waiter, &mut out);
        let s2 = ch.subscribe("x", Backlog::All, &waiter, &mut out);
        assert_eq!(ch.list()[0].subscribers, 2);
        ch.unsubscribe(s1);
        assert_eq!(ch.len(), 1);
        ch.unsubscribe(s2);
        assert_eq!(ch.len(), 0);
    }

    fn poller() -> Waiter {
        let (_, conn) = waiter();
        let details = crate::subscriber::StreamDetails::new("p", "simplepoll", "", 0, false);
        conn.details.set(details).unwrap();
        conn
    }

    #[test]
    fn a_poll_creates_the_channel_but_is_no_subscriber() {
        let ch = channels();
        let mut out = Vec::new();
        let poll = ch.subscribe("new", Backlog::All, &poller(), &mut out);
        assert_eq!(ch.count_subscribers("new"), 0);
        ch.unsubscribe(poll);
        assert_eq!(ch.list()[0].subscribers, 0);
        assert_eq!(ch.len(), 1, "kept until the housekeeping");
        ch.housekeep(1000);
        assert!(ch.is_empty());
    }

    #[test]
    fn clearing_removes_channels_without_streaming_subscribers() {
        let ids = Ids::starting_at(1);
        let ch = channels();
        let (_, waiter) = waiter();
        let mut out = Vec::new();
        let _stream = ch.subscribe("kept", Backlog::None, &waiter, &mut out);
        ch.publish("kept", Bytes::from_static(b"m"), &ids, ctx());
        ch.publish("gone", Bytes::from_static(b"m"), &ids, ctx());
        let _poll = ch.subscribe("polled", Backlog::None, &poller(), &mut out);
        ch.clear_all();
        let names: Vec<String> = ch.list().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["kept"]);
        assert_eq!(ch.list()[0].messages, 0);
    }

    #[test]
    fn channel_with_messages_survives_until_expiry() {
        let ids = Ids::starting_at(1);
        let ch = channels();
        ch.publish("x", Bytes::from_static(b"m"), &ids, ctx());
        ch.housekeep(1030);
        assert_eq!(ch.len(), 1);
        ch.housekeep(1061);
        assert_eq!(ch.len(), 0);
    }

    #[test]
    fn publish_wakes_waiters() {
        let ids = Ids::starting_at(1);
        let ch = channels();
        let (wakeup, waiter) = waiter();
        let mut out = Vec::new();
        let _sub = ch.subscribe("w", Backlog::None, &waiter, &mut out);
        ch.publish("w", Bytes::from_static(b"m"), &ids, ctx());
        // The raise is kept until the wait: this completes at once.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), wakeup.wakeup.wait())
                .await
                .expect("woken");
        });
    }

    #[test]
    fn joining_after_everything_expired_is_not_a_lag() {
        let ids = Ids::starting_at(1);
        let ch = channels();
        let (_, first) = waiter();
        let mut out = Vec::new();
        let _keeps_it_alive = ch.subscribe("e", Backlog::None, &first, &mut out);
        ch.publish("e", Bytes::from_static(b"old"), &ids, ctx());
        ch.housekeep(1000 + 61);
        let (_, second) = waiter();
        let sub = ch.subscribe("e", Backlog::All, &second, &mut out);
        assert!(out.is_empty(), "the expired message is not replayed");
        assert_eq!(sub.channel.read_after(sub.cursor, 10, &mut out), Ok(()));
    }

    #[test]
    fn list_is_sorted_and_counts() {
        let ids = Ids::starting_at(1);
        let ch = channels();
        for name in ["zeta", "alpha", "mid"] {
            ch.publish(name, Bytes::from_static(b"m"), &ids, ctx());
        }
        let names: Vec<String> = ch.list().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, vec!["alpha", "mid", "zeta"]);
        ch.clear_all();
        assert!(ch.list().iter().all(|s| s.messages == 0));
        ch.housekeep(1000);
        assert!(ch.is_empty());
    }
}
