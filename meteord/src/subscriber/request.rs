//! The subscriber port's request grammar, free of I/O: the HTTP request head
//! (with hard limits) and the Meteor stream path
//! `/push/<hostid>/<mode>/<chan>[.r<id>|.b<n>|.h][/<chan>…]`.

use crate::channel::Backlog;
use crate::channel::valid_subscriber_name as valid_channel_name;

/// Longest request line we read; longer is answered 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest request head (line + headers); longer is answered 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines; real browsers send about 20.
pub const MAX_HEADERS: usize = 64;

/// The parts of a request head the subscriber port uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub user_agent: String,
    /// Bytes the head took in the buffer.
    pub len: usize,
}

/// A request head we refuse; each maps to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request")]
    Malformed,
    #[error("request line longer than {MAX_REQUEST_LINE} bytes")]
    UriTooLong,
    #[error("request head longer than {MAX_HEAD} bytes or more than {MAX_HEADERS} headers")]
    HeadersTooLarge,
}

impl HeadError {
    pub fn status(self) -> &'static str {
        match self {
            HeadError::Malformed => "400 Bad Request",
            HeadError::UriTooLong => "414 URI Too Long",
            HeadError::HeadersTooLarge => "431 Request Header Fields Too Large",
        }
    }
}

/// Parse the head in `buf`: `Ok(None)` means "incomplete, read more".
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    if line_end.map_or(buf.len(), |e| e) > MAX_REQUEST_LINE {
        return Err(HeadError::UriTooLong);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let user_agent = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("user-agent"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .unwrap_or_default();
            Ok(Some(Head {
                method: request.method.unwrap_or_default().to_owned(),
                target: request.path.unwrap_or_default().to_owned(),
                user_agent,
                len,
            }))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(HeadError::HeadersTooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::HeadersTooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// A stream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// Lower-cased (hostids are case-insensitive).
    pub hostid: String,
    pub mode: String,
    /// Valid channel definitions in order of first mention; a channel named
    /// twice keeps the last definition.
    pub channels: Vec<(String, Backlog)>,
}

/// What a GET on the subscriber port asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Stream(StreamRequest),
    /// Under the stream prefix but not understood (bad hostid or mode).
    BadStream,
    Disconnect(String),
    Document(String),
}

/// Route `target` (path + optional query); `prefix` is
/// SubscriberDynamicPageAddress, matched case-insensitively.
pub fn route(target: &str, prefix: &str) -> Route {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let prefix = prefix.trim_end_matches('/');
    if let Some(rest) = strip_prefix_ignore_case(path, prefix).and_then(|r| r.strip_prefix('/')) {
        return parse_stream(rest).map_or(Route::BadStream, Route::Stream);
    }
    if let Some(hostid) = path.strip_prefix("/disconnect/") {
        let hostid = hostid.trim_end_matches('/');
        if valid_hostid(hostid) {
            return Route::Disconnect(hostid.to_ascii_lowercase());
        }
    }
    Route::Document(path.to_owned())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn valid_hostid(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn valid_mode(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_stream(rest: &str) -> Option<StreamRequest> {
    let mut parts = rest.split('/');
    let hostid = parts.next().filter(|h| valid_hostid(h))?;
    let mode = parts.next().filter(|m| valid_mode(m))?;
    let mut channels: Vec<(String, Backlog)> = Vec::new();
    for definition in parts {
        let Some((name, backlog)) = parse_channel(definition) else {
            continue; // invalid definitions are skipped
        };
        match channels.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = backlog,
            None => channels.push((name.to_owned(), backlog)),
        }
    }
    Some(StreamRequest {
        hostid: hostid.to_ascii_lowercase(),
        mode: mode.to_owned(),
        channels,
    })
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

    fn stream(target: &str) -> StreamRequest {
        match route(target, "/push") {
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
    fn stream_paths() {
        let s = stream("/push/AbC123/xhrinteractive/chat.b10/news.r5?nocache=1");
        assert_eq!(s.hostid, "abc123");
        assert_eq!(s.mode, "xhrinteractive");
        assert_eq!(
            s.channels,
            vec![
                ("chat".into(), Backlog::Last(10)),
                ("news".into(), Backlog::FromId(5))
            ]
        );
        assert_eq!(
            stream("/PUSH/h/iframe/c").mode,
            "iframe",
            "prefix is case-insensitive"
        );
        assert_eq!(
            stream("/push/h/IFrame/c").mode,
            "IFrame",
            "mode keeps its case"
        );
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
        assert!(stream("/push/h/longpoll").channels.is_empty());
    }

    #[test]
    fn other_routes() {
        assert_eq!(route("/push/bad-host/m/c", "/push"), Route::BadStream);
        assert_eq!(route("/push/h//c", "/push"), Route::BadStream);
        assert_eq!(
            route("/disconnect/ABC", "/push"),
            Route::Disconnect("abc".into())
        );
        assert_eq!(
            route("/meteor.js?v=1", "/push"),
            Route::Document("/meteor.js".into())
        );
        assert_eq!(
            route("/pushy/x", "/push"),
            Route::Document("/pushy/x".into())
        );
        assert_eq!(
            route("/stream/h/m/c", "/stream/"),
            route("/stream/h/m/c", "/stream")
        );
    }

    #[test]
    fn head_parsing() {
        let req = b"GET /push/h/m/c HTTP/1.1\r\nHost: x\r\nUser-Agent: Test/1.0\r\n\r\nrest";
        let head = parse_head(req).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/push/h/m/c");
        assert_eq!(head.user_agent, "Test/1.0");
        assert_eq!(&req[head.len..], b"rest");
        assert_eq!(parse_head(b"GET /x HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(
            parse_head(b"GET /x HTTP/1.1\nHost: a\n\n")
                .unwrap()
                .unwrap()
                .target,
            "/x"
        );
    }

    #[test]
    fn head_limits() {
        assert_eq!(
            parse_head(b"\x01\x02 garbage\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(parse_head(long.as_bytes()), Err(HeadError::UriTooLong));
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse_head(many.as_bytes()), Err(HeadError::HeadersTooLarge));
        let mut big = String::from("GET / HTTP/1.1\r\n");
        while big.len() <= MAX_HEAD {
            big.push_str("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(
            parse_head(&big.as_bytes()[..MAX_HEAD + 1]),
            Err(HeadError::HeadersTooLarge)
        );
    }
}
