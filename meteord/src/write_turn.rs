//! Whose turn it is to write to a subscriber's socket.
//!
//! A stream's socket has three possible writers. Its own task
//! ([`crate::subscriber::stream::Live`]) writes everything that needs the
//! stream's state: head, backlog, catch-up, client answers, the close.
//! Two writers from *outside* the task write one thing each, straight to
//! the socket with one non-blocking `send`, so an idle stream costs no
//! tokio wake-up, no poll of its task and no trip through the writer path
//! (BENCHMARKS.md has the A/Bs):
//! - the daemon-wide clock, a ping that needs no rendering, from its pass
//!   over the connection table ([`crate::subscriber::stream::ping_from_clock`]);
//! - a publisher, a live message to a stream that is caught up on its one
//!   channel ([`crate::subscriber::stream::write_direct`]).
//!
//! The ownership rule, one atomic byte per connection:
//! - `FREE`: nobody writes; the stream is idle. The stream takes the turn
//!   with [`WriteTurn::stream_begin`] for a whole pass of work and gives it
//!   back after; an outside writer may take it with
//!   [`WriteTurn::outside_begin`], which never waits: when the stream is
//!   working, the outside writer wakes it and leaves the bytes to it.
//! - `OUTSIDE`: an outside writer is in one non-blocking `send`. A stream
//!   that wants to write waits it out (microseconds).
//! - `OWED`: the outside `send` took only part of its bytes (the socket was
//!   nearly full). The rest belongs to the stream, which must write it
//!   before anything else: `stream_begin` says so, and the bytes wait in
//!   [`Rests`].
//! - `CLOSED`: the stream is gone or going; its socket (whose fd number
//!   outside writers write to) may be closed, and the number reused by
//!   another connection, so nobody outside may write again. The stream
//!   sets it before its socket is dropped, after any outside write in
//!   progress.
//!
//! What an outside writer may write besides the turn (which message, in
//! which order) is the stream's direct cursor's business
//! ([`crate::connections::Conn::direct_cursor`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;

const FREE: u8 = 0;
const STREAM: u8 = 1;
const OUTSIDE: u8 = 2;
const OWED: u8 = 3;
const CLOSED: u8 = 4;

/// What the stream must do before its own bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Nothing: write.
    Write,
    /// First write the rest of what an outside writer started ([`Rests`]).
    FinishRest,
}

/// One connection's write turn (see the module doc).
#[derive(Debug, Default)]
pub struct WriteTurn(AtomicU8);

impl WriteTurn {
    /// The stream is about to work (and write). Waits out an outside write
    /// in progress.
    pub fn stream_begin(&self) -> Begin {
        loop {
            match self
                .0
                .compare_exchange(FREE, STREAM, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Begin::Write,
                Err(OUTSIDE) => std::thread::yield_now(),
                Err(OWED) => {
                    if self
                        .0
                        .compare_exchange(OWED, STREAM, Ordering::Acquire, Ordering::Acquire)
                        .is_ok()
                    {
                        return Begin::FinishRest;
                    }
                }
                // Already the stream's (or closed, when it is being torn
                // down): nobody else writes.
                Err(_) => return Begin::Write,
            }
        }
    }

    /// The stream's work is over: outside writers may write again.
    pub fn stream_end(&self) {
        let _ = self
            .0
            .compare_exchange(STREAM, FREE, Ordering::Release, Ordering::Relaxed);
    }

    /// The stream ends: after this nobody outside writes to its socket.
    pub fn close(&self) {
        loop {
            let now = self.0.load(Ordering::Acquire);
            if now == OUTSIDE {
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

    /// An outside writer wants to write: only when nobody else writes.
    pub fn outside_begin(&self) -> bool {
        self.0
            .compare_exchange(FREE, OUTSIDE, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// The outside write is over; `owed` when it wrote only part.
    pub fn outside_end(&self, owed: bool) {
        self.0
            .store(if owed { OWED } else { FREE }, Ordering::Release);
    }
}

/// The rests of what outside writers could write only in part, by
/// connection number, until their stream writes them. Rare (a subscriber
/// whose socket is nearly full), so one map for the daemon rather than room
/// in every connection.
#[derive(Debug, Default)]
pub struct Rests(Mutex<HashMap<u32, Bytes>>);

impl Rests {
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
    fn an_outside_writer_writes_only_while_nobody_else_does() {
        let turn = WriteTurn::default();
        assert!(turn.outside_begin());
        assert!(!turn.outside_begin(), "one outside write at a time");
        turn.outside_end(false);
        assert_eq!(turn.stream_begin(), Begin::Write);
        assert!(!turn.outside_begin(), "the stream is writing");
        turn.stream_end();
        assert!(turn.outside_begin());
        turn.outside_end(false);
    }

    #[test]
    fn bytes_written_in_part_are_finished_by_the_stream_first() {
        let turn = WriteTurn::default();
        assert!(turn.outside_begin());
        turn.outside_end(true);
        assert!(!turn.outside_begin(), "the rest is the stream's");
        assert_eq!(turn.stream_begin(), Begin::FinishRest);
        turn.stream_end();
        assert_eq!(turn.stream_begin(), Begin::Write);
        turn.stream_end();
    }

    #[test]
    fn after_close_nobody_outside_writes() {
        let turn = WriteTurn::default();
        turn.close();
        assert!(!turn.outside_begin());
        assert_eq!(turn.stream_begin(), Begin::Write);
        turn.stream_end();
        assert!(!turn.outside_begin(), "stream_end does not reopen it");
    }

    #[test]
    fn close_waits_for_an_outside_write_in_progress() {
        let turn = std::sync::Arc::new(WriteTurn::default());
        assert!(turn.outside_begin());
        let closer = {
            let turn = turn.clone();
            std::thread::spawn(move || turn.close())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            !closer.is_finished(),
            "close must wait for the outside writer"
        );
        turn.outside_end(false);
        closer.join().unwrap();
        assert!(!turn.outside_begin());
    }
}
