//! The transport seam: how one mode speaks on the wire. A mode's
//! [`Framing`] decides the response head, how a message is rendered (once
//! per mode; the bytes are shared by every subscriber of that mode through
//! the render cache in [`crate::channel::Message`]), the ping, what is sent
//! on daemon shutdown, the bytes that close the response, and what bytes a
//! client sends after its request mean. Everything else — channels,
//! cursors, history, catch-up, limits, the one writer path — is the same
//! for every framing ([`super::stream::Live`]).
//!
//! A framing belongs to a compiled mode ([`super::mode::CompiledMode`]),
//! never to a connection, so an idle subscriber pays nothing for it: its
//! stream reaches the framing through the `Arc` of its mode it holds
//! anyway. It is an enum, not a trait object, so a call costs one match
//! and no pointer per connection.
//!
//! The framings: [`Classic`], Meteor's templates (`classic.rs`),
//! [`EventSource`] (`eventsource.rs`) and [`WebSocket`] (`websocket/`),
//! picked when a mode is compiled, by the mode's name (as the original
//! gives `longpoll` its meaning by name). `event.rs` renders the JSON
//! objects (message, gap) the EventSource and WebSocket framings share;
//! gaps (a resume the history no longer covers, [`crate::channel::Gap`])
//! reach a framing through [`Framing::gap`] before any message of the
//! channel. EventSource needs the request's `Last-Event-ID` only to choose
//! the backlog, before the stream starts (`super::request::resume_after`).
//!
//! Client input: [`Framing::input`] reads what the client sent after its
//! request, with a small per-connection [`InputState`] (one word; a box
//! only while a frame is incomplete or requests wait), and answers
//! [`Input::Respond`] when the stream has [`Action`]s to carry out: join or
//! leave a channel, write a reply, end. How a stream ends is an
//! [`Ending`]; each framing says what it writes for one ([`Framing::end`]).

mod classic;
pub mod event;
pub mod eventsource;
pub mod websocket;

use std::ops::Range;

use bytes::Bytes;

pub use classic::Classic;
pub use eventsource::EventSource;
pub use websocket::WebSocket;

use crate::channel::{Backlog, Message};
use crate::config::Config;
use crate::connections::StopReason;
use websocket::{ClientClose, Handshake};

/// The mode whose framing is [`WebSocket`].
pub const WEBSOCKET: &str = "websocket";

/// Values for a response head, a ping and the shutdown message.
#[derive(Debug, Clone, Copy)]
pub struct HeaderValues<'a> {
    pub status: &'a str,
    pub server_time: u64,
    /// Every joined channel's description, already rendered with
    /// [`Framing::channel_info`] (empty unless SendChannelInfo).
    pub channel_info: &'a [u8],
    /// `Sec-WebSocket-Accept` for an accepted upgrade: the head is `101`.
    pub upgrade_accept: Option<&'a str>,
}

impl HeaderValues<'_> {
    /// Values for `status` now.
    pub fn now<'a>(status: &'a str, channel_info: &'a [u8]) -> HeaderValues<'a> {
        HeaderValues {
            status,
            server_time: crate::clock::unix_now(),
            channel_info,
            upgrade_accept: None,
        }
    }
}

/// Values for one channel's description in the head.
#[derive(Debug, Clone, Copy)]
pub struct ChannelInfoValues<'a> {
    pub name: &'a str,
    pub last_msg_id: u64,
    pub subscriber_count: usize,
    pub message_count: usize,
}

/// What the client's bytes after its request mean to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Go on streaming.
    Continue,
    /// Carry out [`InputState::take_actions`], in order.
    Respond,
    /// End the stream now, without writing anything more.
    Close,
}

/// Something the client asked of the stream (see [`Framing::input`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Join `channel` on the running stream: its gap and backlog for
    /// `backlog` are written, then its live messages.
    Join {
        channel: String,
        backlog: Backlog,
        /// What the client offered for the subscribe rule.
        token: Option<String>,
    },
    Leave {
        channel: String,
    },
    /// Write these bytes (a pong, an error reply).
    Reply(Vec<u8>),
    /// End the stream (after what came before).
    End(Ending),
}

