//! What this worker's subscribers saw, kept O(1) in the number of
//! messages: servers deliver a channel in order, so a sequence number above
//! the next expected one is a gap (loss) and one below it is a duplicate.
//! [`absorb`] turns the bytes a subscriber read into that bookkeeping (and
//! latency samples); [`finish`] turns it into the `RESULT` totals.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;

use super::pipe::{Counts, WorkerResult};
use super::websocket;
use crate::payload;

/// Latency histogram range: 1 µs to 10 minutes, 3 significant digits.
pub const HIST_MAX_US: u64 = 600_000_000;

/// One subscriber's bookkeeping.
#[derive(Debug, Default)]
pub struct SubState {
    pub channel: usize,
    pub connected: bool,
    pub gave_up: bool,
    pub next_seq: u64,
    pub gaps: u64,
    pub dups: u64,
    /// Highest Meteor message id seen (a resume asks for the next one).
    pub last_meteor_id: Option<u64>,
    /// Last EventSource `id:` seen (Nchan resumes with `Last-Event-ID`).
    pub last_event_id: Vec<u8>,
}

/// The state every subscriber task of this worker shares (one thread:
/// borrowed once per read, never across an await).
pub struct Shared {
    pub subs: Vec<SubState>,
    pub hist: Histogram<u64>,
    pub deliveries: u64,
    pub bytes_read: u64,
    pub disconnects: u64,
    pub reconnects: u64,
}

impl Shared {
    /// Subscriber `i` on channel `channel_of(i)`, nothing seen yet.
    pub fn new(count: usize, channel_of: impl Fn(usize) -> usize) -> anyhow::Result<Self> {
        Ok(Self {
            subs: (0..count)
                .map(|i| SubState {
                    channel: channel_of(i),
                    ..SubState::default()
                })
                .collect(),
            hist: Histogram::new_with_bounds(1, HIST_MAX_US, 3)?,
            deliveries: 0,
            bytes_read: 0,
            disconnects: 0,
            reconnects: 0,
        })
    }

