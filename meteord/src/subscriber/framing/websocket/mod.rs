//! The WebSocket framing (RFC 6455; issue 12): mode `websocket`. The
//! request must be an upgrade (`handshake.rs`), answered `101`; then every
//! event is one unmasked text frame holding the JSON object of `event.rs`,
//! so a message's frame is the same bytes for every subscriber and is
//! rendered once, in the render cache. Pings are ping frames; a client
//! whose pong has not come by the next ping is closed. The client's frames
//! (`reader.rs`, `client.rs`) subscribe and unsubscribe on the running
//! stream.
//!
//! Why our own small codec and not tungstenite's: a stream writes shared,
//! pre-rendered bytes with `try_write` and reads into a stack buffer;
//! tungstenite's `WebSocket` wants to own the socket and its read and
//! write buffers (kilobytes per connection), and its `Frame` owns its
//! payload, so each subscriber would format its own copy. The server side
//! of the format is a 2-10 byte header; the client side is `frame.rs`,
//! with every rule tested. The handshake's SHA-1 and base64 are crates.
//!
//! # How a stream ends (close codes)
//! | why | code | reason |
//! |---|---|---|
//! | MaxTime, MaxMessages, a non-persistent mode | 1000 | `MaxTime` / `done` |
//! | daemon shutdown (SIGTERM) | 1001 | `server shutting down` |
//! | fell out of the history | 4000 | `lagged: resume with since` |
//! | hostid takeover | 4001 | `replaced by a newer connection` |
//! | `/disconnect/<hostid>` | 4002 | `disconnected` |
//! | no pong by the next ping | 1008 | `no pong` |
//! | more frames per second than WebSocketMaxRate | 1008 | `too many frames` |
//! | a message over WebSocketMaxMessage | 1009 | `message too big` |
//! | unmasked, reserved bits, bad opcode or fragmentation | 1002 | (what) |
//! | text that is not UTF-8 | 1007 | (what) |
//! | the client's close | its code (1000 if none) | |
//!
//! MaxTime is 1000, not 1001: nobody is going away, the stream simply
//! reached the end its mode gives it, and the client reconnects as after
//! any classic MaxTime. A lagged client gets 4000 (an application code, as
//! 1011 means a server fault): the client resumes with `since` = the last
//! id it saw, and a gap event tells it what the history no longer holds.
//! 4001 tells a client not to reconnect in a loop against its own newer
//! connection.

mod client;
mod frame;
mod handshake;
mod reader;

use std::ops::Range;

use bytes::Bytes;

pub use frame::{ClientClose, CloseFrame};
pub use handshake::{Handshake, check as check_upgrade};
pub(in crate::subscriber::framing) use reader::AWAITING_PONG;
pub use reader::Partial;

use super::event;
use super::{Ending, HeaderValues, Input, InputState};
use crate::channel::Message;
use crate::connections::StopReason;

/// What a client may send (WebSocketMaxMessage, WebSocketMaxRate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (and frame) payload, bytes.
    pub max_message: usize,
    /// Most frames per second.
    pub max_rate: u64,
}

impl Limits {
    /// The limits a configuration sets.
    pub fn from_config(config: &crate::config::Config) -> Limits {
        Limits {
            max_message: config.limits.websocket_max_message,
            max_rate: config.limits.websocket_max_rate,
        }
    }
}

/// One WebSocket mode.
#[derive(Debug)]
pub struct WebSocket {
    limits: Limits,
    /// An empty ping frame: the same bytes for every stream.
    ping: Bytes,
}

/// Append a text frame holding `json`.
fn push_text(out: &mut Vec<u8>, json: &[u8]) {
    frame::push_frame(out, frame::OP_TEXT, json);
}

impl WebSocket {
    pub fn compile(limits: Limits) -> WebSocket {
        let mut ping = Vec::new();
        frame::push_frame(&mut ping, frame::OP_PING, b"");
        WebSocket {
            limits,
            ping: Bytes::from(ping),
        }
    }

