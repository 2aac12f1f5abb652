//! The EventSource framing (Server-Sent Events, issue 12): the mode named
//! `eventsource` speaks it, chosen by the mode's name when it is compiled,
//! as the original gives the mode named `longpoll` its meaning by name.
//! The templates of that mode are not used.
//!
//! - The head is an HTTP answer of ours ([`crate::http::stream_head`]):
//!   `text/event-stream`, no caching, no proxy buffering, CORS from
//!   EventSourceAllowOrigin (credentials off), the body ending at close;
//!   then a `retry: <ms>` field (EventSourceRetry; 0 = none).
//! - A message is `id: <id>` and `data: <the JSON object of event.rs>`
//!   and a blank line, rendered once per message and shared (the render
//!   cache); the JSON never holds a line break, so one `data:` line is
//!   the whole object.
//! - A gap is `event: gap` and `data: <JSON>`, without an id, so the
//!   browser's last event id stays the last message's.
//! - A ping is a comment, `: ping`.
//! - Shutdown, MaxTime, falling out of the history write nothing: the
//!   stream just ends, and the browser reconnects after `retry` with
//!   `Last-Event-ID`, which resumes exactly after the last message it got.
//!   A hostid takeover and `/disconnect/<hostid>` write an `eof` event
//!   (`{"type":"eof","reason":"takeover"|"disconnect"}`): the page must not
//!   reconnect then (see [`EventSource::end`]).
//! - Channel info (SendChannelInfo) has no place here: nothing.
//! - Any status but `200 OK` (the 404 for a stream without a valid
//!   channel) is a complete, empty HTTP answer with the CORS header, so a
//!   page on another origin sees the status, and the browser does not
//!   reconnect to it.

use std::ops::Range;

use bytes::Bytes;

use super::classic::ignore_input;
use super::{ChannelInfoValues, Ending, HeaderValues, Input, event};
use crate::channel::Message;
use crate::config::ModeSettings;
use crate::connections::StopReason;
use crate::template::push_number;

/// The mode that speaks EventSource.
pub const MODE: &str = "eventsource";

/// A comment: keeps proxies and the browser from timing the stream out.
const PING: &[u8] = b": ping\n\n";

/// One EventSource mode, compiled.
#[derive(Debug)]
pub struct EventSource {
    /// The `200 OK` head and the retry field: the same for every stream.
    head: Bytes,
    /// EventSourceAllowOrigin, for the error answers.
    allow_origin: String,
    /// Nothing: the stream ends at close.
    close: Bytes,
    ping: Bytes,
}

impl EventSource {
    pub fn compile(settings: &ModeSettings) -> EventSource {
        // A header value cannot hold a line break; the operator's value
        // loses any rather than splitting the head.
        let allow_origin: String = settings
            .event_source_allow_origin
            .chars()
            .filter(|&c| c != '\r' && c != '\n')
            .collect();
        let mut head = Vec::new();
        crate::http::stream_head(
            &mut head,
            crate::http::OK,
            &[
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache"),
                ("X-Accel-Buffering", "no"),
                ("Access-Control-Allow-Origin", &allow_origin),
            ],
        );
        if settings.event_source_retry > 0 {
            head.extend_from_slice(b"retry: ");
            push_number(&mut head, settings.event_source_retry);
            head.extend_from_slice(b"\n\n");
        }
        EventSource {
            head: Bytes::from(head),
            allow_origin,
            close: Bytes::new(),
            ping: Bytes::from_static(PING),
        }
    }

    pub fn head(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        if values.status == crate::http::OK {
            out.extend_from_slice(&self.head);
            return;
        }
        crate::http::stream_head(
            out,
            values.status,
            &[
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Cache-Control", "no-cache"),
                ("Access-Control-Allow-Origin", &self.allow_origin),
                ("Content-Length", "0"),
            ],
        );
    }

    pub fn channel_info(&self, out: &mut Vec<u8>, values: &ChannelInfoValues<'_>) {
        let _ = (out, values);
    }

    /// `id:` and `data:`; the text's range inside the JSON string, which
    /// the message shares when escaping left the text as it was.
    pub fn message(&self, message: &Message) -> (Bytes, Option<Range<usize>>) {
        let text = message.text();
        let mut out = Vec::with_capacity(80 + text.len() + message.channel.len());
        out.extend_from_slice(b"id: ");
        push_number(&mut out, message.id);
        out.extend_from_slice(b"\ndata: ");
        let json_at = out.len();
        event::push_message(&mut out, message.id, message.channel.as_bytes(), &text);
        // The text is the last field: its string ends before the final `"}`.
        let text_end = out.len() - 2;
        let text_at = text_end
            .checked_sub(text.len())
            .filter(|&at| at > json_at && !text.is_empty());
        out.extend_from_slice(b"\n\n");
        (Bytes::from(out), text_at.map(|at| at..text_end))
    }

    pub fn gap(&self, out: &mut Vec<u8>, channel: &[u8], requested: u64, oldest: u64) {
        out.extend_from_slice(b"event: gap\ndata: ");
        event::push_gap(out, channel, requested, oldest);
        out.extend_from_slice(b"\n\n");
    }

