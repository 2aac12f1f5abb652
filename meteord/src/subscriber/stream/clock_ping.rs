//! The clock's side of a stream's socket: a ping written straight from the
//! clock's pass over the connection table, without waking the stream's
//! task, when the ping needs no rendering and nobody else is writing (the
//! ownership rule is [`crate::write_turn`]'s). A WebSocket ping must be
//! answered before the next is due: the clock marks it awaited as the
//! stream does ([`await_answer`]), and leaves a ping due while the last is
//! unanswered to the stream, which ends with 1008.

use std::sync::atomic::Ordering;

use nix::sys::socket::{MsgFlags, send};

use crate::connections::{Conn, ConnKind, StopReason};
use crate::state::State;
use crate::stats::Stats;
use crate::subscriber::mode::CompiledModes;

/// Write `conn`'s ping now if that can be done here; false = wake the
/// stream to do it (it is writing, its ping is rendered, its socket is
/// full, or it is ending).
pub fn ping_from_clock(state: &State, modes: &CompiledModes, conn: &Conn) -> bool {
    if conn.kind != ConnKind::Subscriber || conn.stop_reason() != StopReason::Running {
        return false;
    }
    let Some(details) = conn.details.get() else {
        return false;
    };
    let mode = modes.get(details.mode());
    let Some(ping) = mode.framing.constant_ping() else {
        return false;
    };
    if !conn.write_turn.outside_begin() {
        return false;
    }
    let awaits = mode.framing.ping_awaits_answer();
    if awaits && !await_answer(conn) {
        // Unanswered: the stream's keep-alive ends it.
        conn.write_turn.outside_end(false);
        return false;
    }
    // The turn is the clock's: the stream's socket is open (it closes only
    // after the turn is CLOSED) and nobody else writes to it.
    let fd = i32::try_from(conn.number).unwrap_or(-1);
    let sent = send(fd, ping, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL).unwrap_or(0);
    if sent == 0 {
        // Full, or an error the stream will meet on its own: its turn
        // (and its ping to await).
        if awaits {
            conn.awaiting_answer.store(false, Ordering::Release);
        }
        conn.write_turn.outside_end(false);
        return false;
    }
    conn.bytes_written.fetch_add(sent as u64, Ordering::Relaxed);
    Stats::add(&state.stats.total_outbound_bytes, sent as u64);
    let owed = sent < ping.len();
    if owed {
        // The stream finishes it before anything else it writes.
        state.write_rests.put(conn.number, ping.slice(sent..));
    }
    conn.write_turn.outside_end(owed);
    if owed {
        conn.wakeup.raise();
    }
    true
}

/// A ping that must be answered is about to go out: false when the last
/// one is still unanswered, else it is now awaited (marked before the
/// send, so an answer that comes at once is never missed).
pub(super) fn await_answer(conn: &Conn) -> bool {
    !conn.awaiting_answer.swap(true, Ordering::AcqRel)
}
