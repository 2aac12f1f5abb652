//! A stream: the long-lived part of a subscriber connection, and the one
//! writer path for everything it sends. [`Live::start`] writes the head
//! and the replayed backlog; then [`Live::run`] becomes the task that
//! writes live messages, pings and the close. Both hand their bytes to
//! `Live::deliver`, which decides the end of the response the same way for
//! both; the mode's [`Framing`] decides what the bytes are.
//!
//! The live part runs as its own small task (the request-reading task, with its header
//! buffer and timeouts, has ended by then), because an idle stream's memory
//! is almost all task: it waits on one [`crate::wakeup::Wakeup`] and its
//! socket's readiness, with no futures of its own while it waits,
//! and keeps no timers of its own — pings, MaxTime and stalled writes are
//! signalled by the daemon-wide clock ([`crate::clock::tick`]).
//!
//! On a wake it reads everything after its cursors from the channel
//! histories and writes it in one go. While it is idle and caught up, a
//! publisher may write the next message to its socket itself
//! ([`write_direct`]); a pass of work holds the socket's write turn
//! throughout, so nothing else writes meanwhile ([`crate::write_turn`]). A slow client therefore only delays
//! itself; while it is blocked, messages wait in the shared history, and if
//! it falls out of that history it is closed so the client resumes with
//! `.r<id>`.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;

mod clock_ping;
mod direct;
mod input;
mod joined;
mod progress;
mod task;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::LONGPOLL;
use super::framing::websocket::Partial;
use super::framing::{Ending, HeaderValues, Input, InputState};
use super::mode::CompiledMode;
use crate::channel::{Backlog, Lagged, Message};
use crate::clock::{MAX_CLOCK_SLICES, WAKE_DEADLINE, WAKE_PING, secs32};
use crate::connections::{Conn, StopReason};
use crate::state::{State, unix_now};
use crate::stats::Stats;
use crate::write_turn::Begin;
pub use clock_ping::ping_from_clock;
pub use direct::{takes_direct, write_direct};
use joined::Joined;
use progress::{Output, Progress};
pub use task::LiveTask;

/// Messages read from the histories per pass before writing.
const READ_BATCH: usize = 256;

/// Most bytes gathered for one write: bounds what a stalled subscriber
/// holds while its socket is full (the rest waits in the shared history).
const MAX_WRITE: usize = 64 * 1024;

/// Write `bytes`, giving up when the clock marks the write as stalled
/// (WriteTimeout). Returns whether a wake-up arrived (and was absorbed)
/// during the write, so the caller looks again before it sleeps.
pub async fn write_out(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    bytes: &[u8],
) -> io::Result<bool> {
    let mut woken = false;
    conn.write_pending.store(
        u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        Ordering::Relaxed,
    );
    conn.timers
        .write_since
        .store(secs32(unix_now()), Ordering::Relaxed);
    let result = {
        let mut write = pin!(stream.write_all(bytes));
        loop {
            tokio::select! {
                result = &mut write => break result,
                _ = conn.wakeup.wait() => {
                    if conn.timers.stalled() {
                        break Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled"));
                    }
                    woken = true;
                }
            }
        }
    };
    conn.timers.write_since.store(0, Ordering::Relaxed);
    conn.write_pending.store(0, Ordering::Relaxed);
    result?;
    let n = bytes.len() as u64;
    conn.bytes_written.fetch_add(n, Ordering::Relaxed);
    Stats::add(&state.stats.total_outbound_bytes, n);
    Ok(woken)
}

/// Count `n` deliveries to `conn`.
fn count_sent(state: &State, conn: &Conn, n: u64) {
    if n > 0 {
        conn.messages.fetch_add(n, Ordering::Relaxed);
        Stats::add(&state.stats.messages_served, n);
    }
}

/// How the stream ended.
enum End {
    /// Write the framing's end for this (after the shutdown message, when
    /// stopped) and close.
    Close(Ending),
    /// Nothing more to write: the client went away, or the response is
    /// already complete.
    Done,
}

