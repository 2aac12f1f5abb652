//! Live connections, for LISTCONNECTIONS / DESCRIBE / LISTSUBSCRIBERS, the
//! one-connection-per-hostid rule, `/disconnect/<hostid>` and shutdown.
//!
//! A connection is known by its socket's file descriptor number (what the
//! original calls `socketFN` and what existing tools pass to DESCRIBE). Fds
//! are reused by the kernel, so removal checks identity, not just the number.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::channel::Wake;
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

/// What a streaming subscriber asked for (set once the request is parsed).
#[derive(Debug)]
pub struct StreamDetails {
    pub hostid: Box<str>,
    pub mode: Box<str>,
    pub user_agent: Box<str>,
    /// `MaxTime` of its mode, seconds (0 = none).
    pub max_time: u64,
    pub persist: bool,
}

/// One open connection.
#[derive(Debug)]
pub struct Conn {
    pub number: u64,
    pub kind: ConnKind,
    pub ip: IpAddr,
    /// Seconds since the epoch.
    pub started: u64,
    pub bytes_written: AtomicU64,
    pub bytes_read: AtomicU64,
    /// Bytes handed to the socket but not yet accepted by it.
    pub write_pending: AtomicU64,
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

/// Deadlines the clock watches, and the wake-up reasons it leaves.
#[derive(Debug, Default)]
pub struct ConnTimers {
    /// Seconds between pings; 0 = no pings.
    pub ping_interval: AtomicU64,
    pub next_ping: AtomicU64,
    /// MaxTime: when the stream ends.
    pub deadline: AtomicU64,
    /// When the write in progress started; 0 = not writing.
    pub write_since: AtomicU64,
    /// [`WAKE_PING`], [`WAKE_DEADLINE`], [`WAKE_STALLED`].
    pub due: AtomicU8,
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
    fn due_at(&self, now: u64, write_timeout: u64) -> u8 {
        let mut due = 0;
        let next_ping = self.next_ping.load(Ordering::Relaxed);
        if next_ping != 0 && now >= next_ping {
            let interval = self.ping_interval.load(Ordering::Relaxed);
            if interval > 0 {
                due |= WAKE_PING;
                self.next_ping.store(now + interval, Ordering::Relaxed);
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
    pub fn new(number: u64, kind: ConnKind, ip: IpAddr, started: u64) -> Conn {
        Conn {
            number,
            kind,
            ip,
            started,
            bytes_written: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            write_pending: AtomicU64::new(0),
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

/// A publish to a channel this connection joined wakes it.
impl Wake for Conn {
    fn wake(&self) {
        self.wakeup.raise();
    }
}

#[derive(Debug, Default)]
struct Inner {
    conns: BTreeMap<u64, Arc<Conn>>,
    hostids: HashMap<Box<str>, Arc<Conn>>,
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
        self.lock().conns.insert(conn.number, conn);
    }

    /// Remove `conn` (and its hostid claim) if it is still the one registered.
    pub fn remove(&self, conn: &Arc<Conn>) {
        let mut inner = self.lock();
        if inner
            .conns
            .get(&conn.number)
            .is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            inner.conns.remove(&conn.number);
        }
        if let Some(details) = conn.details.get()
            && inner
                .hostids
                .get(&details.hostid)
                .is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            inner.hostids.remove(&details.hostid);
        }
    }

    /// Make `conn` the persistent connection for its hostid; the one it
    /// replaces (if any) is asked to stop.
    pub fn claim_hostid(&self, conn: &Arc<Conn>) {
        let Some(details) = conn.details.get() else {
            return;
        };
        let previous = self
            .lock()
            .hostids
            .insert(details.hostid.clone(), conn.clone());
        if let Some(previous) = previous
            && !Arc::ptr_eq(&previous, conn)
        {
            previous.request_stop(StopReason::Replaced);
        }
    }

    /// `/disconnect/<hostid>`: returns whether a connection was found.
    pub fn disconnect_hostid(&self, hostid: &str) -> bool {
        let target = self.lock().hostids.get(hostid).cloned();
        match target {
            Some(conn) => {
                conn.request_stop(StopReason::Disconnected);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, number: u64) -> Option<Arc<Conn>> {
        self.lock().conns.get(&number).cloned()
    }

    /// Every connection, by number.
    pub fn all(&self) -> Vec<Arc<Conn>> {
        self.lock().conns.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The daemon-wide clock, once a second: wake every connection that has
    /// a ping, a MaxTime deadline or an overdue write. One pass over the
    /// table is a few microseconds per thousand connections.
    pub fn tick(&self, now: u64, write_timeout: u64) {
        let inner = self.lock();
        for conn in inner.conns.values() {
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
            .set(StreamDetails {
                hostid: hostid.into(),
                mode: "xhrinteractive".into(),
                user_agent: "ua".into(),
                max_time: 0,
                persist: true,
            })
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

    #[test]
    fn clock_wakes_for_pings_deadlines_and_stalled_writes() {
        let table = Connections::new();
        let c = conn(3, "t");
        table.insert(c.clone());
        c.timers.ping_interval.store(5, Ordering::Relaxed);
        c.timers.next_ping.store(105, Ordering::Relaxed);
        c.timers.deadline.store(200, Ordering::Relaxed);
        table.tick(104, 30);
        assert_eq!(c.timers.take_due(), 0);
        table.tick(105, 30);
        assert_eq!(c.timers.take_due(), WAKE_PING);
        assert_eq!(c.timers.next_ping.load(Ordering::Relaxed), 110);
        c.timers.write_since.store(100, Ordering::Relaxed);
        table.tick(131, 30);
        assert!(c.timers.stalled());
        assert_eq!(c.timers.take_due(), WAKE_PING | WAKE_STALLED);
        table.tick(200, 1000);
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
