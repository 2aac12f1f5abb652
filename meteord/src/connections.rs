//! Live connections, for LISTCONNECTIONS / DESCRIBE / LISTSUBSCRIBERS, the
//! one-connection-per-hostid rule, `/disconnect/<hostid>` and shutdown.
//!
//! A connection is known by its socket's file descriptor number (what the
//! original calls `socketFN` and what existing tools pass to DESCRIBE). Fds
//! are reused by the kernel, so removal checks identity, not just the number,
//! and listings follow the accept order, not the numbers. The table also
//! remembers the hostids of recent polls (SHOWSTATS' `real_subscribers`).
//! The daemon-wide clock's part of a connection ([`ConnTimers`]) and its
//! pass over this table live in [`crate::clock`]; what a streaming
//! subscriber asked for ([`StreamDetails`]) in [`crate::subscriber`].

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::clock::{ConnTimers, secs32};
use crate::subscriber::StreamDetails;
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
    /// [`crate::clock::tick`]) instead of a timer per connection: with tens
    /// of thousands of idle subscribers, per-connection `Sleep`s would be
    /// most of their memory. All in seconds since the epoch; 0 = none.
    pub timers: ConnTimers,
    /// Who may write to the socket now (the stream, or from outside the
    /// clock for a ping and a publisher for a message).
    pub write_turn: crate::write_turn::WriteTurn,
    /// The id of the last message this stream was given on its one
    /// channel, offered by its task while it is idle and caught up: then a
    /// publisher of the message right after it may write that message
    /// straight to the socket (and moves this on). [`NO_DIRECT`] while the
    /// task works, before it first offers, and for streams that cannot
    /// take direct writes (several channels, a poll, a mode with limits).
    /// Read and changed only by whoever holds the write turn.
    pub direct_cursor: AtomicU64,
    /// A ping that must be answered (WebSocket) went out and no frame came
    /// back since: set by whoever writes the ping (the clock or the
    /// stream), cleared by the stream's input. A ping due while it is set
    /// ends the stream ([`crate::subscriber::framing::Framing::ping_awaits_answer`]).
    pub awaiting_answer: AtomicBool,
}