/// A subscriber's stream. Dropping it leaves every channel, and once it
/// runs as its own task also the connection table (which frees its place
/// under MaxConnections).
pub struct Live {
    state: Arc<State>,
    stream: TcpStream,
    conn: Arc<Conn>,
    subscriptions: Joined,
    progress: Progress,
    /// A wake-up was absorbed by a write: look again before sleeping.
    woken: bool,
    /// A pass of work holds the write turn ([`Live::on_wake`]), so single
    /// writes need not take it.
    turn_held: bool,
    /// The framing's input state ([`InputState`], kept as its two parts:
    /// the word, classic: bytes ignored so far; and the box, only while
    /// a frame is incomplete or requests wait).
    input_word: u32,
    input_partial: Option<Box<Partial>>,
    /// Set by [`Live::run`]: the connection's end is then this task's, and
    /// so is taking it off `current_subscribers` (before, the connection's
    /// first task does that).
    detached: bool,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Before the socket closes (the fields drop after this): the clock
        // must never write to its fd number again.
        self.conn.write_turn.close();
        let transport = crate::metrics::transport_name(self.progress.framing());
        self.state.stats.count_close(&self.conn, transport);
        self.leave_channels();
        if self.detached {
            Stats::sub(&self.state.stats.current_subscribers, 1);
            self.state.connections.remove(&self.conn);
        }
    }
}

impl Live {
    /// A stream of `mode` on `stream`, in no channel yet.
    pub fn new(
        state: Arc<State>,
        stream: TcpStream,
        conn: Arc<Conn>,
        mode: Arc<CompiledMode>,
    ) -> Live {
        Live {
            state,
            stream,
            conn,
            subscriptions: Joined::default(),
            progress: Progress { mode, sent: 0 },
            woken: false,
            turn_held: false,
            input_word: 0,
            input_partial: None,
            detached: false,
        }
    }

    /// Join `channel`; its replay for `backlog` is appended to `replay`,
    /// and when `backlog` resumes from an id the history no longer holds,
    /// the framing's gap event goes to `gaps` (to be written before the
    /// replay). From here on, dropping the stream (on any error too)
    /// leaves it.
    pub fn join(
        &mut self,
        channel: &str,
        backlog: Backlog,
        replay: &mut Vec<Arc<Message>>,
        gaps: &mut Vec<u8>,
    ) {
        let (subscription, gap) = self
            .state
            .channels
            .subscribe_resuming(channel, backlog, &self.conn, replay);
        self.subscriptions.push(subscription);
        if backlog.resumes_from().is_some() {
            let stats = &self.state.stats;
            let counter = match gap {
                Some(_) => &stats.resumes_gap,
                None => &stats.resumes_full,
            };
            Stats::add(counter, 1);
        }
        if let Some(gap) = gap {
            let oldest = gap.oldest.unwrap_or_else(|| self.state.broker.next_id());
            self.progress
                .framing()
                .gap(gaps, channel.as_bytes(), gap.requested, oldest);
        }
    }

    /// Write `head` and the whole `backlog` (what [`Live::join`] gathered)
    /// in one write. `Some(self)` when the stream goes on: hand it to
    /// [`Live::run`].
    pub async fn start(
        mut self,
        head: Vec<u8>,
        mut backlog: Vec<Arc<Message>>,
    ) -> io::Result<Option<Live>> {
        if self.subscriptions.len() > 1 {
            backlog.sort_by_key(|m| m.id);
        }
        let mut out = head;
        let replayed = self.progress.append(&mut out, &backlog, usize::MAX);
        self.subscriptions.advance(&backlog[..replayed]);
        drop(backlog);
        let longpoll = self
            .conn
            .details
            .get()
            .is_some_and(|d| d.mode() == LONGPOLL);
        let finished = self.progress.finished_after_backlog(replayed, longpoll);
        self.deliver(Output::Owned(out), replayed, finished).await?;
        Ok(finished.is_none().then_some(self))
    }