    /// The answer to the request: `101` for an accepted upgrade, else a
    /// plain HTTP head for `values.status` (a 404, a disconnect's 200).
    pub fn head(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        match values.upgrade_accept {
            Some(accept) => handshake::push_switching(out, accept),
            None => {
                out.extend_from_slice(b"HTTP/1.1 ");
                out.extend_from_slice(values.status.as_bytes());
                out.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        }
    }

    /// The message's text frame, and where the text sits in it when the
    /// JSON string is the text unchanged (nothing to escape), so the
    /// stored message can share it.
    pub fn message(&self, message: &Message) -> (Bytes, Option<Range<usize>>) {
        let text = message.text();
        let mut json = Vec::with_capacity(64 + text.len() + message.channel.len());
        event::push_message(&mut json, message.id, message.channel.as_bytes(), &text);
        let mut out = Vec::with_capacity(json.len() + 10);
        push_text(&mut out, &json);
        // The object ends `"text":"<text>"}`.
        let end = out.len() - 2;
        let text_at = end
            .checked_sub(text.len())
            .filter(|&start| out[start..end] == text[..] && out[start - 1] == b'"')
            .map(|start| start..end);
        (Bytes::from(out), text_at)
    }

    pub fn gap(&self, out: &mut Vec<u8>, channel: &[u8], requested: u64, oldest: u64) {
        let mut json = Vec::with_capacity(64 + channel.len());
        event::push_gap(&mut json, channel, requested, oldest);
        push_text(out, &json);
    }

    pub fn ping(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ping);
    }

    /// The ping never changes: the clock writes it itself (and marks it
    /// awaited, [`super::Framing::ping_awaits_answer`]).
    pub fn constant_ping(&self) -> &Bytes {
        &self.ping
    }

    /// The close frame for `ending` (see the module doc).
    pub fn end(&self, out: &mut Vec<u8>, ending: Ending) {
        let close = match ending {
            Ending::Complete => CloseFrame::new(1000, "done"),
            Ending::MaxTime => CloseFrame::new(1000, "MaxTime"),
            Ending::Lagged => CloseFrame::new(4000, "lagged: resume with since"),
            Ending::Stopped(StopReason::Shutdown) => CloseFrame::new(1001, "server shutting down"),
            Ending::Stopped(StopReason::Replaced) => {
                CloseFrame::new(4001, "replaced by a newer connection")
            }
            Ending::Stopped(StopReason::Disconnected) => CloseFrame::new(4002, "disconnected"),
            Ending::Stopped(StopReason::Running) => CloseFrame::new(1000, "done"),
            Ending::Unanswered => CloseFrame::new(frame::POLICY, "no pong"),
            Ending::Client(close) => close.frame(),
        };
        frame::push_close(out, close);
    }

    /// An error reply's text frame.
    pub fn error(&self, out: &mut Vec<u8>, reason: &str) {
        if let super::Action::Reply(bytes) = reader::error(reason) {
            out.extend_from_slice(&bytes);
        }
    }

    pub fn input(&self, bytes: &[u8], state: &mut InputState, now: u64) -> Input {
        reader::input(&self.limits, bytes, state, now)
    }

    /// Check a request head for the upgrade.
    pub fn handshake(&self, head: &[u8]) -> Handshake {
        handshake::check(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelName;

    fn ws() -> WebSocket {
        WebSocket::compile(Limits {
            max_message: 1000,
            max_rate: 20,
        })
    }

    fn message(text: &[u8]) -> Message {
        let text = Bytes::copy_from_slice(text);
        Message::new(17, ChannelName::from("chat"), 0, text, 1)
    }

    #[test]
    fn a_message_is_one_text_frame_of_the_json_object() {
        let (bytes, text_at) = ws().message(&message(b"hello"));
        let json = br#"{"type":"message","id":17,"channel":"chat","text":"hello"}"#;
        let mut expected = vec![0x81, json.len() as u8];
        expected.extend_from_slice(json);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(
            &bytes[text_at.unwrap()],
            b"hello",
            "shared with the stored text"
        );
        let (bytes, text_at) = ws().message(&message(b"a\"b"));
        assert_eq!(text_at, None, "an escaped text is not the stored one");
        assert!(bytes.ends_with(br#""text":"a\"b"}"#));
    }

    #[test]
    fn ends_are_close_frames() {
        let mut out = Vec::new();
        ws().end(&mut out, Ending::Stopped(StopReason::Shutdown));
        assert_eq!(out, b"\x88\x16\x03\xe9server shutting down");
        out.clear();
        ws().end(&mut out, Ending::Lagged);
        assert_eq!(out, b"\x88\x1b\x0f\xa0lagged: resume with since");
    }

    #[test]
    fn the_ping_is_an_empty_ping_frame() {
        let mut out = Vec::new();
        ws().ping(&mut out);
        assert_eq!(out, b"\x89\x00");
        assert_eq!(&ws().constant_ping()[..], b"\x89\x00");
    }

    #[test]
    fn any_whole_frame_from_the_client_answers_a_ping() {
        let mut state = InputState::default();
        state.expect_answer();
        assert!(!state.answered());
        // An empty pong, masked as a client's frames are.
        ws().input(b"\x8a\x80\x12\x34\x56\x78", &mut state, 1);
        assert!(state.answered());
    }
}