/// [`Conn::direct_cursor`] when no publisher may write to the stream.
pub const NO_DIRECT: u64 = u64::MAX;

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
            write_turn: crate::write_turn::WriteTurn::default(),
            direct_cursor: AtomicU64::new(NO_DIRECT),
            awaiting_answer: AtomicBool::new(false),
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

    /// Whether a publisher may try to write the message that comes right
    /// after `after` straight to this stream (a hint, read without the
    /// turn: the writer checks again once it holds it).
    pub fn may_take_direct(&self, after: u64) -> bool {
        self.direct_cursor.load(Ordering::Relaxed) == after
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

/// How long a poll's hostid counts towards SHOWSTATS' `real_subscribers`
/// (the original: a minute).
pub const POLLER_WINDOW_SECS: u64 = 60;
/// Most hostids remembered for that count: a flood of one-off pollers must
/// not grow memory without bound (the original's table had no bound). At
/// ~60 B an entry this is ~6 MB; past it, further pollers are not counted.
const MAX_RECENT_POLLERS: usize = 100_000;

/// One occupied slot of the table.
#[derive(Debug, Clone)]
struct Slot {
    conn: Arc<Conn>,
    /// Accept order: listings show connections oldest first, as the
    /// original's list does, whatever fd numbers the kernel reused.
    order: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Indexed by connection number, which is the socket's fd: small,
    /// dense and unique while open, so a plain vector beats a map (16 bytes
    /// a slot).
    conns: Vec<Option<Slot>>,
    /// Occupied slots, and of them subscriber-port connections.
    open: usize,
    open_subscribers: usize,
    accepted: u64,
    hostids: HashSet<ByHostid>,
    /// Hostids of recent polls (non-persistent requests) → when seen.
    recent_pollers: HashMap<Box<str>, u64>,
    /// Open subscriber-port connections per client address
    /// (`MaxConnectionsPerIP`); an address leaves when its last one closes.
    per_ip: HashMap<IpAddr, u32>,
}

impl Inner {
    /// `conn` (a subscriber's) no longer counts for its address.
    fn forget_ip(&mut self, conn: &Conn) {
        if conn.kind != ConnKind::Subscriber {
            return;
        }
        if let Some(n) = self.per_ip.get_mut(&conn.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
    }

    /// Forget pollers older than the window or that now stream.
    // `ByHostid` hashes only the hostid, which is set once and never
    // changes: the interior mutability clippy sees cannot move a key.
    #[allow(clippy::mutable_key_type)]
    fn prune_pollers(&mut self, now: u64) {
        let hostids = &self.hostids;
        self.recent_pollers.retain(|hostid, seen| {
            *seen + POLLER_WINDOW_SECS >= now && !hostids.contains(&**hostid)
        });
    }
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
        inner.accepted += 1;
        let order = inner.accepted;
        let subscriber = conn.kind == ConnKind::Subscriber;
        if subscriber {
            *inner.per_ip.entry(conn.ip).or_insert(0) += 1;
        }
        match inner.conns[slot].replace(Slot { conn, order }) {
            None => {
                inner.open += 1;
                inner.open_subscribers += usize::from(subscriber);
            }
            Some(old) => {
                inner.open_subscribers -= usize::from(old.conn.kind == ConnKind::Subscriber);
                inner.open_subscribers += usize::from(subscriber);
                inner.forget_ip(&old.conn);
            }
        }
    }

    /// Open subscriber-port connections from `ip`.
    pub fn count_for_ip(&self, ip: IpAddr) -> usize {
        self.lock().per_ip.get(&ip).map_or(0, |&n| n as usize)
    }

    /// Remove `conn` (and its hostid claim) if it is still the one
    /// registered; a poll's hostid is remembered for `real_subscribers`.
    pub fn remove(&self, conn: &Arc<Conn>) {
        let mut inner = self.lock();
        let slot = conn.number as usize;
        if let Some(entry) = inner.conns.get_mut(slot)
            && entry.as_ref().is_some_and(|s| Arc::ptr_eq(&s.conn, conn))
        {
            *entry = None;
            inner.open -= 1;
            inner.open_subscribers -= usize::from(conn.kind == ConnKind::Subscriber);
            inner.forget_ip(conn);
        }
        let Some(details) = conn.details.get() else {
            return;
        };
        if inner
            .hostids
            .get(details.hostid())
            .is_some_and(|c| Arc::ptr_eq(&c.0, conn))
        {
            inner.hostids.remove(details.hostid());
        }
        if !details.persist {
            let now = crate::clock::unix_now();
            if inner.recent_pollers.len() >= MAX_RECENT_POLLERS {
                inner.prune_pollers(now);
            }
            if inner.recent_pollers.len() < MAX_RECENT_POLLERS
                || inner.recent_pollers.contains_key(details.hostid())
            {
                inner.recent_pollers.insert(details.hostid().into(), now);
            }
        }
    }

    /// Hostids that polled within the last minute and have no streaming
    /// connection now (the original's `real_subscribers` adds these to the
    /// open subscriber connections). Also forgets the older ones.
    pub fn recent_pollers(&self, now: u64) -> usize {
        let mut inner = self.lock();
        inner.prune_pollers(now);
        inner.recent_pollers.len()
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
        let inner = self.lock();
        inner.conns.get(slot)?.as_ref().map(|s| s.conn.clone())
    }

    /// Every connection, oldest first.
    pub fn all(&self) -> Vec<Arc<Conn>> {
        let mut slots: Vec<Slot> = self.lock().conns.iter().flatten().cloned().collect();
        slots.sort_unstable_by_key(|s| s.order);
        slots.into_iter().map(|s| s.conn).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().open
    }

    /// Open connections on the subscriber port, and on the controller port.
    pub fn len_by_kind(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.open_subscribers, inner.open - inner.open_subscribers)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `visit` for each connection in `slice` of `slices` (every
    /// `slices`-th slot from `slice` on), under the table's lock: the
    /// clock's pass (see [`crate::clock::tick`]). `visit` must not block.
    pub fn for_each_in_slice(&self, slice: usize, slices: usize, mut visit: impl FnMut(&Conn)) {
        let slices = slices.max(1);
        let inner = self.lock();
        for Slot { conn, .. } in inner
            .conns
            .iter()
            .skip(slice % slices)
            .step_by(slices)
            .flatten()
        {
            visit(conn);
        }
    }

    /// Ask every connection to stop (shutdown).
    pub fn stop_all(&self, reason: StopReason) {
        for conn in self.all() {
            conn.request_stop(reason);
        }
    }
}

/// A streaming subscriber's connection record on loopback, for unit tests
/// of the table and of the clock.
#[cfg(test)]
pub(crate) fn test_subscriber(number: u64, hostid: &str) -> Arc<Conn> {
    let c = Arc::new(Conn::new(
        number,
        ConnKind::Subscriber,
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        0,
    ));
    c.details
        .set(StreamDetails::new(hostid, "xhrinteractive", "ua", 0, true))
        .unwrap();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(number: u64, hostid: &str) -> Arc<Conn> {
        test_subscriber(number, hostid)
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

    #[test]
    fn subscribers_are_counted_per_address() {
        let table = Connections::new();
        let ip = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let (a, b) = (conn(1, "a"), conn(2, "b"));
        table.insert(a.clone());
        table.insert(b.clone());
        assert_eq!(table.count_for_ip(ip), 2);
        // A reused number replaces the old record: counted once.
        let c = conn(2, "c");
        table.insert(c.clone());
        assert_eq!(table.count_for_ip(ip), 2);
        for x in [&a, &b, &c] {
            table.remove(x);
        }
        assert_eq!(table.count_for_ip(ip), 0);
        assert!(table.lock().per_ip.is_empty());
    }

    #[test]
    fn first_stop_reason_wins() {
        let c = conn(1, "x");
        c.request_stop(StopReason::Shutdown);
        c.request_stop(StopReason::Replaced);
        assert_eq!(c.stop_reason(), StopReason::Shutdown);
    }
}
