//! Live connections, for LISTCONNECTIONS / DESCRIBE / LISTSUBSCRIBERS, the
//! one-connection-per-hostid rule, `/disconnect/<hostid>` and shutdown.
//!
//! A connection is known by its socket's file descriptor number (what the
//! original calls `socketFN` and what existing tools pass to DESCRIBE). Fds
//! are reused by the kernel, so removal checks identity, not just the number.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::wakeup::Wakeup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    Controller,
    Subscriber,
}

impl ConnKind {
    /// The type names existing tools parse out of LISTCONNECTIONS.
    pub fn meteor_type(self) -> &'static str {
        match self {
            ConnKind::Controller => "Meteor::Controller",
            ConnKind::Subscriber => "Meteor::Subscriber",
        }
    }
}

/// Why a streaming subscriber is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StopReason {
    Running = 0,
    /// A newer persistent connection with the same hostid took over.
    Replaced = 1,
    /// `GET /disconnect/<hostid>`.
    Disconnected = 2,
    /// The daemon is shutting down.
    Shutdown = 3,
}

impl StopReason {
    fn from_u8(v: u8) -> StopReason {
        match v {
            1 => StopReason::Replaced,
            2 => StopReason::Disconnected,
            3 => StopReason::Shutdown,
            _ => StopReason::Running,
        }
    }
}

/// Longest user agent kept for LISTSUBSCRIBERS / DESCRIBE.
const MAX_USER_AGENT: usize = 256;

/// What a streaming subscriber asked for (set once the request is parsed).
/// The three strings share one allocation: there is one of these per idle
/// subscriber.
#[derive(Debug)]
pub struct StreamDetails {
    /// hostid, mode and user agent, concatenated.
    text: Box<str>,
    hostid_len: u16,
    mode_len: u16,
    /// `MaxTime` of its mode, seconds (0 = none).
    pub max_time: u64,
    pub persist: bool,
}

impl StreamDetails {
    pub fn new(
        hostid: &str,
        mode: &str,
        user_agent: &str,
        max_time: u64,
        persist: bool,
    ) -> StreamDetails {
        // Both come from a request line bounded far below 64 KiB.
        let hostid = &hostid[..hostid.len().min(u16::MAX as usize)];
        let mode = &mode[..mode.len().min(u16::MAX as usize)];
        let mut cut = user_agent.len().min(MAX_USER_AGENT);
        while !user_agent.is_char_boundary(cut) {
            cut -= 1;
        }
        StreamDetails {
            text: [hostid, mode, &user_agent[..cut]].concat().into_boxed_str(),
            hostid_len: hostid.len() as u16,
            mode_len: mode.len() as u16,
            max_time,
            persist,
        }
    }

    pub fn hostid(&self) -> &str {
        &self.text[..self.hostid_len as usize]
    }

    pub fn mode(&self) -> &str {
        let start = self.hostid_len as usize;
        &self.text[start..start + self.mode_len as usize]
    }

    pub fn user_agent(&self) -> &str {
        &self.text[(self.hostid_len + self.mode_len) as usize..]
    }
}

/// One open connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket's fd.
    pub number: u32,
    pub kind: ConnKind,
    pub ip: IpAddr,
    /// Seconds since the epoch.
    pub started: u32,
    pub bytes_written: AtomicU64,
    /// Bytes handed to the socket but not yet accepted by it.
    pub write_pending: AtomicU32,
    /// Messages sent (subscribers).
    pub messages: AtomicU64,
    /// Wakes the connection's task: new messages, or a stop request.
    pub wakeup: Wakeup,
    stop: AtomicU8,
    pub details: OnceLock<StreamDetails>,
    /// Timer work done for this connection by the daemon-wide clock (see
    /// [`Connections::tick`]) instead of a timer per connection: with tens
    /// of thousands of idle subscribers, per-connection `Sleep`s would be
    /// most of their memory. All in seconds since the epoch; 0 = none.
    pub timers: ConnTimers,
}

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

