//! Whose turn it is to write to a subscriber's socket.
//!
//! A stream's socket has two possible writers. Its own task
//! ([`crate::subscriber::stream::Live`]) writes everything: head, backlog,
//! messages, the close. The daemon-wide clock writes one thing, a ping that
//! needs no rendering, straight from its pass over the connection table —
//! so an idle stream's ping costs one `send` instead of a tokio wake-up, a
//! poll of its task and a trip through the writer path (the clock already
//! visits the connection; BENCHMARKS.md has the A/B).
//!
//! The ownership rule, one atomic byte per connection:
//! - `FREE`: nobody writes. The stream takes [`WriteTurn::stream_begin`]
//!   before every write and gives it back after; the clock may take it
//!   with [`WriteTurn::clock_begin`], which never waits: when the stream is
//!   writing, the clock leaves the ping to the stream (as before).
//! - `CLOCK`: the clock is in one non-blocking `send`. A stream that wants
//!   to write waits it out (microseconds).
//! - `OWED`: the clock's `send` took only part of the ping (the socket was
//!   nearly full). The rest belongs to the stream, which must write it
//!   before anything else: `stream_begin` says so, and the bytes wait in
//!   [`PingRests`].
//! - `CLOSED`: the stream is gone or going; its socket (whose fd number
//!   the clock writes to) may be closed, and the number reused by another
//!   connection, so the clock must never write again. The stream sets it
//!   before its socket is dropped, after any clock write in progress.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;

const FREE: u8 = 0;
const STREAM: u8 = 1;
const CLOCK: u8 = 2;
const OWED: u8 = 3;
const CLOSED: u8 = 4;

/// What the stream must do before its own bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Nothing: write.
    Write,
    /// First write the rest of a ping the clock started ([`PingRests`]).
    FinishPing,
}

/// One connection's write turn (see the module doc).
#[derive(Debug, Default)]
pub struct WriteTurn(AtomicU8);

impl WriteTurn {
    /// The stream is about to write. Waits out a clock write in progress.
    pub fn stream_begin(&self) -> Begin {
        loop {
            match self
                .0
                .compare_exchange(FREE, STREAM, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Begin::Write,
                Err(CLOCK) => std::thread::yield_now(),
                Err(OWED) => {
                    if self
                        .0
                        .compare_exchange(OWED, STREAM, Ordering::Acquire, Ordering::Acquire)
                        .is_ok()
                    {
                        return Begin::FinishPing;
                    }
                }
                // Already the stream's (or closed, when it is being torn
                // down): nobody else writes.
                Err(_) => return Begin::Write,
            }
        }
    }

    /// The stream's write is over (done or failed).
    pub fn stream_end(&self) {
        let _ = self
            .0
            .compare_exchange(STREAM, FREE, Ordering::Release, Ordering::Relaxed);
    }

    /// Whether the clock left part of a ping for the stream to finish.
    pub fn owed(&self) -> bool {
        self.0.load(Ordering::Acquire) == OWED
    }

    /// The stream ends: after this the clock never writes to its socket.
    pub fn close(&self) {
        loop {
            let now = self.0.load(Ordering::Acquire);
            if now == CLOCK {
                std::thread::yield_now();
                continue;
            }
            if self
                .0
                .compare_exchange(now, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The clock wants to write a ping: only when nobody else writes.
    pub fn clock_begin(&self) -> bool {
        self.0
            .compare_exchange(FREE, CLOCK, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// The clock's write is over; `owed` when it wrote only part.
    pub fn clock_end(&self, owed: bool) {
        self.0
            .store(if owed { OWED } else { FREE }, Ordering::Release);
    }
}

/// The rests of pings the clock could write only in part, by connection
/// number, until their stream writes them. Rare (a subscriber whose socket
/// is nearly full), so one map for the daemon rather than room in every
/// connection.
#[derive(Debug, Default)]
pub struct PingRests(Mutex<HashMap<u32, Bytes>>);

impl PingRests {
    pub fn put(&self, conn: u32, rest: Bytes) {
        self.lock().insert(conn, rest);
    }

    pub fn take(&self, conn: u32) -> Option<Bytes> {
        self.lock().remove(&conn)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Bytes>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_writes_only_while_nobody_else_does() {
        let turn = WriteTurn::default();
        assert!(turn.clock_begin());
        assert!(!turn.clock_begin(), "one clock write at a time");
        turn.clock_end(false);
        assert_eq!(turn.stream_begin(), Begin::Write);
        assert!(!turn.clock_begin(), "the stream is writing");
        turn.stream_end();
        assert!(turn.clock_begin());
        turn.clock_end(false);
    }

    #[test]
    fn a_ping_written_in_part_is_finished_by_the_stream_first() {
        let turn = WriteTurn::default();
        assert!(turn.clock_begin());
        turn.clock_end(true);
        assert!(turn.owed());
        assert!(!turn.clock_begin(), "the rest is the stream's");
        assert_eq!(turn.stream_begin(), Begin::FinishPing);
        turn.stream_end();
        assert_eq!(turn.stream_begin(), Begin::Write);
        turn.stream_end();
    }

    #[test]
    fn after_close_the_clock_never_writes() {
        let turn = WriteTurn::default();
        turn.close();
        assert!(!turn.clock_begin());
        assert_eq!(turn.stream_begin(), Begin::Write);
        turn.stream_end();
        assert!(!turn.clock_begin(), "stream_end does not reopen it");
    }

    #[test]
    fn close_waits_for_a_clock_write_in_progress() {
        let turn = std::sync::Arc::new(WriteTurn::default());
        assert!(turn.clock_begin());
        let closer = {
            let turn = turn.clone();
            std::thread::spawn(move || turn.close())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!closer.is_finished(), "close must wait for the clock");
        turn.clock_end(false);
        closer.join().unwrap();
        assert!(!turn.clock_begin());
    }
}
