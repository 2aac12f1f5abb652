//! The daemon-wide clock's side of the connection table: the deadlines a
//! connection leaves for it (pings, MaxTime, stalled writes) and the pass
//! that wakes the connections whose deadline came, a slice of the table at
//! a time. One timer for everybody instead of a `Sleep` per connection.

use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, Ordering};

use crate::connections::{Conn, Connections};

/// Deadlines the clock watches, and the wake-up reasons it leaves. Seconds
/// since the epoch fit 32 bits until 2106.
#[derive(Debug, Default)]
pub struct ConnTimers {
    /// Seconds between pings; 0 = no pings.
    pub ping_interval: AtomicU16,
    pub next_ping: AtomicU32,
    /// MaxTime: when the stream ends.
    pub deadline: AtomicU32,
    /// When the write in progress started; 0 = not writing.
    pub write_since: AtomicU32,
    /// [`WAKE_PING`], [`WAKE_DEADLINE`], [`WAKE_STALLED`].
    pub due: AtomicU8,
}

/// The clock splits the connection table into this many parts per second
/// at most, and at least [`MIN_CLOCK_SLICES`] (see [`clock_slices`]).
pub const MAX_CLOCK_SLICES: usize = 100;
/// Fewest parts: a 10 Hz clock, cheap for a small or idle daemon.
pub const MIN_CLOCK_SLICES: usize = 10;
/// Connections per part the clock aims for.
const CONNECTIONS_PER_SLICE: usize = 200;

/// How many parts the clock splits `connections` into for the next second.
/// Each part's pings are written in one burst that message deliveries queue
/// behind: at 19,000 subscribers, 10 parts meant ~380 pings a burst and a
/// many-channels p99 of ~3 ms (1.1 ms with pings off), 100 parts ~1.1 ms;
/// but every part is a wake-up of the daemon, which at 1,000 subscribers
/// cost ~1 % of a core for nothing (BENCHMARKS.md). So: ~200 connections
/// a part (~40 pings a burst at the default 5 s ping interval), between 10
/// and 100 parts a second.
pub fn clock_slices(connections: usize) -> usize {
    (connections / CONNECTIONS_PER_SLICE).clamp(MIN_CLOCK_SLICES, MAX_CLOCK_SLICES)
}

