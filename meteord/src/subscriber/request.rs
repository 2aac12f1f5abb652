//! The subscriber port's request grammar, free of I/O, read the way the
//! original reads it, because deployed clients and proxies see exactly what
//! that reading gives.
//!
//! # The head
//! Bytes are cut into lines at `\n` (a `\r` just before it is dropped); the
//! head is every line up to the first empty one. A `\r` followed by anything
//! but `\n` ends the reading for good: the head never completes (the
//! original stalls there too), and the connection meets the head timeout.
//! Nothing else is checked: no method, no version, no header syntax.
//!
//! # What it asks for
//! The head's lines, each ended by `\n`, are searched (anywhere, not just in
//! the request line) for, in this order:
//! 1. a stream: `GET` (any case), white space, SubscriberDynamicPageAddress
//!    (any case), `/<hostid>/<mode>/<channels>` where hostid and mode are
//!    `[0-9A-Za-z]+` and the channels are the longest run of
//!    `[0-9A-Za-z_%./-]` — so `/push/h/m/a b` asks for channel `a` and a
//!    query string simply ends the run;
//! 2. `GET /disconnect/<id>` (case as written), the id being everything up
//!    to the next white space (a query string included);
//! 3. `GET <path>` (case as written), the path ending at white space or `?`,
//!    served as a static document;
//!
//! and anything else (another method, garbage) is answered 404 with the
//! default templates. The channels are split at `/`; each definition is
//! `name`, `name.r<id>`, `name.b<n>` or `name.h` ([`parse_channel`]); invalid
//! ones are skipped, and a channel named twice keeps its last definition.
//! An EventSource stream may also name where it resumes ([`resume_after`]:
//! `Last-Event-ID`, or `lastEventId=` in the query).

use crate::channel::Backlog;
use meteor_proto::channel::valid_channel_name;

/// A complete request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its lines before the empty one, each followed by `\n` (line ends
    /// normalized, as the original keeps them).
    pub text: Vec<u8>,
    /// Bytes the head took in the buffer, its empty line included.
    pub len: usize,
}

/// The head in `buf`, or `None` while it is incomplete (or can never
/// complete, after a bare `\r`).
pub fn parse_head(buf: &[u8]) -> Option<Head> {
    let mut text = Vec::new();
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        let end = rest.iter().position(|&b| b == b'\r' || b == b'\n')?;
        let used = match rest[end] {
            b'\n' => end + 1,
            _ if rest.get(end + 1) == Some(&b'\n') => end + 2,
            // A bare CR: the original's line splitter never moves past it.
            _ => return None,
        };
        at += used;
        if end == 0 {
            return Some(Head { text, len: at });
        }
        text.extend_from_slice(&rest[..end]);
        text.push(b'\n');
    }
}

/// A stream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// As written: hostids are case-sensitive (`abc` and `ABC` are two
    /// subscribers), as in the original.
    pub hostid: String,
    pub mode: String,
    /// Valid channel definitions in order of first mention; a channel named
    /// twice keeps the last definition. May be empty (answered 404 with the
    /// mode's templates).
    pub channels: Vec<(String, Backlog)>,
}

/// What a request head asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Stream(StreamRequest),
    /// The id as written (it may hold anything but white space).
    Disconnect(String),
    /// The path as written, before any `?`.
    Document(String),
    /// Nothing the daemon serves: 404 with the default templates.
    Unknown,
}

/// Route a head's `text`; `prefix` is SubscriberDynamicPageAddress.
pub fn route(text: &[u8], prefix: &str) -> Route {
    let prefix = prefix.as_bytes();
    if let Some(stream) = leftmost(text, |at| stream_at(text, at, prefix)) {
        return Route::Stream(stream);
    }
    if let Some(id) = leftmost(text, |at| disconnect_at(text, at)) {
        return Route::Disconnect(id);
    }
    if let Some(path) = leftmost(text, |at| document_at(text, at)) {
        return Route::Document(path);
    }
    Route::Unknown
}

