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
//! Framings: [`Classic`], Meteor's templates (`classic.rs`), and
//! [`EventSource`] (`eventsource.rs`), picked for the mode named
//! `eventsource` by its name. `event.rs` renders the JSON objects (message, gap) the
//! EventSource and WebSocket framings share; gaps (a resume the history
//! no longer covers, [`crate::channel::Gap`]) reach a framing through
//! [`Framing::gap`] before any message of the channel. EventSource needs
//! the request's `Last-Event-ID` only to choose the backlog, before the
//! stream starts (`super::request::resume_after`). WebSocket (issue 12)
//! will be one more file beside them, `websocket.rs`, a variant here; it renders one text frame per message, answers the upgrade with
//! `101` (so [`HeaderValues`] gains the request's key), pings with a ping
//! frame, closes with a close frame (1001 on shutdown), and is the first
//! framing whose client input means something (subscribe, unsubscribe,
//! pong): its [`Framing::input`] parses frames, and it needs a small
//! per-connection parse state, which will sit in the connection's `input`
//! word or, only while a frame is incomplete, in a box beside it.

mod classic;
pub mod event;
pub mod eventsource;

use std::ops::Range;

use bytes::Bytes;

pub use classic::Classic;
pub use eventsource::EventSource;

use crate::channel::Message;
use crate::config::ModeSettings;

/// Values for a response head, a ping and the shutdown message.
#[derive(Debug, Clone, Copy)]
pub struct HeaderValues<'a> {
    pub status: &'a str,
    pub server_time: u64,
    /// Every joined channel's description, already rendered with
    /// [`Framing::channel_info`] (empty unless SendChannelInfo).
    pub channel_info: &'a [u8],
}

impl HeaderValues<'_> {
    /// Values for `status` now.
    pub fn now<'a>(status: &'a str, channel_info: &'a [u8]) -> HeaderValues<'a> {
        HeaderValues {
            status,
            server_time: crate::clock::unix_now(),
            channel_info,
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
    /// End the stream now, without writing anything more.
    Close,
}

/// How one mode frames its stream (see the module doc).
#[derive(Debug)]
pub enum Framing {
    /// Meteor's templates.
    Classic(Classic),
    /// Server-Sent Events (the mode named `eventsource`).
    EventSource(EventSource),
}

impl Framing {
    /// The framing for a mode's settings. The mode's name picks it (as
    /// the original gives `longpoll` its meaning by name): a section
    /// `[eventsource]` speaks EventSource, every other mode Meteor's
    /// templates.
    pub fn compile(settings: &ModeSettings) -> Framing {
        if settings.name == eventsource::MODE {
            Framing::EventSource(EventSource::compile(settings))
        } else {
            Framing::Classic(Classic::compile(settings))
        }
    }

    /// Append the response head: everything before the first message.
    pub fn head(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        match self {
            Framing::Classic(c) => c.head(out, values),
            Framing::EventSource(e) => e.head(out, values),
        }
    }

    /// Append one channel's description (for the head's channel info).
    pub fn channel_info(&self, out: &mut Vec<u8>, values: &ChannelInfoValues<'_>) {
        match self {
            Framing::Classic(c) => c.channel_info(out, values),
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
            Framing::EventSource(e) => e.gap(out, channel, requested, oldest),
        }
    }

    /// Append a keep-alive.
    pub fn ping(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        match self {
            Framing::Classic(c) => c.ping(out, values),
            Framing::EventSource(e) => e.ping(out),
        }
    }

    /// Append what a stream gets when the daemon stops, before [`Framing::close`].
    pub fn shutdown(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        match self {
            Framing::Classic(c) => c.shutdown(out, values),
            // The stream just ends; the browser resumes by Last-Event-ID.
            Framing::EventSource(_) => {}
        }
    }

    /// The bytes that end every response of this mode.
    pub fn close(&self) -> &Bytes {
        match self {
            Framing::Classic(c) => c.close(),
            Framing::EventSource(e) => e.close(),
        }
    }

    /// The client sent `bytes` after its request; `seen` is the
    /// connection's input state for this framing (zero at the start).
    pub fn input(&self, bytes: &[u8], seen: &mut u32) -> Input {
        match self {
            Framing::Classic(c) => c.input(bytes, seen),
            Framing::EventSource(e) => e.input(bytes, seen),
        }
    }
}
