//! Publisher-written deliveries: a live message written by its publisher
//! straight to the sockets of the streams that are idle and caught up on
//! its channel, as the bare server does, instead of waking each stream's
//! task to write it (one tokio wake-up, one poll and a history read per
//! subscriber per message; BENCHMARKS.md has the A/B).
//!
//! Who may write what (the rest of the rule is [`crate::write_turn`]'s):
//! - A stream offers its socket when a pass of work leaves it caught up:
//!   it stores the id of the last message it sent in
//!   [`Conn::direct_cursor`] before it gives back its turn, and only when
//!   nothing the publisher does could differ from what it would do itself
//!   (one channel, a streaming mode without MaxMessages or CloseOnEvent,
//!   not stopping). When it works again it takes the cursor back.
//! - A publisher writes message `m` only while it holds the turn and the
//!   cursor is the channel's live cursor from just before `m`: so the
//!   stream has been given everything up to `m` and nothing after it, and
//!   messages go out once each, in id order, whoever writes them. It then
//!   moves the cursor to `m`.
//! - Anything else — the turn taken, the cursor elsewhere (an earlier
//!   message still being written by another publisher), a full socket —
//!   wakes the stream, whose task reads the history after its cursor as
//!   always. A write the socket took only in part leaves the rest owed to
//!   the stream, which writes it before anything else.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use nix::sys::socket::{MsgFlags, send};

use crate::channel::{Direct, Message};
use crate::connections::{Conn, NO_DIRECT, StopReason};
use crate::state::State;
use crate::stats::Stats;
use crate::subscriber::mode::{CompiledMode, CompiledModes};

/// Write `message` to every stream in `direct`; wake those it cannot.
pub fn write_direct(state: &State, message: &Message, direct: &mut Direct) {
    if direct.conns.is_empty() {
        return;
    }
    let modes = state.modes();
    let mut rendered = Rendered::default();
    let (mut messages, mut bytes) = (0u64, 0u64);
    for conn in direct.conns.drain(..) {
        match write_one(state, &modes, &mut rendered, message, direct.after, &conn) {
            Some(n) => {
                messages += 1;
                bytes += n;
            }
            None => conn.wake(),
        }
    }
    direct.finished();
    Stats::add(&state.stats.messages_served, messages);
    Stats::add(&state.stats.direct_deliveries, messages);
    Stats::add(&state.stats.total_outbound_bytes, bytes);
}

/// The last mode's rendering of the message: nearly every subscriber of a
/// channel has the same mode, so the mode (by name: a short comparison
/// instead of a hash per subscriber) and the render cache are looked up
/// once per message.
#[derive(Default)]
struct Rendered {
    name: String,
    current: Option<(Arc<CompiledMode>, Bytes)>,
}

impl Rendered {
    /// Mode `name` and the message's bytes in it.
    fn for_mode(
        &mut self,
        modes: &CompiledModes,
        name: &str,
        message: &Message,
    ) -> &(Arc<CompiledMode>, Bytes) {
        if self.name != name {
            self.current = None;
            name.clone_into(&mut self.name);
        }
        self.current.get_or_insert_with(|| {
            let mode = modes.get(name).clone();
            let bytes = mode.message_bytes(message);
            (mode, bytes)
        })
    }
}

/// Write `message` to `conn` if this publisher may (see the module doc):
/// `Some(bytes written)`, or `None` when the stream must be woken.
fn write_one(
    state: &State,
    modes: &CompiledModes,
    rendered: &mut Rendered,
    message: &Message,
    after: u64,
    conn: &Conn,
) -> Option<u64> {
    let (mode, out) = rendered.for_mode(modes, conn.details.get()?.mode(), message);
    if !takes_direct(&mode.settings) || !conn.write_turn.outside_begin() {
        return None;
    }
    // The turn is ours: the socket is open (it closes only after CLOSED),
    // and the cursor is the stream's word on what it has been given.
    if conn.direct_cursor.load(Ordering::Acquire) != after
        || conn.stop_reason() != StopReason::Running
    {
        conn.write_turn.outside_end(false);
        return None;
    }
    let fd = i32::try_from(conn.number).unwrap_or(-1);
    let sent = send(fd, out, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL).unwrap_or(0);
    if sent == 0 {
        // Full, or an error the stream will meet itself: its turn.
        conn.write_turn.outside_end(false);
        return None;
    }
    conn.direct_cursor.store(message.id, Ordering::Release);
    conn.messages.fetch_add(1, Ordering::Relaxed);
    conn.bytes_written.fetch_add(sent as u64, Ordering::Relaxed);
    let owed = sent < out.len();
    if owed {
        // Given (the cursor says so): the stream writes the rest first.
        state.write_rests.put(conn.number, out.slice(sent..));
    }
    conn.write_turn.outside_end(owed);
    if owed {
        conn.wake();
    }
    Some(sent as u64)
}

/// Whether streams of a mode with `settings` may take direct writes: what
/// the publisher writes is then exactly what the stream would (limits that
/// count messages, or end the response, stay with the stream).
pub fn takes_direct(settings: &crate::config::ModeSettings) -> bool {
    settings.persist && !settings.close_on_event && settings.max_messages == 0
}

/// The stream's side: what it offers when a pass of work leaves it idle
/// (`cursor` for its one channel, or [`NO_DIRECT`]).
pub(super) fn offer(conn: &Conn, cursor: Option<u64>) {
    conn.direct_cursor
        .store(cursor.unwrap_or(NO_DIRECT), Ordering::Release);
}

/// The stream's side when it starts working: the cursor back, as moved by
/// publishers since it offered it (`None` when it offered none).
pub(super) fn take_back(conn: &Conn) -> Option<u64> {
    let cursor = conn.direct_cursor.swap(NO_DIRECT, Ordering::AcqRel);
    (cursor != NO_DIRECT).then_some(cursor)
}
