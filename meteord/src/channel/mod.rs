//! Channels: the registry (name → channel) and each channel's history and
//! waiting subscribers.
//!
//! Fan-out works like a commit log with cursors: publishing appends to the
//! history and wakes every waiting subscriber; each subscriber then reads the
//! messages after its own cursor. Catch-up after a burst and live delivery are
//! the same code path, a slow subscriber costs nothing but its cursor, and
//! the publisher never waits for anybody.
//!
//! Messages come in two ways, one path: [`Channels::publish`] takes the id
//! from an [`IdSource`] (the local broker), [`Channels::append`] takes a
//! message whose id was decided elsewhere (a cluster feed, a restore from
//! disk). Both store under the channel lock and wake the same waiters.
//! Ids increase per channel: append refuses an id at or below the highest
//! the channel ever held ([`Stale`]), so a feed that replays a stretch after
//! a reconnect delivers nothing twice and nothing out of order. "Ever" is
//! since the channel was created: one freed for having neither messages nor
//! subscribers starts afresh, as nobody can be behind on it.
//!
//! Publishers may also write a message themselves ([`Channels::publish_direct`],
//! [`Channels::append_direct`]): the subscribers caught up on the channel
//! are handed back in a [`Direct`] instead of being woken, for the caller
//! to write to once the channel lock is released
//! (`crate::subscriber::stream::write_direct`, which wakes any it cannot);
//! `hand_out` decides which.
//!
//! Locks: one for the name map, one per channel; never held across `.await`,
//! always taken map-then-channel. A channel removed from the map is marked
//! `removed` under its own lock so a publisher that raced the removal retries
//! on the live channel instead of writing into a dead one.

mod hand_out;
mod history;
mod message;
mod name;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

pub use hand_out::{DIRECT_MIN_GAP, Direct};
pub use history::{Backlog, Gap, History, LIVE_EXTRA, LIVE_GRACE_SECS, Lagged};
pub use message::Message;
pub use name::ChannelName;

