//! A channel's message history: a ring of `Arc<Message>` in id order that is
//! both what `.b` / `.h` / `.r` replay and what live subscribers read from
//! (each keeps a cursor, the last id it sent).
//!
//! Two bounds apply. `MaxMessagesPerChannel` (and `MaxMessageAge`) decide what
//! a *new* subscriber can replay. Live subscribers get a little more slack: a
//! message pushed out of the replayable part stays readable for
//! [`LIVE_GRACE_SECS`] (at most [`LIVE_EXTRA`] messages), so a subscriber that
//! was descheduled during a burst catches up instead of being cut off. Only a
//! cursor older than everything still held has *lagged*: messages were lost
//! to it, and the caller closes it so the client resumes with `.r`.

use std::collections::VecDeque;
use std::sync::Arc;

use super::Message;

/// Messages kept beyond `MaxMessagesPerChannel` for live subscribers. At
/// 400-byte messages this is under 1 MiB per busy channel.
pub const LIVE_EXTRA: usize = 1024;
/// Seconds a message beyond `MaxMessagesPerChannel` stays readable by live
/// subscribers: long enough for a burst, short enough that quiet channels
/// hold nothing extra.
pub const LIVE_GRACE_SECS: u64 = 5;

/// What a new subscriber asks to replay before live messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Live messages only.
    None,
    /// Everything stored (`.h`, `.b0`, `.b`, `.r`).
    All,
    /// The last n stored messages (`.b<n>`).
    Last(u64),
    /// Stored messages with id >= this (`.r<id>`).
    FromId(u64),
    /// Stored messages with id > this: a resume after the last id seen
    /// (EventSource's `Last-Event-ID`, WebSocket's `since`), exclusive as
    /// EventSource defines it.
    After(u64),
}

impl Backlog {
    /// The first id a resume asks for; `None` when the backlog is not a
    /// resume (live only, everything, the last n), which can have no gap.
    pub fn resumes_from(self) -> Option<u64> {
        match self {
            Backlog::FromId(id) => Some(id),
            Backlog::After(id) => Some(id.saturating_add(1)),
            Backlog::None | Backlog::All | Backlog::Last(_) => None,
        }
    }
}

/// A resume asked for messages the history no longer holds (evicted,
/// expired, cleared, or from before this process knew the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first id the client wanted.
    pub requested: u64,
    /// The first id it will get; `None` when the history holds nothing it
    /// will get (the caller then names the next id to be assigned).
    pub oldest: Option<u64>,
}

/// A cursor fell out of the history: messages were lost to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

#[derive(Debug)]
pub struct History {
    ring: VecDeque<Arc<Message>>,
    /// `MaxMessagesPerChannel`.
    replay_limit: usize,
    /// Highest id ever pushed out for space or age: a live cursor below it
    /// may have missed messages.
    evicted_up_to: u64,
    /// Highest id ever pushed (kept across clears and evictions): what a
    /// new message's id must exceed.
    newest: u64,
    /// Highest id that may have been in this channel and is no longer
    /// replayable (evicted, expired, cleared, or before the channel's
    /// history began): a resume at or below it has a [`Gap`].
    lost_up_to: u64,
}

impl History {
    pub fn new(replay_limit: usize) -> History {
        History::beginning_after(replay_limit, 0)
    }

    /// A history that cannot vouch for ids up to `unknown_up_to`: they were
    /// handed out before it existed, so a resume from there has a gap.
    pub fn beginning_after(replay_limit: usize, unknown_up_to: u64) -> History {
        History {
            ring: VecDeque::new(),
            replay_limit,
            evicted_up_to: 0,
            newest: 0,
            lost_up_to: unknown_up_to,
        }
    }

    /// This history is loaded from elsewhere and begins at `first`: ids
    /// below it are not vouched for. An empty, never-used history takes
    /// exactly that (whatever its creation assumed); one that holds or held
    /// messages only raises its bound, and only for ids above what it had.
    pub fn begins_at(&mut self, first: u64) {
        let below = first.saturating_sub(1);
        if self.newest == 0 {
            self.lost_up_to = below;
        } else if below > self.newest {
            self.lost_up_to = self.lost_up_to.max(below);
        }
    }