    /// The lowest next sequence number over the live subscribers
    /// (`u64::MAX` when none is live): the flow-control floor.
    pub fn floor(&self) -> u64 {
        self.subs
            .iter()
            .filter(|s| s.connected && !s.gave_up)
            .map(|s| s.next_seq)
            .min()
            .unwrap_or(u64::MAX)
    }
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Consumes complete deliveries from `buf` (subscriber `local` read
/// `fresh` new bytes into it), updating the shared state; an incomplete
/// delivery stays in `buf` for the next read.
pub fn absorb(shared: &RefCell<Shared>, local: usize, buf: &mut BytesMut, fresh: usize) {
    let now = now_us();
    let mut sh = shared.borrow_mut();
    let sh = &mut *sh;
    sh.bytes_read += fresh as u64;
    let st = &mut sh.subs[local];
    let hist = &mut sh.hist;
    let mut count = 0u64;
    let keep = payload::scan(buf, |d| {
        count += 1;
        record(st, hist, now, d, buf);
    });
    sh.deliveries += count;
    buf.advance(keep);
}

/// [`absorb`] for a WebSocket stream: whole frames are consumed; returns
/// how many pings came (each owes a pong).
pub fn absorb_frames(
    shared: &RefCell<Shared>,
    local: usize,
    buf: &mut BytesMut,
    fresh: usize,
) -> usize {
    let now = now_us();
    let mut sh = shared.borrow_mut();
    let sh = &mut *sh;
    sh.bytes_read += fresh as u64;
    let st = &mut sh.subs[local];
    let hist = &mut sh.hist;
    let mut count = 0u64;
    let (used, pings) = websocket::scan(buf, |d| {
        count += 1;
        record(st, hist, now, d, &[]);
    });
    sh.deliveries += count;
    buf.advance(used);
    pings
}

/// Book one delivery `d` (found in `buf`, where its event id lies).
fn record(
    st: &mut SubState,
    hist: &mut Histogram<u64>,
    now: u64,
    d: &payload::Delivery,
    buf: &[u8],
) {
    {
        if d.seq == st.next_seq {
            st.next_seq += 1;
        } else if d.seq > st.next_seq {
            st.gaps += d.seq - st.next_seq;
            st.next_seq = d.seq + 1;
        } else {
            st.dups += 1;
        }
        if let Some(id) = d.meteor_id {
            st.last_meteor_id = Some(st.last_meteor_id.map_or(id, |old| old.max(id)));
        }
        if let Some((a, b)) = d.event_id
            && let Some(id) = buf.get(a..b)
        {
            st.last_event_id.clear();
            st.last_event_id.extend_from_slice(id);
        }
        let _ = hist.record(now.saturating_sub(d.sent_us).clamp(1, HIST_MAX_US));
    }
}

/// The `RESULT` totals, given how many messages were published on each
/// channel.
pub fn finish(sh: &Shared, published: &[u64]) -> WorkerResult {
    let mut c = Counts {
        deliveries: sh.deliveries,
        bytes_read: sh.bytes_read,
        disconnects: sh.disconnects,
        reconnects: sh.reconnects,
        ..Counts::default()
    };
    for st in &sh.subs {
        if st.gave_up {
            c.gave_up += 1;
        }
        // A subscriber that never connected is a setup failure, not loss.
        if !st.connected && st.next_seq == 0 {
            continue;
        }
        let p = published[st.channel];
        let lost = p.saturating_sub(st.next_seq) + st.gaps;
        c.expected += p;
        c.lost += lost;
        c.duplicated += st.dups;
        if lost > 0 {
            c.subs_with_loss += 1;
        }
    }
    WorkerResult {
        counts: c,
        latency: sh
            .hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(channels: &[usize]) -> RefCell<Shared> {
        let mut sh = Shared::new(channels.len(), |i| channels[i]).unwrap();
        for st in &mut sh.subs {
            st.connected = true;
        }
        RefCell::new(sh)
    }

    fn stream(seqs: &[u64]) -> BytesMut {
        let mut v = Vec::new();
        for &seq in seqs {
            v.extend_from_slice(format!("<script>p({},\"c\",\"", 100 + seq).as_bytes());
            payload::encode(seq, now_us(), 60, &mut v);
            v.extend_from_slice(b"\");</script>\r\n");
        }
        BytesMut::from(&v[..])
    }

    #[test]
    fn counts_gaps_duplicates_and_resume_ids() {
        let sh = shared(&[0, 0]);
        // Subscriber 0 misses seq 2 and sees seq 3 twice.
        let mut buf = stream(&[0, 1, 3, 3, 4]);
        let n = buf.len();
        absorb(&sh, 0, &mut buf, n);
        // Subscriber 1 gets everything.
        let mut buf = stream(&[0, 1, 2, 3, 4]);
        let n = buf.len();
        absorb(&sh, 1, &mut buf, n);
        {
            let b = sh.borrow();
            assert_eq!(b.deliveries, 10);
            assert_eq!(b.subs[0].last_meteor_id, Some(104));
            assert_eq!((b.subs[0].gaps, b.subs[0].dups), (1, 1));
        }
        // Five were published; one more (seq 5) reached nobody.
        let result = finish(&sh.borrow(), &[6]);
        let r = result.counts;
        assert_eq!(r.expected, 12);
        assert_eq!(r.lost, 1 + 1 + 1);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.subs_with_loss, 2);
        assert_eq!(result.latency.iter().map(|&(_, c)| c).sum::<u64>(), 10);
    }

    #[test]
    fn never_connected_subscribers_are_not_loss() {
        let sh = shared(&[0, 1]);
        sh.borrow_mut().subs[1].connected = false;
        let r = finish(&sh.borrow(), &[0, 7]).counts;
        assert_eq!((r.expected, r.lost), (0, 0));
    }

    #[test]
    fn floor_is_the_slowest_live_subscriber() {
        let sh = shared(&[0, 0, 0]);
        let mut b = sh.borrow_mut();
        b.subs[0].next_seq = 5;
        b.subs[1].next_seq = 3;
        b.subs[2].next_seq = 1;
        b.subs[2].gave_up = true;
        assert_eq!(b.floor(), 3);
        b.subs[1].connected = false;
        assert_eq!(b.floor(), 5);
        b.subs[0].connected = false;
        assert_eq!(b.floor(), u64::MAX);
    }
}