    /// Leave every channel.
    fn leave_channels(&mut self) {
        for subscription in self.subscriptions.take_all() {
            self.state.channels.unsubscribe(subscription);
        }
    }

    /// Arm the clock for this stream's mode (pings, MaxTime).
    fn arm_timers(&self) {
        let settings = &self.progress.mode.settings;
        let timers = &self.conn.timers;
        let now = unix_now();
        let interval = if settings.ping_interval > 2 {
            settings.ping_interval
        } else {
            0
        };
        timers.ping_interval.store(
            u16::try_from(interval).unwrap_or(u16::MAX),
            Ordering::Relaxed,
        );
        // The first ping comes within one interval, at a point that depends
        // on the connection, so subscribers that connected together do not
        // all ping in the same second forever after.
        let phase = (u64::from(self.conn.number) / MAX_CLOCK_SLICES as u64) % interval.max(1);
        let next_ping = if interval > 0 {
            secs32(now + 1 + phase)
        } else {
            0
        };
        timers.next_ping.store(next_ping, Ordering::Relaxed);
        let deadline = if settings.max_time > 0 {
            secs32(u64::from(self.conn.started).saturating_add(settings.max_time))
        } else {
            0
        };
        timers.deadline.store(deadline, Ordering::Relaxed);
    }

    /// Pick up a reloaded configuration: the new templates apply from the
    /// next write on. One atomic load when nothing changed.
    fn refresh(&mut self) {
        if self.state.modes_generation() == self.progress.mode.generation {
            return;
        }
        let name = self.conn.details.get().map_or("", |d| d.mode());
        self.progress.mode = self.state.modes().get(name).clone();
        self.arm_timers();
    }

    /// The task that streams until the end, then closes.
    pub fn run(mut self) -> LiveTask {
        self.detached = true;
        self.arm_timers();
        LiveTask::new(self)
    }

    fn take_input(&mut self) -> InputState {
        InputState::from_parts(self.input_word, self.input_partial.take())
    }

    fn put_input(&mut self, state: InputState) {
        (self.input_word, self.input_partial) = state.into_parts();
    }

    /// A ping is due: false when the client still owes the last one's
    /// answer; else the ping this stream now writes is awaited.
    fn keepalive(&mut self) -> bool {
        !self.progress.framing().ping_awaits_answer() || clock_ping::await_answer(&self.conn)
    }