    /// Highest id that may be lost to a resume (see [`History::gap`]).
    pub fn lost_up_to(&self) -> u64 {
        let hidden = self.ring.len().saturating_sub(self.replay_limit);
        let hidden_top = hidden.checked_sub(1).map_or(0, |i| self.ring[i].id);
        self.lost_up_to.max(self.evicted_up_to).max(hidden_top)
    }

    /// The gap a subscriber joining with `backlog` has: `Some` when it
    /// resumes from an id the history no longer covers.
    pub fn gap(&self, backlog: Backlog) -> Option<Gap> {
        let requested = backlog.resumes_from()?;
        if requested > self.lost_up_to() {
            return None;
        }
        let oldest = self.replayable().find(|m| m.id >= requested).map(|m| m.id);
        Some(Gap { requested, oldest })
    }

    pub fn set_replay_limit(&mut self, limit: usize, now: u64) {
        self.replay_limit = limit;
        self.trim(now);
    }

    /// Append a message and trim. Ids must increase: the caller checks
    /// against [`History::newest`] first.
    pub fn push(&mut self, message: Arc<Message>, now: u64) {
        self.newest = self.newest.max(message.id);
        self.ring.push_back(message);
        self.trim(now);
    }

    /// Highest id this history ever held, 0 for none.
    pub fn newest(&self) -> u64 {
        self.newest
    }

    fn trim(&mut self, now: u64) {
        while self.ring.len() > self.replay_limit {
            let Some(front) = self.ring.front() else {
                break;
            };
            let extra = self.ring.len() - self.replay_limit;
            if extra <= LIVE_EXTRA && front.timestamp + LIVE_GRACE_SECS > now {
                break;
            }
            self.evict_front();
        }
    }

    fn evict_front(&mut self) {
        if let Some(front) = self.ring.pop_front() {
            self.evicted_up_to = self.evicted_up_to.max(front.id);
        }
        if self.ring.capacity() > 64 && self.ring.len() < self.ring.capacity() / 4 {
            self.ring.shrink_to(self.ring.len() * 2);
        }
    }

    /// Drop messages older than `max_age` seconds (`MaxMessageAge`; 0 =
    /// everything older than this second, as the original's `time - 0`),
    /// and the live slack whose grace ran out.
    pub fn expire(&mut self, now: u64, max_age: u64) {
        while let Some(front) = self.ring.front() {
            // As the original: gone once strictly older than `max_age`.
            if front.timestamp.saturating_add(max_age) >= now {
                break;
            }
            self.evict_front();
        }
        self.trim(now);
    }

    /// Forget everything (SIGUSR1). Not a lag: live subscribers simply have
    /// nothing more to read.
    pub fn clear(&mut self) {
        self.lost_up_to = self.lost_up_to.max(self.newest);
        self.ring.clear();
        self.ring.shrink_to_fit();
    }

    /// The replayable part (what `.h` sends and LISTCHANNELS counts).
    fn replayable(&self) -> impl DoubleEndedIterator<Item = &Arc<Message>> + ExactSizeIterator {
        let skip = self.ring.len().saturating_sub(self.replay_limit);
        self.ring.iter().skip(skip)
    }

    pub fn replayable_len(&self) -> usize {
        self.ring.len().min(self.replay_limit)
    }

    /// Text bytes of the messages held for replay (for `/metrics`).
    pub fn replayable_bytes(&self) -> usize {
        self.replayable().map(|m| m.text().len()).sum()
    }

    /// Where a subscriber joining now starts reading live messages: after
    /// everything held and everything already gone.
    pub fn live_cursor(&self) -> u64 {
        self.last_id().max(self.evicted_up_to)
    }

    /// Id of the newest message held, 0 when empty.
    pub fn last_id(&self) -> u64 {
        self.ring.back().map_or(0, |m| m.id)
    }