impl Conn {
    /// `number` is the socket's fd; `started` seconds since the epoch.
    /// Both are kept in 32 bits: one of these exists per subscriber.
    pub fn new(number: u64, kind: ConnKind, ip: IpAddr, started: u64) -> Conn {
        Conn {
            number: u32::try_from(number).unwrap_or(u32::MAX),
            kind,
            ip,
            started: secs32(started),
            bytes_written: AtomicU64::new(0),
            write_pending: AtomicU32::new(0),
            messages: AtomicU64::new(0),
            wakeup: Wakeup::new(),
            stop: AtomicU8::new(StopReason::Running as u8),
            details: OnceLock::new(),
            timers: ConnTimers::default(),
        }
    }

    pub fn stop_reason(&self) -> StopReason {
        StopReason::from_u8(self.stop.load(Ordering::Acquire))
    }

    /// Ask the connection to stop (first reason wins) and wake it.
    pub fn request_stop(&self, reason: StopReason) {
        let _ = self.stop.compare_exchange(
            StopReason::Running as u8,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.wakeup.raise();
    }
}

impl Conn {
    /// A publish to a channel this connection joined.
    pub fn wake(&self) {
        self.wakeup.raise();
    }
}

/// A connection in the hostid index, hashed and compared by its hostid, so
/// the index needs no copy of the name (one fewer allocation per
/// persistent subscriber).
#[derive(Debug, Clone)]
struct ByHostid(Arc<Conn>);

impl ByHostid {
    fn hostid(&self) -> &str {
        self.0.details.get().map_or("", |d| d.hostid())
    }
}

impl PartialEq for ByHostid {
    fn eq(&self, other: &Self) -> bool {
        self.hostid() == other.hostid()
    }
}

impl Eq for ByHostid {}

impl Hash for ByHostid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `str` does, for `Borrow<str>` lookups.
        self.hostid().hash(state);
    }
}

impl Borrow<str> for ByHostid {
    fn borrow(&self) -> &str {
        self.hostid()
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Indexed by connection number, which is the socket's fd: small,
    /// dense and unique while open, so a plain vector beats a map (8 bytes
    /// a slot).
    conns: Vec<Option<Arc<Conn>>>,
    /// Occupied slots.
    open: usize,
    hostids: HashSet<ByHostid>,
}

/// The table of open connections.
#[derive(Debug, Default)]
pub struct Connections {
    inner: Mutex<Inner>,
}

impl Connections {
    pub fn new() -> Connections {
        Connections::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, conn: Arc<Conn>) {
        let mut inner = self.lock();
        let slot = conn.number as usize;
        if slot >= inner.conns.len() {
            inner.conns.resize(slot.saturating_add(1), None);
        }
        if inner.conns[slot].replace(conn).is_none() {
            inner.open += 1;
        }
    }

    /// Remove `conn` (and its hostid claim) if it is still the one registered.
    pub fn remove(&self, conn: &Arc<Conn>) {
        let mut inner = self.lock();
        let slot = conn.number as usize;
        if let Some(entry) = inner.conns.get_mut(slot)
            && entry.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            *entry = None;
            inner.open -= 1;
        }
        if let Some(details) = conn.details.get()
            && inner
                .hostids
                .get(details.hostid())
                .is_some_and(|c| Arc::ptr_eq(&c.0, conn))
        {
            inner.hostids.remove(details.hostid());
        }
    }

    /// Make `conn` the persistent connection for its hostid; the one it
    /// replaces (if any) is asked to stop.
    pub fn claim_hostid(&self, conn: &Arc<Conn>) {
        if conn.details.get().is_none() {
            return;
        }
        let previous = self.lock().hostids.replace(ByHostid(conn.clone()));
        if let Some(ByHostid(previous)) = previous
            && !Arc::ptr_eq(&previous, conn)
        {
            previous.request_stop(StopReason::Replaced);
        }
    }