/// The User-Agent as the original takes it: the rest of the line after the
/// first `User-Agent: ` (any case, anywhere in the head) that is followed by
/// at least one character; `-` when there is none.
pub fn user_agent(text: &[u8]) -> String {
    const NAME: &[u8] = b"user-agent: ";
    (0..text.len())
        .find_map(|at| {
            let value = text.get(at..at + NAME.len())?;
            if !value.eq_ignore_ascii_case(NAME) {
                return None;
            }
            let rest = &text[at + NAME.len()..];
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// Where an EventSource client resumes (issue 12): the id after which it
/// wants everything, from a `Last-Event-ID: <id>` header line (name in any
/// case; what a browser sends when it reconnects) or else a
/// `lastEventId=<id>` parameter in the request line's query (what a page
/// sets on its first connection). The header wins: on a reconnect the
/// browser keeps the URL it started with but sends its newest id. A value
/// that is not a plain number of 64 bits is ignored, and the channels'
/// own markers stand.
pub fn resume_after(text: &[u8]) -> Option<u64> {
    const HEADER: &[u8] = b"last-event-id:";
    let mut lines = text.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let header = lines.find_map(|line| {
        let name = line.get(..HEADER.len())?;
        name.eq_ignore_ascii_case(HEADER)
            .then(|| plain_id(line[HEADER.len()..].trim_ascii()))?
    });
    header.or_else(|| {
        let target = request_line.split(|&b| is_space(b)).nth(1)?;
        let query = &target[target.iter().position(|&b| b == b'?')? + 1..];
        query
            .split(|&b| b == b'&')
            .find_map(|pair| plain_id(pair.strip_prefix(b"lastEventId=")?))
    })
}

/// A non-empty run of ASCII digits that fits in 64 bits.
fn plain_id(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Which per-request limit `req` breaks, if any: more channels than
/// `max_channels` (MaxChannelsPerRequest), or a channel name longer than
/// `max_name` bytes (MaxChannelNameLength). Such a request is refused with
/// 400 rather than cut down, so a client never silently misses a channel.
pub fn over_limits(
    req: &StreamRequest,
    max_channels: usize,
    max_name: usize,
) -> Option<crate::limits::Limit> {
    use crate::limits::Limit;
    if req.channels.len() > max_channels {
        return Some(Limit::ChannelsPerRequest);
    }
    req.channels
        .iter()
        .any(|(name, _)| name.len() > max_name)
        .then_some(Limit::ChannelNameLength)
}

/// The first position of `text` where `found` matches.
fn leftmost<T>(text: &[u8], found: impl Fn(usize) -> Option<T>) -> Option<T> {
    (0..text.len()).find_map(found)
}

/// White space as the original's pattern means it on bytes.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn is_channel_run_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%' | b'.' | b'/')
}

/// `GET` at `at` followed by white space: where the white space ends.
fn after_get(text: &[u8], at: usize, any_case: bool) -> Option<usize> {
    let word = text.get(at..at + 3)?;
    if !(word == b"GET" || any_case && word.eq_ignore_ascii_case(b"GET")) {
        return None;
    }
    let start = at + 3;
    let end = start + run(&text[start..], is_space);
    (end > start).then_some(end)
}

/// Length of the run at the start of `text` of bytes that satisfy `keep`.
fn run(text: &[u8], keep: impl Fn(u8) -> bool) -> usize {
    text.iter().position(|&b| !keep(b)).unwrap_or(text.len())
}

/// `text[at..]` starts with `word`, any case: what follows it.
fn after_word<'a>(text: &'a [u8], at: usize, word: &[u8]) -> Option<&'a [u8]> {
    let rest = text.get(at..)?;
    let head = rest.get(..word.len())?;
    head.eq_ignore_ascii_case(word).then(|| &rest[word.len()..])
}

/// A non-empty run of `keep` bytes followed by `/`: the run and what
/// follows the slash.
fn segment(text: &[u8], keep: impl Fn(u8) -> bool) -> Option<(&[u8], &[u8])> {
    let len = run(text, keep);
    (len > 0 && text.get(len) == Some(&b'/')).then(|| (&text[..len], &text[len + 1..]))
}

fn stream_at(text: &[u8], at: usize, prefix: &[u8]) -> Option<StreamRequest> {
    let start = after_get(text, at, true)?;
    let rest = after_word(text, start, prefix)?.strip_prefix(b"/")?;
    let (hostid, rest) = segment(rest, |b| b.is_ascii_alphanumeric())?;
    let (mode, rest) = segment(rest, |b| b.is_ascii_alphanumeric())?;
    let definitions = &rest[..run(rest, is_channel_run_byte)];
    if definitions.is_empty() {
        return None;
    }
    let mut channels: Vec<(String, Backlog)> = Vec::new();
    // Every byte here is ASCII (the run's alphabet).
    let definitions = String::from_utf8_lossy(definitions);
    for definition in definitions.split('/') {
        let Some((name, backlog)) = parse_channel(definition) else {
            continue; // invalid definitions are skipped
        };
        match channels.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = backlog,
            None => channels.push((name.to_owned(), backlog)),
        }
    }
    Some(StreamRequest {
        hostid: String::from_utf8_lossy(hostid).into_owned(),
        mode: String::from_utf8_lossy(mode).into_owned(),
        channels,
    })
}