    pub fn ping(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(PING);
    }

    /// The ping never changes: the clock writes it itself.
    pub fn constant_ping(&self) -> &Bytes {
        &self.ping
    }

    /// The end of a stream: nothing (the browser reconnects with
    /// Last-Event-ID), except when another connection took the hostid over
    /// or `/disconnect/<hostid>` ended it. Reconnecting would then take the
    /// hostid back and two pages would end each other's streams forever, so
    /// those get an `eof` event, which tells the page not to reconnect (as
    /// the classic templates' `eof()` and WebSocket's 4001/4002 do).
    pub fn end(&self, out: &mut Vec<u8>, ending: Ending) {
        let reason = match ending {
            Ending::Stopped(StopReason::Replaced) => "takeover",
            Ending::Stopped(StopReason::Disconnected) => "disconnect",
            _ => return out.extend_from_slice(&self.close),
        };
        out.extend_from_slice(b"event: eof\ndata: {\"type\":\"eof\",\"reason\":\"");
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\"}\n\n");
        out.extend_from_slice(&self.close);
    }

    pub fn close(&self) -> &Bytes {
        &self.close
    }

    /// A browser sends nothing after its request: ignored, bounded.
    pub fn input(&self, bytes: &[u8], seen: &mut u32) -> Input {
        ignore_input(bytes, seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(retry: u64, origin: &str) -> EventSource {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let mut settings = (**config.modes.get(MODE)).clone();
        settings.event_source_retry = retry;
        settings.event_source_allow_origin = origin.to_owned();
        EventSource::compile(&settings)
    }

    fn head(framing: &EventSource, status: &str) -> String {
        let mut out = Vec::new();
        framing.head(&mut out, &HeaderValues::now(status, b""));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_head_is_an_event_stream_with_cors_and_retry() {
        assert_eq!(
            head(&compiled(3000, "*"), "200 OK"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
             Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\
             Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\nretry: 3000\n\n"
        );
        let no_retry = head(&compiled(0, "https://a.example\r\nX: y"), "200 OK");
        assert!(
            no_retry.ends_with(
                "Access-Control-Allow-Origin: https://a.exampleX: y\r\nConnection: close\r\n\r\n"
            ),
            "{no_retry}"
        );
    }

    #[test]
    fn an_error_is_a_complete_empty_answer_with_cors() {
        assert_eq!(
            head(&compiled(3000, "*"), "404 Not Found"),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Cache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_message_is_an_event_with_its_id_and_the_text_is_found_in_it() {
        let framing = compiled(3000, "*");
        for (id, text, shared) in [
            (42, &b"hi there"[..], true),
            (43, b"a\"b", false),
            (44, b"", false),
        ] {
            let message = Message::new(
                id,
                crate::channel::ChannelName::from("chat"),
                0,
                Bytes::copy_from_slice(text),
                1,
            );
            let (bytes, text_at) = framing.message(&message);
            let mut json = Vec::new();
            event::push_message(&mut json, message.id, b"chat", text);
            let mut expected = format!("id: {}\ndata: ", message.id).into_bytes();
            expected.extend_from_slice(&json);
            expected.extend_from_slice(b"\n\n");
            assert_eq!(bytes, expected);
            let found = text_at.map(|range| &bytes[range] == text);
            assert_eq!(found.unwrap_or(false), shared, "{text:?}");
        }
    }

    #[test]
    fn gaps_and_pings() {
        let framing = compiled(3000, "*");
        let mut out = Vec::new();
        framing.gap(&mut out, b"c", 5, 120);
        framing.ping(&mut out);
        assert_eq!(
            out,
            b"event: gap\ndata: {\"type\":\"gap\",\"channel\":\"c\",\"requested\":5,\"oldest\":120}\n\n: ping\n\n"
        );
        assert!(framing.close().is_empty());
    }

    /// The shipped section sets only Persist: the command line's
    /// PingInterval and MaxTime reach it, and so do our two parameters.
    #[test]
    fn the_shipped_mode_inherits_the_global_settings() {
        use crate::config::{CommandLine, Invocation, load_builtin};
        let args = [
            "-PingInterval",
            "4",
            "-MaxTime",
            "60",
            "-EventSourceRetry",
            "500",
            "-EventSourceAllowOrigin",
            "https://a.example",
        ];
        let Ok(Invocation::Run(cli)) = CommandLine::parse(args.iter().map(|s| s.to_string()))
        else {
            panic!("{args:?}");
        };
        let config = load_builtin(&cli).unwrap();
        let mode = config.modes.get(MODE);
        assert_eq!(mode.name, MODE);
        assert!(mode.persist && !mode.close_on_event);
        assert_eq!((mode.ping_interval, mode.max_time), (4, 60));
        assert_eq!(mode.event_source_retry, 500);
        assert_eq!(mode.event_source_allow_origin, "https://a.example");
        let defaults = load_builtin(&CommandLine::default()).unwrap();
        assert_eq!(defaults.modes.get(MODE).event_source_retry, 3000);
    }
}