/// Why a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The mode's limits: not persistent, CloseOnEvent, MaxMessages.
    Complete,
    MaxTime,
    /// Fell out of the history: the client resumes from its last id.
    Lagged,
    /// Shutdown, hostid takeover, `/disconnect/<hostid>`.
    Stopped(StopReason),
    /// The client did not answer a keep-alive in time.
    Unanswered,
    /// The client's input ends it, with this close (WebSocket).
    Client(ClientClose),
}

/// A connection's reading state for its framing: one word (classic: the
/// bytes ignored so far; WebSocket: the pong and rate bits), and only
/// while a frame is incomplete or actions wait, a box.
#[derive(Debug, Default)]
pub struct InputState {
    pub(in crate::subscriber::framing) word: u32,
    pub(in crate::subscriber::framing) partial: Option<Box<websocket::Partial>>,
}

impl InputState {
    /// The state from the two parts a stream keeps apart (see
    /// [`InputState::into_parts`]).
    pub fn from_parts(word: u32, partial: Option<Box<websocket::Partial>>) -> InputState {
        InputState { word, partial }
    }

    /// The word and the box, for a stream to keep as two fields: its
    /// small fields then share the word's padding (8 bytes in every idle
    /// task).
    pub fn into_parts(self) -> (u32, Option<Box<websocket::Partial>>) {
        (self.word, self.partial)
    }

    /// Before [`Framing::input`]: a ping is awaiting its answer (the
    /// awaited state itself lives with the connection, where the clock
    /// sees it too).
    pub fn expect_answer(&mut self) {
        self.word |= websocket::AWAITING_PONG;
    }

    /// After [`Framing::input`]: whether it held the answer.
    pub fn answered(&self) -> bool {
        self.word & websocket::AWAITING_PONG == 0
    }

    /// What the last [`Framing::input`] asked for, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        let actions = match &mut self.partial {
            Some(partial) => std::mem::take(&mut partial.actions),
            None => Vec::new(),
        };
        self.settle();
        actions
    }

    /// Drop the box once nothing is left in it.
    pub(in crate::subscriber::framing) fn settle(&mut self) {
        if self.partial.as_ref().is_some_and(|p| p.is_empty()) {
            self.partial = None;
        }
    }
}

/// How one mode frames its stream (see the module doc).
#[derive(Debug)]
pub enum Framing {
    /// Meteor's templates.
    Classic(Classic),
    /// Server-Sent Events (the mode named `eventsource`).
    EventSource(EventSource),
    /// RFC 6455 frames of the JSON events (the mode named `websocket`).
    WebSocket(WebSocket),
}