    /// Append the replay for `backlog` to `out`.
    pub fn backlog(&self, backlog: Backlog, out: &mut Vec<Arc<Message>>) {
        let replayable = self.replayable();
        match backlog {
            Backlog::None => {}
            Backlog::All | Backlog::Last(0) => out.extend(replayable.cloned()),
            Backlog::Last(n) => {
                let len = replayable.len();
                let skip = len.saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
                out.extend(replayable.skip(skip).cloned());
            }
            Backlog::FromId(id) => out.extend(replayable.filter(|m| m.id >= id).cloned()),
            Backlog::After(id) => out.extend(replayable.filter(|m| m.id > id).cloned()),
        }
    }

    /// Append up to `max` messages newer than `cursor` to `out`.
    pub fn read_after(
        &self,
        cursor: u64,
        max: usize,
        out: &mut Vec<Arc<Message>>,
    ) -> Result<(), Lagged> {
        if cursor < self.evicted_up_to {
            return Err(Lagged);
        }
        let start = self.ring.partition_point(|m| m.id <= cursor);
        out.extend(self.ring.range(start..).take(max).cloned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(id: u64, ts: u64) -> Arc<Message> {
        Arc::new(Message::new(
            id,
            "c".into(),
            ts,
            Bytes::from(format!("m{id}")),
            0,
        ))
    }

    fn ids(v: &[Arc<Message>]) -> Vec<u64> {
        v.iter().map(|m| m.id).collect()
    }

    fn filled(limit: usize, id_list: &[u64]) -> History {
        let mut h = History::new(limit);
        for &id in id_list {
            h.push(msg(id, 100), 100);
        }
        h
    }

    #[test]
    fn backlog_variants() {
        let h = filled(10, &[3, 5, 9, 12]);
        let run = |b| {
            let mut out = Vec::new();
            h.backlog(b, &mut out);
            ids(&out)
        };
        assert_eq!(run(Backlog::None), Vec::<u64>::new());
        assert_eq!(run(Backlog::All), vec![3, 5, 9, 12]);
        assert_eq!(run(Backlog::Last(0)), vec![3, 5, 9, 12]);
        assert_eq!(run(Backlog::Last(2)), vec![9, 12]);
        assert_eq!(run(Backlog::Last(99)), vec![3, 5, 9, 12]);
        assert_eq!(run(Backlog::FromId(5)), vec![5, 9, 12], "id present");
        assert_eq!(
            run(Backlog::FromId(6)),
            vec![9, 12],
            "gone id starts at the next higher"
        );
        assert_eq!(
            run(Backlog::FromId(13)),
            Vec::<u64>::new(),
            "past the last gives nothing"
        );
    }

    #[test]
    fn replay_is_bounded_but_live_readers_get_slack() {
        let h = filled(3, &[1, 2, 3, 4, 5]);
        let mut out = Vec::new();
        h.backlog(Backlog::All, &mut out);
        assert_eq!(ids(&out), vec![3, 4, 5]);
        assert_eq!(h.replayable_len(), 3);
        out.clear();
        assert_eq!(h.read_after(1, 100, &mut out), Ok(()));
        assert_eq!(
            ids(&out),
            vec![2, 3, 4, 5],
            "slack still readable within grace"
        );
    }

    #[test]
    fn slack_expires_and_then_old_cursors_lag() {
        let mut h = filled(2, &[1, 2, 3, 4]);
        h.push(msg(5, 100 + LIVE_GRACE_SECS), 100 + LIVE_GRACE_SECS);
        let mut out = Vec::new();
        assert_eq!(h.read_after(2, 100, &mut out), Err(Lagged));
        assert_eq!(h.read_after(3, 100, &mut out), Ok(()));
        assert_eq!(ids(&out), vec![4, 5]);
    }

    #[test]
    fn slack_is_bounded_in_count() {
        let ids_list: Vec<u64> = (1..=(LIVE_EXTRA as u64 + 10)).collect();
        let h = filled(0, &ids_list);
        let mut out = Vec::new();
        assert_eq!(h.read_after(10, usize::MAX, &mut out), Ok(()));
        assert_eq!(out.len(), LIVE_EXTRA);
        assert_eq!(h.read_after(9, 1, &mut out), Err(Lagged));
        assert_eq!(
            h.replayable_len(),
            0,
            "MaxMessagesPerChannel 0 replays nothing"
        );
    }

    #[test]
    fn read_after_limits_and_orders() {
        let h = filled(10, &[2, 4, 6, 8]);
        let mut out = Vec::new();
        h.read_after(3, 2, &mut out).unwrap();
        assert_eq!(ids(&out), vec![4, 6]);
        out.clear();
        h.read_after(8, 10, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn expire_by_age() {
        let mut h = History::new(10);
        h.push(msg(1, 100), 100);
        h.push(msg(2, 150), 150);
        h.expire(205, 100);
        assert_eq!(h.replayable_len(), 1);
        assert_eq!(h.last_id(), 2);
        let mut out = Vec::new();
        assert_eq!(h.read_after(0, 10, &mut out), Err(Lagged));
    }

    #[test]
    fn a_message_exactly_max_age_old_stays() {
        let mut h = History::new(10);
        h.push(msg(1, 100), 100);
        h.expire(200, 100);
        assert_eq!(h.replayable_len(), 1);
        h.expire(201, 100);
        assert_eq!(h.replayable_len(), 0);
    }

    #[test]
    fn zero_max_age_drops_what_is_older_than_this_second() {
        let mut h = History::new(10);
        h.push(msg(1, 100), 100);
        h.expire(100, 0);
        assert_eq!(h.replayable_len(), 1, "published this second");
        h.expire(101, 0);
        assert_eq!(h.replayable_len(), 0);
    }

    #[test]
    fn clear_is_not_lag() {
        let mut h = filled(10, &[1, 2]);
        h.clear();
        let mut out = Vec::new();
        assert_eq!(h.read_after(0, 10, &mut out), Ok(()));
        assert!(out.is_empty());
        assert_eq!(h.last_id(), 0);
        assert_eq!(h.newest(), 2, "what was held still bounds new ids");
    }

    #[test]
    fn a_resume_inside_the_history_has_no_gap() {
        let h = filled(10, &[3, 5, 9]);
        assert_eq!(h.gap(Backlog::After(0)), None, "nothing was ever lost");
        assert_eq!(h.gap(Backlog::FromId(4)), None);
        assert_eq!(h.gap(Backlog::All), None);
        assert_eq!(h.gap(Backlog::Last(1)), None);
    }

    #[test]
    fn a_resume_below_what_was_evicted_has_a_gap() {
        let mut h = History::new(2);
        for id in [3, 5, 9] {
            h.push(msg(id, 0), 1000);
        }
        // 3 went for space: wanting 3 (or anything up to it) is a gap that
        // names the first id the client will get.
        let gap = Gap {
            requested: 1,
            oldest: Some(5),
        };
        assert_eq!(h.gap(Backlog::After(0)), Some(gap));
        assert_eq!(h.gap(Backlog::After(2)).map(|g| g.requested), Some(3));
        assert_eq!(h.gap(Backlog::After(3)), None, "3 was seen");
        assert_eq!(h.gap(Backlog::FromId(4)), None);
    }

    #[test]
    fn the_live_slack_is_not_replayable_so_it_is_a_gap_too() {
        let mut h = History::new(1);
        h.push(msg(1, 100), 100);
        h.push(msg(2, 100), 100);
        assert_eq!(h.ring.len(), 2, "1 is kept for live readers");
        let gap = Gap {
            requested: 1,
            oldest: Some(2),
        };
        assert_eq!(h.gap(Backlog::After(0)), Some(gap));
    }

    #[test]
    fn a_cleared_or_new_history_cannot_vouch_for_what_came_before() {
        let mut h = filled(10, &[1, 2]);
        h.clear();
        let gap = Gap {
            requested: 2,
            oldest: None,
        };
        assert_eq!(h.gap(Backlog::After(1)), Some(gap));
        assert_eq!(h.gap(Backlog::After(2)), None);
        let fresh = History::beginning_after(10, 40);
        assert_eq!(fresh.gap(Backlog::FromId(40)).map(|g| g.oldest), Some(None));
        assert_eq!(fresh.gap(Backlog::FromId(41)), None);
    }

    #[test]
    fn after_is_exclusive() {
        let h = filled(10, &[3, 5, 9]);
        let mut out = Vec::new();
        h.backlog(Backlog::After(5), &mut out);
        assert_eq!(ids(&out), [9]);
    }
}
