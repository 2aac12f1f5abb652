//! The HTTP answers meteord writes itself, outside the templates: static
//! documents (200, 404, 500) and the 503 for a connection past the limit.
//! Subscriber streams, their 404s and `/disconnect` answers are made of the
//! compiled templates instead, as in the original, and never come here —
//! except for the framings that are not Meteor's: an EventSource stream's
//! head is [`stream_head`] (a body that ends at close, so no length).
//!
//! One head for all of them, the header set of the original's static-file
//! answers in its order: `Server`, `Content-Type`, the three no-cache
//! headers, and `Content-length` with a lower-case `l` (the original's
//! spelling, which clients accept because header names are
//! case-insensitive).

use bytes::Bytes;

/// `200 OK`: a document.
pub const OK: &str = "200 OK";
/// `404 Not Found`: a document that is missing or refused.
pub const NOT_FOUND: &str = "404 Not Found";
/// `500 Internal Server Error`: a document larger than the body bound.
pub const INTERNAL_SERVER_ERROR: &str = "500 Internal Server Error";
/// `503 Service Unavailable`: a connection past the connection limit.
pub const SERVICE_UNAVAILABLE: &str = "503 Service Unavailable";

/// The Content-Type of the answers without a document: the original's
/// static 404 says `text/html`.
pub const EMPTY_BODY_TYPE: &str = "text/html";

/// A complete answer: `status` is the status line's text after the version
/// (`"404 Not Found"`); `charset` appends `; charset=utf-8` to
/// `content_type` (text documents); the body follows the head unchanged.
pub fn response(status: &str, content_type: &str, charset: bool, body: &[u8]) -> Bytes {
    let charset = if charset { "; charset=utf-8" } else { "" };
    let head = format!(
        "HTTP/1.1 {status}\r\n\
         Server: {server}\r\n\
         Content-Type: {content_type}{charset}\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache, no-store, must-revalidate\r\n\
         Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
         Content-length: {len}\r\n\
         \r\n",
        server = crate::SERVER_NAME,
        len = body.len(),
    );
    let mut bytes = Vec::with_capacity(head.len() + body.len());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// `status` with the same header set and an empty body: the original's
/// static 404 (`Content-length: 0`), and the shape of every other fixed
/// answer ours adds (500, 503).
pub fn empty(status: &str) -> Bytes {
    response(status, EMPTY_BODY_TYPE, true, b"")
}

/// The head of a response whose body ends when the connection closes (an
/// EventSource stream, or its error answer): the status line, `headers`
/// in order, and `Connection: close`, which says how the body ends.
pub fn stream_head(out: &mut Vec<u8>, status: &str, headers: &[(&str, &str)]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_answers_are_the_originals_404_head() {
        assert_eq!(
            &empty(NOT_FOUND)[..],
            b"HTTP/1.1 404 Not Found\r\n\
              Server: meteord\r\n\
              Content-Type: text/html; charset=utf-8\r\n\
              Pragma: no-cache\r\n\
              Cache-Control: no-cache, no-store, must-revalidate\r\n\
              Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
              Content-length: 0\r\n\
              \r\n"
        );
    }

    #[test]
    fn binary_bodies_get_no_charset_and_their_length() {
        let bytes = response(OK, "image/png", false, b"\x89PNG");
        assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\nServer: meteord\r\n"));
        assert!(
            bytes.ends_with(b"Content-Type: image/png\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\nContent-length: 4\r\n\r\n\x89PNG")
        );
    }

    #[test]
    fn a_stream_head_lists_its_headers_and_ends_at_close() {
        let mut out = Vec::new();
        stream_head(&mut out, OK, &[("A", "1"), ("B-C", "x y")]);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB-C: x y\r\nConnection: close\r\n\r\n"
        );
    }
}