use crate::ids::IdSource;

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
    /// When it last stored a message (who delivers the next, `hand_out`).
    pace: hand_out::Pace,
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
    fn new(name: ChannelName, replay_limit: usize, unknown_up_to: u64) -> Channel {
        Channel {
            name,
            state: Mutex::new(ChannelState {
                history: History::beginning_after(replay_limit, unknown_up_to),
                waiters: Vec::new(),
                free: Vec::new(),
                subscribers: 0,
                removed: false,
                pace: hand_out::Pace::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        // A panic while holding the lock cannot leave the history half
        // updated in a way that matters more than losing the daemon, so
        // recover the data instead of poisoning every later publish.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A publisher finished writing a message to the subscribers it took
    /// ([`Direct::finished`]).
    fn direct_written(&self, at: std::time::Instant) {
        self.lock().pace.direct_written(at);
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

/// A message whose id was decided elsewhere, for [`Channels::append`].
#[derive(Debug, Clone)]
pub struct Stamped {
    pub id: u64,
    /// Seconds since the epoch when it was first published.
    pub timestamp: u64,
    pub text: Bytes,
}

/// [`Channels::append`] stored nothing: the channel has already held
/// `last`, which is at or above the message's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    pub last: u64,
}

#[derive(Debug)]
struct Registry {
    map: HashMap<ChannelName, Arc<Channel>>,
    limits: Limits,
    /// Ids a channel created now cannot vouch for (see
    /// [`Channels::set_known_from`]): a resume from one of them is a gap.
    unknown_up_to: u64,
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
                unknown_up_to: 0,
            }),
        }
    }

    /// Every message with an id of `id` or above is (or was, until evicted)
    /// in these histories: ids below were handed out before this process
    /// held them (a restart without a history file). A channel created
    /// from now on reports a resume below `id` as a gap rather than
    /// pretend it missed nothing. Set once at start, before the ports open.
    pub fn set_known_from(&self, id: u64) {
        let mut registry = self.lock();
        registry.unknown_up_to = registry.unknown_up_to.max(id.saturating_sub(1));
    }

    /// `channel`'s history, loaded from elsewhere (a cluster's shared
    /// history), begins at `first`: a resume from before it is a gap, as
    /// nothing tells whether earlier messages were trimmed. A channel not
    /// held yet is created knowing exactly that much.
    pub fn history_begins_at(&self, channel: impl AsRef<[u8]>, first: u64) {
        loop {
            let target = Self::get_or_create(&mut self.lock(), channel.as_ref());
            let mut state = target.lock();
            if state.removed {
                continue;
            }
            state.history.begins_at(first);
            return;
        }
    }

    /// A channel leaves the map: whatever it lost, a channel of that name
    /// created later cannot vouch for either. Kept for all names at once
    /// (one number, not one per name forgotten), so a resume on a new
    /// channel may report a gap that was not one, never the other way round.
    fn forget(registry_unknown: &mut u64, state: &ChannelState) {
        *registry_unknown = (*registry_unknown).max(state.history.lost_up_to());
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_or_create(registry: &mut Registry, name: &[u8]) -> Arc<Channel> {
        if let Some(channel) = registry.map.get(name) {
            return channel.clone();
        }
        let name = ChannelName::from(name);
        let channel = Arc::new(Channel::new(
            name.clone(),
            registry.limits.replay_limit,
            registry.unknown_up_to,
        ));
        registry.map.insert(name, channel.clone());
        channel
    }

    /// Publish `text` to `channel` with the next id from `ids`, then store
    /// it as [`Channels::append`] does. Returns the message.
    pub fn publish(
        &self,
        channel: impl AsRef<[u8]>,
        text: Bytes,
        ids: &dyn IdSource,
        ctx: PublishContext,
    ) -> Arc<Message> {
        self.publish_to(channel, text, ids, ctx, None)
    }

    /// [`Channels::publish`], but the subscribers that can take the message
    /// straight from the publisher go to `direct` instead of being woken.
    pub fn publish_direct(
        &self,
        channel: impl AsRef<[u8]>,
        text: Bytes,
        ids: &dyn IdSource,
        ctx: PublishContext,
        direct: &mut Direct,
    ) -> Arc<Message> {
        self.publish_to(channel, text, ids, ctx, Some(direct))
    }

    fn publish_to(
        &self,
        channel: impl AsRef<[u8]>,
        text: Bytes,
        ids: &dyn IdSource,
        ctx: PublishContext,
        direct: Option<&mut Direct>,
    ) -> Arc<Message> {
        loop {
            let target = Self::get_or_create(&mut self.lock(), channel.as_ref());
            let mut state = target.lock();
            if state.removed {
                continue;
            }
            // The id is taken under the channel lock so ids in every history
            // are increasing.
            let mut id = ids.next();
            let newest = state.history.newest();
            if id <= newest {
                // Something was appended above the sequence without telling
                // it (IdSource::observe): move past it rather than go back.
                ids.observe(newest);
                id = ids.next();
            }
            let message = Stamped {
                id,
                timestamp: ctx.now,
                text,
            };
            return Self::store(&target, &mut state, message, ctx, direct);
        }
    }

    /// Store `message`, whose id was decided elsewhere, in `channel` and
    /// wake its subscribers: the same path as a publish. An id at or below
    /// the highest the channel ever held is refused and nothing happens.
    pub fn append(
        &self,
        channel: impl AsRef<[u8]>,
        message: Stamped,
        ctx: PublishContext,
    ) -> Result<Arc<Message>, Stale> {
        self.append_to(channel, message, ctx, None)
    }

    /// [`Channels::append`], handing the subscribers that can take the
    /// message straight from the caller to `direct` (see
    /// [`Channels::publish_direct`]).
    pub fn append_direct(
        &self,
        channel: impl AsRef<[u8]>,
        message: Stamped,
        ctx: PublishContext,
        direct: &mut Direct,
    ) -> Result<Arc<Message>, Stale> {
        self.append_to(channel, message, ctx, Some(direct))
    }

    fn append_to(
        &self,
        channel: impl AsRef<[u8]>,
        message: Stamped,
        ctx: PublishContext,
        direct: Option<&mut Direct>,
    ) -> Result<Arc<Message>, Stale> {
        loop {
            let target = Self::get_or_create(&mut self.lock(), channel.as_ref());
            let mut state = target.lock();
            if state.removed {
                continue;
            }
            let last = state.history.newest();
            if message.id <= last {
                return Err(Stale { last });
            }
            return Ok(Self::store(&target, &mut state, message, ctx, direct));
        }
    }

    /// Push into `target`'s history (its lock held as `state`) and wake
    /// every waiter, but those `direct` takes.
    fn store(
        target: &Arc<Channel>,
        state: &mut ChannelState,
        message: Stamped,
        ctx: PublishContext,
        direct: Option<&mut Direct>,
    ) -> Arc<Message> {
        let message = Arc::new(Message::new(
            message.id,
            target.name.clone(),
            message.timestamp,
            message.text,
            ctx.generation,
        ));
        let after = state.history.live_cursor();
        state.history.push(message.clone(), ctx.now);
        let ChannelState { waiters, pace, .. } = state;
        hand_out::hand_out(target, waiters.iter().flatten(), after, pace, direct);
        message
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
        self.subscribe_resuming(channel, backlog, waiter, out).0
    }

    /// [`Channels::subscribe`], also telling the [`Gap`] of a resume that
    /// asked for more than the history holds (taken under the same lock as
    /// the replay, so the two agree).
    pub fn subscribe_resuming(
        &self,
        channel: impl AsRef<[u8]>,
        backlog: Backlog,
        waiter: &Waiter,
        out: &mut Vec<Arc<Message>>,
    ) -> (Subscription, Option<Gap>) {
        let counted = waiter.details.get().is_none_or(|d| d.persist);
        let mut registry = self.lock();
        let target = Self::get_or_create(&mut registry, channel.as_ref());
        let mut state = target.lock();
        drop(registry);
        let gap = state.history.gap(backlog);
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
        let subscription = Subscription {
            channel: target,
            token,
            counted,
            cursor,
        };
        (subscription, gap)
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
        let mut state = channel.lock();
        state.removed = true;
        Self::forget(&mut registry.unknown_up_to, &state);
        drop(state);
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

    /// Channels, messages held and their text bytes, for `/metrics`
    /// (its own pass, so listings do not pay for counting bytes).
    pub fn history_totals(&self) -> (usize, usize, usize) {
        let channels: Vec<Arc<Channel>> = self.lock().map.values().cloned().collect();
        let (mut messages, mut bytes) = (0, 0);
        for channel in &channels {
            let state = channel.lock();
            messages += state.history.replayable_len();
            bytes += state.history.replayable_bytes();
        }
        (channels.len(), messages, bytes)
    }

    /// Summary of one channel, if it exists.
    pub fn summary(&self, channel: impl AsRef<[u8]>) -> Option<ChannelSummary> {
        let target = self.lock().map.get(channel.as_ref()).cloned();
        target.map(|c| c.summary())
    }

    /// Every message the histories hold for replay, channel by channel in
    /// id order: what the history file's compaction writes.
    pub fn stored(&self) -> Vec<Arc<Message>> {
        let channels: Vec<Arc<Channel>> = self.lock().map.values().cloned().collect();
        let mut out = Vec::new();
        for channel in channels {
            channel.lock().history.backlog(Backlog::All, &mut out);
        }
        out
    }

    /// Periodic housekeeping: expire old messages, free channels with no
    /// messages and no subscribers.
    pub fn housekeep(&self, now: u64) {
        let mut registry = self.lock();
        let Registry {
            map,
            limits,
            unknown_up_to,
        } = &mut *registry;
        map.retain(|_, channel| {
            let mut state = channel.lock();
            state.history.expire(now, limits.max_age);
            let keep = state.subscribers > 0 || state.history.replayable_len() > 0;
            if !keep {
                state.removed = true;
                Self::forget(unknown_up_to, &state);
            }
            keep
        });
    }

    /// SIGUSR1: forget every channel's history (ids are *not* reset); a
    /// channel left with no streaming subscriber goes at once, as in the
    /// original.
    pub fn clear_all(&self) {
        let mut registry = self.lock();
        let Registry {
            map, unknown_up_to, ..
        } = &mut *registry;
        map.retain(|_, channel| {
            let mut state = channel.lock();
            state.history.clear();
            let keep = state.subscribers > 0;
            if !keep {
                state.removed = true;
                Self::forget(unknown_up_to, &state);
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
mod tests;