fn disconnect_at(text: &[u8], at: usize) -> Option<String> {
    let start = after_get(text, at, false)?;
    let rest = text[start..].strip_prefix(b"/disconnect/")?;
    let id = &rest[..run(rest, |b| !is_space(b))];
    (!id.is_empty()).then(|| String::from_utf8_lossy(id).into_owned())
}

fn document_at(text: &[u8], at: usize) -> Option<String> {
    let start = after_get(text, at, false)?;
    let rest = &text[start..];
    let path = &rest[..run(rest, |b| !is_space(b) && b != b'?')];
    (!path.is_empty()).then(|| String::from_utf8_lossy(path).into_owned())
}

/// One channel definition: `name`, `name.r<id>`, `name.b<n>`, `name.h`.
pub fn parse_channel(definition: &str) -> Option<(&str, Backlog)> {
    let (name, marker) = match definition.split_once('.') {
        Some((name, marker)) => (name, Some(marker)),
        None => (definition, None),
    };
    if !valid_channel_name(name.as_bytes()) {
        return None;
    }
    let Some(marker) = marker else {
        return Some((name, Backlog::None));
    };
    let mut chars = marker.chars();
    let letter = chars.next()?;
    let digits = chars.as_str();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits past u64 are "more than there can be".
    let number = (!digits.is_empty()).then(|| digits.parse::<u64>().unwrap_or(u64::MAX));
    let backlog = match letter {
        'r' => number.map_or(Backlog::All, Backlog::FromId),
        'b' => number
            .filter(|&n| n > 0)
            .map_or(Backlog::All, Backlog::Last),
        'h' => Backlog::All,
        // Upper-case markers pass the syntax check but replay nothing, as
        // deployed clients have always seen.
        'R' | 'B' | 'H' => Backlog::None,
        _ => return None,
    };
    Some((name, backlog))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(request: &str) -> Vec<u8> {
        parse_head(request.as_bytes()).expect("complete head").text
    }

    fn routed(request: &str) -> Route {
        route(&head(request), "/push")
    }

    fn stream(target: &str) -> StreamRequest {
        match routed(&format!("GET {target} HTTP/1.1\r\n\r\n")) {
            Route::Stream(s) => s,
            other => panic!("{target}: {other:?}"),
        }
    }

    #[test]
    fn channel_markers() {
        assert_eq!(parse_channel("chat"), Some(("chat", Backlog::None)));
        assert_eq!(
            parse_channel("chat.r15"),
            Some(("chat", Backlog::FromId(15)))
        );
        assert_eq!(parse_channel("chat.b10"), Some(("chat", Backlog::Last(10))));
        assert_eq!(parse_channel("chat.h"), Some(("chat", Backlog::All)));
        assert_eq!(parse_channel("chat.h12"), Some(("chat", Backlog::All)));
        assert_eq!(parse_channel("chat.b0"), Some(("chat", Backlog::All)));
        assert_eq!(parse_channel("chat.b"), Some(("chat", Backlog::All)));
        assert_eq!(parse_channel("chat.r"), Some(("chat", Backlog::All)));
        assert_eq!(parse_channel("chat.R5"), Some(("chat", Backlog::None)));
        assert_eq!(parse_channel("chat.B5"), Some(("chat", Backlog::None)));
        assert_eq!(parse_channel("chat.H"), Some(("chat", Backlog::None)));
        assert_eq!(
            parse_channel("chat.r99999999999999999999999"),
            Some(("chat", Backlog::FromId(u64::MAX)))
        );
        assert_eq!(parse_channel("a-b_c%20"), Some(("a-b_c%20", Backlog::None)));
    }

    #[test]
    fn invalid_channel_definitions() {
        for bad in [
            "", "chat.", "chat.x5", "chat.r5x", "ch at", "ch.at.h", "ch!", "chat.r-1", "é",
        ] {
            assert_eq!(parse_channel(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn head_lines_end_at_lf_with_an_optional_cr() {
        let req = b"GET /push/h/m/c HTTP/1.1\r\nHost: x\nUser-Agent: T/1.0 \r\n\r\nrest";
        let head = parse_head(req).unwrap();
        assert_eq!(
            head.text,
            b"GET /push/h/m/c HTTP/1.1\nHost: x\nUser-Agent: T/1.0 \n"
        );
        assert_eq!(&req[head.len..], b"rest");
        assert_eq!(parse_head(b"GET /x HTTP/1.1\r\nHost"), None);
        assert_eq!(parse_head(b"GET /x HTTP/1.1\r\n\r"), None);
        assert_eq!(parse_head(b"\r\n").unwrap().text, b"");
        // A bare CR stalls the head for good, whatever follows.
        assert_eq!(parse_head(b"GET /x\rHTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn stream_paths() {
        let s = stream("/push/AbC123/xhrinteractive/chat.b10/news.r5?nocache=1");
        assert_eq!(s.hostid, "AbC123", "hostids keep their case");
        assert_eq!(s.mode, "xhrinteractive");
        assert_eq!(
            s.channels,
            vec![
                ("chat".into(), Backlog::Last(10)),
                ("news".into(), Backlog::FromId(5))
            ]
        );
        assert_eq!(stream("/PUSH/h/iframe/c").mode, "iframe");
        assert_eq!(stream("/push/h/IFrame/c").mode, "IFrame");
        assert_eq!(
            stream("/push/h/m/ch!at/x").channels,
            vec![("ch".into(), Backlog::None)],
            "the channel run ends at the first byte outside its alphabet"
        );
        assert_eq!(
            stream("/push/h/m/a b").channels,
            vec![("a".into(), Backlog::None)]
        );
        assert_eq!(
            stream("/push/h/m/c/").channels,
            vec![("c".into(), Backlog::None)]
        );
        let lower = routed("get /push/h/m/c HTTP/1.0\r\n\r\n");
        assert!(matches!(lower, Route::Stream(_)), "{lower:?}");
        let no_version = routed("GET /push/h/m/c\r\n\r\n");
        assert!(matches!(no_version, Route::Stream(_)), "{no_version:?}");
    }

    #[test]
    fn duplicates_and_invalid_are_handled() {
        let s = stream("/push/h/longpoll/a.h/bad.x/a.r7/b");
        assert_eq!(
            s.channels,
            vec![
                ("a".into(), Backlog::FromId(7)),
                ("b".into(), Backlog::None)
            ]
        );
        assert!(stream("/push/h/longpoll/bad.x").channels.is_empty());
        assert!(stream("/push/h/longpoll//").channels.is_empty());
    }

    #[test]
    fn what_is_not_a_stream_is_a_document() {
        for (target, path) in [
            ("/push/bad-host/m/c", "/push/bad-host/m/c"),
            ("/push/h/my_mode/c", "/push/h/my_mode/c"),
            ("/push/h//c", "/push/h//c"),
            ("/push/h/longpoll/", "/push/h/longpoll/"),
            ("/push/h/longpoll", "/push/h/longpoll"),
            ("/meteor.js?v=1", "/meteor.js"),
            ("/pushy/x", "/pushy/x"),
            ("/DISCONNECT/abc", "/DISCONNECT/abc"),
            ("/disconnect/", "/disconnect/"),
            ("http://host/push/h/m/c", "http://host/push/h/m/c"),
        ] {
            assert_eq!(
                routed(&format!("GET {target} HTTP/1.1\r\n\r\n")),
                Route::Document(path.into()),
                "{target}"
            );
        }
    }

    #[test]
    fn disconnect_takes_the_id_as_written() {
        assert_eq!(
            routed("GET /disconnect/ABC HTTP/1.1\r\n\r\n"),
            Route::Disconnect("ABC".into())
        );
        assert_eq!(
            routed("GET /disconnect/abc?x=1/y HTTP/1.1\r\n\r\n"),
            Route::Disconnect("abc?x=1/y".into())
        );
    }

    #[test]
    fn the_patterns_are_searched_anywhere_in_the_head() {
        for request in [
            "HEAD /app.js HTTP/1.1\r\n\r\n",
            "POST /push/h/m/c HTTP/1.1\r\n\r\n",
            "get /app.js HTTP/1.1\r\n\r\n",
            "GET ?x HTTP/1.1\r\n\r\n",
            "\x16\x03\x01garbage\r\n\r\n",
            "\r\n",
        ] {
            assert_eq!(routed(request), Route::Unknown, "{request:?}");
        }
        assert_eq!(
            routed("FORGET /app.js HTTP/1.1\r\n\r\n"),
            Route::Document("/app.js".into())
        );
        assert_eq!(
            routed("POST /x HTTP/1.1\r\nX-A: GET /app.js\r\n\r\n"),
            Route::Document("/app.js".into())
        );
        assert_eq!(
            routed("GET\t /app.js HTTP/1.1\r\n\r\n"),
            Route::Document("/app.js".into())
        );
        // A stream anywhere wins over a document earlier in the head.
        assert!(matches!(
            routed("GET /app.js HTTP/1.1\r\nX: GET /push/h/m/c\r\n\r\n"),
            Route::Stream(_)
        ));
    }

    #[test]
    fn the_prefix_is_taken_literally() {
        let text = head("GET /stream/h/m/c HTTP/1.1\r\n\r\n");
        assert!(matches!(route(&text, "/stream"), Route::Stream(_)));
        assert!(matches!(route(&text, "/STREAM"), Route::Stream(_)));
        assert!(matches!(route(&text, "/stream/"), Route::Document(_)));
        let bare = head("GET /h/m/c HTTP/1.1\r\n\r\n");
        assert!(matches!(route(&bare, ""), Route::Stream(_)));
    }

    #[test]
    fn user_agent_as_the_original_takes_it() {
        let ua = |head_text: &str| user_agent(&head(head_text));
        assert_eq!(
            ua("GET / HTTP/1.1\r\nUser-Agent: A/1 (x) \r\n\r\n"),
            "A/1 (x) "
        );
        assert_eq!(ua("GET / HTTP/1.1\r\n\r\n"), "-");
        assert_eq!(ua("GET / HTTP/1.1\r\nUser-Agent:A\r\n\r\n"), "-");
        assert_eq!(ua("GET / HTTP/1.1\r\nuser-agent: \r\n\r\n"), "-");
        assert_eq!(ua("GET / HTTP/1.1\r\nUser-Agent:  two\r\n\r\n"), " two");
        assert_eq!(
            ua("GET / HTTP/1.1\r\nX-User-Agent: first\r\nUser-Agent: second\r\n\r\n"),
            "first"
        );
    }

    #[test]
    fn resume_after_reads_the_header_then_the_query() {
        let resume = |request: &str| resume_after(&head(request));
        assert_eq!(
            resume("GET /push/h/eventsource/c HTTP/1.1\r\nLast-Event-ID: 42\r\n\r\n"),
            Some(42)
        );
        assert_eq!(
            resume("GET /push/h/eventsource/c HTTP/1.1\r\nlast-event-id:7 \r\n\r\n"),
            Some(7)
        );
        assert_eq!(
            resume("GET /push/h/eventsource/c?x=1&lastEventId=9 HTTP/1.1\r\n\r\n"),
            Some(9)
        );
        assert_eq!(
            resume("GET /push/h/eventsource/c?lastEventId=9 HTTP/1.1\r\nLAST-EVENT-ID: 12\r\n\r\n"),
            Some(12),
            "the browser's header is newer than the page's URL"
        );
        assert_eq!(
            resume("GET /push/h/eventsource/c?lastEventId=9 HTTP/1.1\r\nLast-Event-ID: x\r\n\r\n"),
            Some(9),
            "a garbage header leaves the query"
        );
    }

    #[test]
    fn resume_after_ignores_garbage() {
        for request in [
            "GET /push/h/eventsource/c HTTP/1.1\r\n\r\n",
            "GET /push/h/eventsource/c HTTP/1.1\r\nLast-Event-ID:\r\n\r\n",
            "GET /push/h/eventsource/c HTTP/1.1\r\nLast-Event-ID: -1\r\n\r\n",
            "GET /push/h/eventsource/c HTTP/1.1\r\nLast-Event-ID: 1 2\r\n\r\n",
            "GET /push/h/eventsource/c HTTP/1.1\r\nLast-Event-ID: 18446744073709551616\r\n\r\n",
            "GET /push/h/eventsource/c HTTP/1.1\r\nX-Last-Event-ID: 5\r\n\r\n",
            "GET /push/h/eventsource/c?lastEventId=abc HTTP/1.1\r\n\r\n",
            "GET /push/h/eventsource/c?lastEventId= HTTP/1.1\r\n\r\n",
            "GET /push/h/eventsource/c?lasteventid=5 HTTP/1.1\r\n\r\n",
            "GET /push/h/eventsource/c?xlastEventId=5 HTTP/1.1\r\n\r\n",
            "GET /push/h/eventsource/c HTTP/1.1\r\nReferer: /?lastEventId=5\r\n\r\n",
        ] {
            assert_eq!(resume_after(&head(request)), None, "{request:?}");
        }
        assert_eq!(
            resume_after(&head(
                "GET /push/h/eventsource/c HTTP/1.1\r\nLast-Event-ID: 18446744073709551615\r\n\r\n"
            )),
            Some(u64::MAX)
        );
    }
}