    /// `/disconnect/<hostid>`: returns whether a connection was found.
    pub fn disconnect_hostid(&self, hostid: &str) -> bool {
        let target = self.lock().hostids.get(hostid).map(|c| c.0.clone());
        match target {
            Some(conn) => {
                conn.request_stop(StopReason::Disconnected);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, number: u64) -> Option<Arc<Conn>> {
        let slot = usize::try_from(number).ok()?;
        self.lock().conns.get(slot).cloned().flatten()
    }

    /// Every connection, by number.
    pub fn all(&self) -> Vec<Arc<Conn>> {
        self.lock().conns.iter().flatten().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().open
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The daemon-wide clock, once a second: wake every connection that has
    /// a ping, a MaxTime deadline or an overdue write. One pass over the
    /// table is a few microseconds per thousand connections.
    ///
    /// `slice` (0 .. `slices`) selects which connections this call visits:
    /// the clock runs `slices` times a second (see [`clock_slices`]) and each
    /// connection is visited once a second, so the pings of subscribers that
    /// connected together are spread over the second instead of all being
    /// written in one burst that would delay message deliveries.
    pub fn tick(&self, now: u64, write_timeout: u64, slice: usize, slices: usize) {
        let slices = slices.max(1);
        let now = secs32(now);
        let write_timeout = secs32(write_timeout);
        let inner = self.lock();
        let start = slice % slices;
        for conn in inner.conns.iter().skip(start).step_by(slices).flatten() {
            let due = conn.timers.due_at(now, write_timeout);
            if due != 0 {
                conn.timers.due.fetch_or(due, Ordering::AcqRel);
                conn.wakeup.raise();
            }
        }
    }

    /// Ask every connection to stop (shutdown).
    pub fn stop_all(&self, reason: StopReason) {
        for conn in self.all() {
            conn.request_stop(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn conn(number: u64, hostid: &str) -> Arc<Conn> {
        let c = Arc::new(Conn::new(
            number,
            ConnKind::Subscriber,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
        ));
        c.details
            .set(StreamDetails::new(hostid, "xhrinteractive", "ua", 0, true))
            .unwrap();
        c
    }

    #[test]
    fn second_claim_stops_the_first() {
        let table = Connections::new();
        let a = conn(7, "h1");
        let b = conn(8, "h1");
        table.insert(a.clone());
        table.insert(b.clone());
        table.claim_hostid(&a);
        table.claim_hostid(&b);
        assert_eq!(a.stop_reason(), StopReason::Replaced);
        assert_eq!(b.stop_reason(), StopReason::Running);
        // The replaced one leaving must not drop the newer claim.
        table.remove(&a);
        assert!(table.disconnect_hostid("h1"));
        assert_eq!(b.stop_reason(), StopReason::Disconnected);
        table.remove(&b);
        assert!(!table.disconnect_hostid("h1"));
        assert!(table.is_empty());
    }

    #[test]
    fn reused_number_is_not_removed_by_the_old_conn() {
        let table = Connections::new();
        let old = conn(5, "a");
        table.insert(old.clone());
        let new = conn(5, "b");
        table.insert(new.clone());
        table.remove(&old);
        assert!(table.get(5).is_some_and(|c| Arc::ptr_eq(&c, &new)));
    }

    fn tick_all(table: &Connections, now: u64, write_timeout: u64) {
        for slice in 0..MIN_CLOCK_SLICES {
            table.tick(now, write_timeout, slice, MIN_CLOCK_SLICES);
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
        table.tick(5, 30, 3, slices);
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
    fn first_stop_reason_wins() {
        let c = conn(1, "x");
        c.request_stop(StopReason::Shutdown);
        c.request_stop(StopReason::Replaced);
        assert_eq!(c.stop_reason(), StopReason::Shutdown);
    }
}