/// Seconds as stored in [`ConnTimers`].
pub fn secs32(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// A ping is due.
pub const WAKE_PING: u8 = 1;
/// MaxTime has passed.
pub const WAKE_DEADLINE: u8 = 2;
/// A write has not completed within WriteTimeout.
pub const WAKE_STALLED: u8 = 4;

impl ConnTimers {
    /// Take (and clear) the reasons due.
    pub fn take_due(&self) -> u8 {
        self.due.swap(0, Ordering::AcqRel)
    }

    /// Whether a write is overdue (checked without clearing).
    pub fn stalled(&self) -> bool {
        self.due.load(Ordering::Acquire) & WAKE_STALLED != 0
    }

    /// What should wake this connection at `now`, updating the next ping.
    fn due_at(&self, now: u32, write_timeout: u32) -> u8 {
        let mut due = 0;
        let next_ping = self.next_ping.load(Ordering::Relaxed);
        if next_ping != 0 && now >= next_ping {
            let interval = u32::from(self.ping_interval.load(Ordering::Relaxed));
            if interval > 0 {
                due |= WAKE_PING;
                self.next_ping
                    .store(now.saturating_add(interval), Ordering::Relaxed);
            }
        }
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline != 0 && now >= deadline {
            due |= WAKE_DEADLINE;
        }
        let since = self.write_since.load(Ordering::Relaxed);
        if since != 0 && now >= since.saturating_add(write_timeout) {
            due |= WAKE_STALLED;
        }
        due
    }
}

/// One pass of the clock: wake every connection in `slice` of `slices`
/// whose ping, MaxTime deadline or write timeout came at `now` (seconds
/// since the epoch). One pass over the table is a few microseconds per
/// thousand connections. A connection due for a ping and nothing else is
/// first offered to `ping_directly`, which writes the ping itself when it
/// can (see [`crate::write_turn`]) and says so; only otherwise is the
/// connection woken to ping.
///
/// The clock runs `slices` passes a second (see [`clock_slices`]) and each
/// connection is visited once a second, so the pings of subscribers that
/// connected together are spread over the second instead of all being
/// written in one burst that would delay message deliveries.
pub fn tick(
    connections: &Connections,
    now: u64,
    write_timeout: u64,
    (slice, slices): (usize, usize),
    ping_directly: impl Fn(&Conn) -> bool,
) {
    let now = secs32(now);
    let write_timeout = secs32(write_timeout);
    connections.for_each_in_slice(slice, slices, |conn| {
        let due = conn.timers.due_at(now, write_timeout);
        if due == 0 || (due == WAKE_PING && ping_directly(conn)) {
            return;
        }
        conn.timers.due.fetch_or(due, Ordering::AcqRel);
        conn.wakeup.raise();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::test_subscriber as conn;
    use std::sync::Arc;

    fn tick_all(table: &Connections, now: u64, write_timeout: u64) {
        for slice in 0..MIN_CLOCK_SLICES {
            tick(table, now, write_timeout, (slice, MIN_CLOCK_SLICES), |_| {
                false
            });
        }
    }

    #[test]
    fn each_tick_visits_one_slice() {
        let table = Connections::new();
        let slices = 25;
        let n = 2 * slices as u64;
        let conns: Vec<Arc<Conn>> = (0..n).map(|i| conn(i, &format!("h{i}"))).collect();
        for c in &conns {
            c.timers.deadline.store(1, Ordering::Relaxed);
            table.insert(c.clone());
        }
        tick(&table, 5, 30, (3, slices), |_| false);
        let woken: Vec<u64> = conns
            .iter()
            .filter(|c| c.timers.take_due() != 0)
            .map(|c| u64::from(c.number))
            .collect();
        assert_eq!(woken, vec![3, 3 + slices as u64]);
    }

    #[test]
    fn clock_parts_grow_with_the_connections_within_bounds() {
        assert_eq!(clock_slices(0), MIN_CLOCK_SLICES);
        assert_eq!(clock_slices(1_000), MIN_CLOCK_SLICES);
        assert_eq!(clock_slices(5_000), 25);
        assert_eq!(clock_slices(19_000), 95);
        assert_eq!(clock_slices(1_000_000), MAX_CLOCK_SLICES);
    }

    #[test]
    fn clock_wakes_for_pings_deadlines_and_stalled_writes() {
        let table = Connections::new();
        let c = conn(3, "t");
        table.insert(c.clone());
        c.timers.ping_interval.store(5, Ordering::Relaxed);
        c.timers.next_ping.store(105, Ordering::Relaxed);
        c.timers.deadline.store(200, Ordering::Relaxed);
        tick_all(&table, 104, 30);
        assert_eq!(c.timers.take_due(), 0);
        tick_all(&table, 105, 30);
        assert_eq!(c.timers.take_due(), WAKE_PING);
        assert_eq!(c.timers.next_ping.load(Ordering::Relaxed), 110);
        c.timers.write_since.store(100, Ordering::Relaxed);
        tick_all(&table, 131, 30);
        assert!(c.timers.stalled());
        assert_eq!(c.timers.take_due(), WAKE_PING | WAKE_STALLED);
        tick_all(&table, 200, 1000);
        assert_eq!(c.timers.take_due() & WAKE_DEADLINE, WAKE_DEADLINE);
    }

    #[test]
    fn a_ping_written_directly_wakes_nobody() {
        let table = Connections::new();
        let c = conn(4, "d");
        table.insert(c.clone());
        c.timers.ping_interval.store(5, Ordering::Relaxed);
        c.timers.next_ping.store(105, Ordering::Relaxed);
        for slice in 0..MIN_CLOCK_SLICES {
            tick(&table, 105, 30, (slice, MIN_CLOCK_SLICES), |_| true);
        }
        assert_eq!(c.timers.take_due(), 0, "the ping was written: nothing due");
        assert_eq!(c.timers.next_ping.load(Ordering::Relaxed), 110);
        // A ping due with a deadline goes to the stream, which does both.
        c.timers.deadline.store(110, Ordering::Relaxed);
        for slice in 0..MIN_CLOCK_SLICES {
            tick(&table, 110, 30, (slice, MIN_CLOCK_SLICES), |_| true);
        }
        assert_eq!(c.timers.take_due(), WAKE_PING | WAKE_DEADLINE);
    }
}