    /// After the client became readable: false when the stream is over
    /// (the client closed, or its framing says its input ends it). When
    /// the input asks for something, the stream is marked woken, so its
    /// task carries it out ([`Live::act_on_input`]) before it sleeps.
    fn consume_input(&mut self) -> io::Result<bool> {
        let mut received = [0u8; 256];
        match self.stream.try_read(&mut received) {
            Ok(0) => Ok(false),
            Ok(n) => {
                Stats::add(&self.state.stats.total_inbound_bytes, n as u64);
                let mut state = self.take_input();
                let awaits = self.progress.framing().ping_awaits_answer();
                if awaits {
                    state.expect_answer();
                }
                let input = self
                    .progress
                    .framing()
                    .input(&received[..n], &mut state, unix_now());
                if awaits && state.answered() {
                    self.conn.awaiting_answer.store(false, Ordering::Release);
                }
                self.put_input(state);
                match input {
                    Input::Continue => Ok(true),
                    Input::Respond => {
                        self.woken = true;
                        Ok(true)
                    }
                    Input::Close => Ok(false),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// A pass of work begins ([`LiveTask`] calls this before it polls
    /// [`Live::on_wake`]): the stream takes its write turn for the whole
    /// pass, and back the cursor publishers moved. Returns whether an
    /// outside writer left bytes to finish first. Kept out of the async
    /// code, so none of it widens every wake-up's work.
    fn begin_pass(&mut self) -> bool {
        let owed = self.conn.write_turn.stream_begin() == Begin::FinishRest;
        self.turn_held = true;
        if let Some(cursor) = direct::take_back(&self.conn) {
            self.subscriptions.catch_up_first(cursor);
        }
        owed
    }

    /// A pass of work left the stream going and idle: offer its socket to
    /// publishers again ([`direct`]) and give the turn back. (A stream that
    /// is over never gives it back: dropping it closes the turn.)
    fn end_pass(&mut self) {
        direct::offer(&self.conn, self.direct_offer());
        self.turn_held = false;
        self.conn.write_turn.stream_end();
    }

    /// The cursor to offer publishers when a pass leaves the stream idle:
    /// only where a publisher's write is exactly what this task would
    /// write (see [`direct`]).
    fn direct_offer(&self) -> Option<u64> {
        let eligible = self.subscriptions.len() == 1
            && direct::takes_direct(&self.progress.mode.settings)
            && self.progress.mode.generation == self.state.modes_generation()
            && self.conn.stop_reason() == StopReason::Running
            && !self.input_partial.as_ref().is_some_and(|p| p.has_actions());
        if !eligible {
            return None;
        }
        self.subscriptions.iter().next().map(|s| s.cursor)
    }

    /// Everything a wake-up may mean: stop, reload, ping, MaxTime, new
    /// messages, after the rest an outside writer left (`owed`). Returns
    /// true when the stream is over.
    async fn on_wake(&mut self, owed: bool) -> io::Result<bool> {
        if owed {
            self.finish_rest().await?;
        }
        let end = 'end: {
            let stop = self.conn.stop_reason();
            if stop != StopReason::Running {
                break 'end End::Close(Ending::Stopped(stop));
            }
            self.refresh();
            // Boxed: client requests are rare, and their future must not
            // widen every wake-up's work.
            if self.input_partial.as_ref().is_some_and(|p| p.has_actions())
                && let Some(end) = Box::pin(self.act_on_input()).await?
            {
                break 'end end;
            }
            let due = self.conn.timers.take_due();
            if due & WAKE_DEADLINE != 0 {
                Stats::add(&self.state.stats.closes_maxtime, 1);
                break 'end End::Close(Ending::MaxTime);
            }
            if due & WAKE_PING != 0 {
                if !self.keepalive() {
                    break 'end End::Close(Ending::Unanswered);
                }
                let mut ping = Vec::new();
                let values = HeaderValues::now("200 OK", b"");
                self.progress.framing().ping(&mut ping, &values);
                self.deliver(Output::Owned(ping), 0, None).await?;
            }
            match self.drain().await? {
                Some(end) => end,
                None => return Ok(false),
            }
        };
        let mut tail = Vec::new();
        let ending = match end {
            End::Done => return Ok(true),
            End::Close(ending) => ending,
        };
        if let Ending::Stopped(_) = ending {
            let values = HeaderValues::now("200 OK", b"");
            self.progress.framing().shutdown(&mut tail, &values);
        }
        self.deliver(Output::Owned(tail), 0, Some(ending)).await?;
        Ok(true)
    }

    /// The one writer path: write `out` (holding `messages` messages),
    /// count them, and when `finished` end the response: the framing's
    /// end for it goes out with the last bytes, the channels are left
    /// before that write, and the socket is shut down after it.
    fn deliver(
        &mut self,
        out: Output,
        messages: usize,
        finished: Option<Ending>,
    ) -> impl Future<Output = io::Result<()>> + Send + '_ {
        // Sealed before the future exists, so one buffer lives across the
        // write: this future sits inside every wake-up's boxed work, whose
        // size is paid (copied) on each wake.
        let (out, finished) = match finished {
            Some(ending) => (self.seal(out, ending), true),
            None => (out, false),
        };
        async move {
            self.send(out.bytes()).await?;
            count_sent(&self.state, &self.conn, messages as u64);
            if finished {
                let _ = self.stream.shutdown().await;
            }
            Ok(())
        }
    }

    /// The last bytes of the response: `out` and the framing's close, with
    /// the channels left, so a client that saw its response end never finds
    /// itself still counted.
    fn seal(&mut self, out: Output, ending: Ending) -> Output {
        let mut last = match out {
            Output::Shared(bytes) => bytes.to_vec(),
            Output::Owned(out) => out,
        };
        self.progress.framing().end(&mut last, ending);
        self.leave_channels();
        Output::Owned(last)
    }

    /// Write the rest of what an outside writer (a clock ping, a direct
    /// write) wrote in part. Rare (it met an almost full socket), so boxed:
    /// it adds a pointer, not a write's state, to every wake-up's work.
    fn finish_rest(&mut self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>> {
        Box::pin(async move {
            if let Some(rest) = self.state.write_rests.take(self.conn.number) {
                self.woken |= write_out(&self.state, &mut self.stream, &self.conn, &rest).await?;
            }
            Ok(())
        })
    }

    /// Write `bytes`, in this stream's turn ([`crate::write_turn`]; taken
    /// here unless a pass of work holds it). Almost always the socket
    /// takes them at once, with no future and no allocation; only a full
    /// socket takes the boxed slow path, so an idle stream's task does not
    /// carry a write's state.
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let held = self.turn_held;
        if !held
            && self.conn.write_turn.stream_begin() == Begin::FinishRest
            && let Err(e) = self.finish_rest().await
        {
            self.conn.write_turn.stream_end();
            return Err(e);
        }
        let rest = match self.stream.try_write(bytes) {
            Ok(n) => &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => bytes,
            Err(e) => {
                if !held {
                    self.conn.write_turn.stream_end();
                }
                return Err(e);
            }
        };
        let written = (bytes.len() - rest.len()) as u64;
        if written > 0 {
            self.conn
                .bytes_written
                .fetch_add(written, Ordering::Relaxed);
            Stats::add(&self.state.stats.total_outbound_bytes, written);
        }
        let mut result = Ok(());
        if !rest.is_empty() {
            match Box::pin(write_out(&self.state, &mut self.stream, &self.conn, rest)).await {
                Ok(woken) => self.woken |= woken,
                Err(e) => result = Err(e),
            }
        }
        if !held {
            self.conn.write_turn.stream_end();
        }
        result
    }

    /// Everything after the cursors, rendered for one write (bounded by
    /// [`MAX_WRITE`]), with the cursors moved past it. `Err(Lagged)` when a
    /// cursor fell out of its history.
    fn next_output(&mut self) -> Result<Option<(Output, usize)>, Lagged> {
        let mut batch: Vec<Arc<Message>> = Vec::new();
        for subscription in self.subscriptions.iter() {
            if let Err(lagged) =
                subscription
                    .channel
                    .read_after(subscription.cursor, READ_BATCH, &mut batch)
            {
                Stats::add(&self.state.stats.subscribers_lagged, 1);
                tracing::info!(conn = self.conn.number, ip = %self.conn.ip,
                    channel = %subscription.channel.name,
                    "subscriber fell out of the history; closing so it resumes");
                return Err(lagged);
            }
        }
        if batch.is_empty() {
            return Ok(None);
        }
        if self.subscriptions.len() > 1 {
            batch.sort_by_key(|m| m.id);
        }
        // CloseOnEvent ends the response after one live message: the
        // original closes on the first one it sends.
        if self.progress.mode.settings.close_on_event {
            batch.truncate(1);
        }
        let (out, taken) = self.progress.render_batch(&batch);
        // Only what is written moves the cursors; the rest is read again.
        self.subscriptions.advance(&batch[..taken]);
        Ok(Some((out, taken)))
    }

    /// Send everything after the cursors; `Some(end)` when the stream is over.
    async fn drain(&mut self) -> io::Result<Option<End>> {
        loop {
            let (out, taken) = match self.next_output() {
                Err(Lagged) => return Ok(Some(End::Close(Ending::Lagged))),
                Ok(None) => return Ok(None),
                Ok(Some(next)) => next,
            };
            let finished = self.progress.finished();
            // Only a flag lives across the write (this future is in every
            // wake-up's work).
            let done = finished.is_some();
            self.deliver(out, taken, finished).await?;
            if done {
                return Ok(Some(End::Done));
            }
            // Read again: more may have arrived while writing.
        }
    }
}
