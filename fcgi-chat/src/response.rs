//! The answer every front end sends, before it is rendered as HTTP
//! (dev server) or a CGI `Status:` block (FastCGI): status, the JSON body
//! `{"ok":true,"id":N}` / `{"ok":false,"error":…}`, the fixed headers, and
//! the reason phrases of the statuses this crate produces.

/// Content type of every answer.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// What to send back; the front end renders it as HTTP or a FastCGI
/// `Status:` header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Whether to add `Allow: POST` (405 answers).
    pub allow_post: bool,
    /// JSON body, one line.
    pub body: String,
}

impl Response {
    /// The answer to a published message: `{"ok":true,"id":N}`.
    pub fn ok(id: u64) -> Self {
        Self {
            status: 200,
            allow_post: false,
            // Written by hand to keep the documented key order.
            body: format!(r#"{{"ok":true,"id":{id}}}"#),
        }
    }

    /// An error answer `{"ok":false,"error":reason}`.
    pub fn error(status: u16, reason: &str) -> Self {
        Self {
            status,
            allow_post: status == 405,
            body: format!(
                r#"{{"ok":false,"error":{}}}"#,
                serde_json::Value::String(reason.to_string())
            ),
        }
    }

    /// A JSON `body` (already one line) with `status`.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            allow_post: false,
            body,
        }
    }

    /// Header lines (without the status line), each ending in CRLF.
    pub fn header_block(&self) -> String {
        let mut h = format!(
            "Content-Type: {CONTENT_TYPE}\r\nCache-Control: no-store\r\nContent-Length: {}\r\n",
            self.body.len()
        );
        if self.allow_post {
            h.push_str("Allow: POST\r\n");
        }
        h
    }
}

/// Standard reason phrase for the statuses this crate produces.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_and_error_bodies() {
        let ok = Response::ok(7);
        assert_eq!(ok.body, r#"{"ok":true,"id":7}"#);
        let e = Response::error(405, "method GET not allowed, use POST");
        assert_eq!(
            e.body,
            r#"{"ok":false,"error":"method GET not allowed, use POST"}"#
        );
        assert!(e.header_block().contains("Allow: POST\r\n"));
        assert!(!ok.header_block().contains("Allow"));
        assert!(ok.header_block().contains("Cache-Control: no-store\r\n"));
        assert!(ok.header_block().contains("Content-Length: 18\r\n"));
    }
}