impl Framing {
    /// The transport's name, as metrics label it.
    pub fn transport(&self) -> &'static str {
        match self {
            Framing::Classic(_) => "classic",
            Framing::EventSource(_) => "eventsource",
            Framing::WebSocket(_) => "websocket",
        }
    }

    /// The framing for the mode `name` of `config`.
    pub fn compile(name: &str, config: &Config) -> Framing {
        match name {
            eventsource::MODE => Framing::EventSource(EventSource::compile(config.modes.get(name))),
            WEBSOCKET => {
                Framing::WebSocket(WebSocket::compile(websocket::Limits::from_config(config)))
            }
            _ => Framing::Classic(Classic::compile(config.modes.get(name))),
        }
    }

    /// Whether the request must be an upgrade, and whether it is one.
    pub fn handshake(&self, request_head: &[u8]) -> Option<Handshake> {
        match self {
            Framing::Classic(_) | Framing::EventSource(_) => None,
            Framing::WebSocket(w) => Some(w.handshake(request_head)),
        }
    }

    /// Append the response head: everything before the first message.
    pub fn head(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        match self {
            Framing::Classic(c) => c.head(out, values),
            Framing::WebSocket(w) => w.head(out, values),
            Framing::EventSource(e) => e.head(out, values),
        }
    }

    /// Append one channel's description (for the head's channel info).
    pub fn channel_info(&self, out: &mut Vec<u8>, values: &ChannelInfoValues<'_>) {
        match self {
            Framing::Classic(c) => c.channel_info(out, values),
            Framing::WebSocket(_) => {}
            Framing::EventSource(e) => e.channel_info(out, values),
        }
    }

    /// Render `message` (uncached; see
    /// [`super::mode::CompiledMode::message_bytes`]), and say where the
    /// text's first verbatim copy sits in the rendering, so the stored
    /// message can share it.
    pub fn message(&self, message: &Message) -> (Bytes, Option<Range<usize>>) {
        match self {
            Framing::Classic(c) => c.message(message),
            Framing::WebSocket(w) => w.message(message),
            Framing::EventSource(e) => e.message(message),
        }
    }

    /// Append the event that tells a resuming client its `channel` lost
    /// messages from `requested` on; the first it will get is `oldest`.
    /// The classic framing has no such event (the original never signals
    /// one): it writes nothing.
    pub fn gap(&self, out: &mut Vec<u8>, channel: &[u8], requested: u64, oldest: u64) {
        match self {
            Framing::Classic(_) => {
                let _ = (out, channel, requested, oldest);
            }
            Framing::WebSocket(w) => w.gap(out, channel, requested, oldest),
            Framing::EventSource(e) => e.gap(out, channel, requested, oldest),
        }
    }

    /// Append a keep-alive.
    pub fn ping(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        match self {
            Framing::Classic(c) => c.ping(out, values),
            Framing::EventSource(e) => e.ping(out),
            Framing::WebSocket(w) => w.ping(out),
        }
    }

    /// The ping's bytes when they are the same for every stream and every
    /// time: the daemon's clock then writes them itself
    /// ([`crate::write_turn`]). `None` = the stream renders each ping.
    pub fn constant_ping(&self) -> Option<&Bytes> {
        match self {
            Framing::Classic(c) => c.constant_ping(),
            Framing::EventSource(e) => Some(e.constant_ping()),
            Framing::WebSocket(w) => Some(w.constant_ping()),
        }
    }

    /// Whether the client must answer a ping before the next one is due
    /// (WebSocket's pong; any frame from the client counts): a ping due
    /// while the last is unanswered ends the stream
    /// ([`Ending::Unanswered`]). Whoever writes the ping marks it awaited;
    /// the stream's input marks it answered ([`InputState::expect_answer`]).
    pub fn ping_awaits_answer(&self) -> bool {
        matches!(self, Framing::WebSocket(_))
    }

    /// Append what a stream gets when the daemon stops, before [`Framing::close`].
    pub fn shutdown(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        match self {
            Framing::Classic(c) => c.shutdown(out, values),
            // The stream just ends; the browser resumes by Last-Event-ID.
            Framing::EventSource(_) => {}
            // Its close frame (1001) says it all.
            Framing::WebSocket(_) => {}
        }
    }

    /// The bytes that end a response this mode's stream never began (a
    /// 404, a disconnect): the classic footer; nothing after a plain
    /// WebSocket refusal.
    pub fn close(&self) -> &Bytes {
        static NOTHING: Bytes = Bytes::new();
        match self {
            Framing::Classic(c) => c.close(),
            Framing::EventSource(e) => e.close(),
            Framing::WebSocket(_) => &NOTHING,
        }
    }

    /// Append the end of a stream for `ending`: the classic footer
    /// (whatever the reason, as the original), a WebSocket close frame.
    pub fn end(&self, out: &mut Vec<u8>, ending: Ending) {
        match self {
            Framing::Classic(c) => out.extend_from_slice(c.close()),
            Framing::EventSource(e) => e.end(out, ending),
            Framing::WebSocket(w) => w.end(out, ending),
        }
    }

    /// Append the reply that refuses a client's request for `reason`
    /// (nothing where the client cannot ask).
    pub fn error(&self, out: &mut Vec<u8>, reason: &str) {
        match self {
            Framing::Classic(_) | Framing::EventSource(_) => {}
            Framing::WebSocket(w) => w.error(out, reason),
        }
    }

    /// The client sent `bytes` after its request, at `now` (seconds);
    /// `state` is the connection's input state for this framing.
    pub fn input(&self, bytes: &[u8], state: &mut InputState, now: u64) -> Input {
        match self {
            Framing::Classic(c) => c.input(bytes, &mut state.word),
            Framing::EventSource(e) => e.input(bytes, &mut state.word),
            Framing::WebSocket(w) => w.input(bytes, state, now),
        }
    }
}
