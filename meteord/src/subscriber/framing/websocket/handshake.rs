//! The WebSocket opening handshake (RFC 6455 4.2), pure: whether a request
//! head asks for an upgrade we can grant, and the answer — `101` with
//! `Sec-WebSocket-Accept`, or a refusal with a one-line reason.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The GUID RFC 6455 appends to the client's key.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What the request head asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// A valid upgrade: the `Sec-WebSocket-Accept` value to answer.
    Accept(String),
    /// Not an upgrade we can grant: the whole HTTP response to send.
    Refuse(Vec<u8>),
}

/// Check the request head's lines (as [`crate::subscriber::request::Head`]
/// keeps them) for a WebSocket upgrade.
pub fn check(head: &[u8]) -> Handshake {
    let mut upgrade = false;
    let mut connection = false;
    let mut version = None;
    let mut key = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade |= has_token(value, b"websocket");
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection |= has_token(value, b"upgrade");
        } else if name.eq_ignore_ascii_case(b"sec-websocket-version") {
            version = Some(value);
        } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
            key = Some(value);
        }
    }
    if !upgrade || !connection {
        return Handshake::Refuse(refusal(
            "426 Upgrade Required",
            "Upgrade: websocket\r\nConnection: Upgrade\r\n",
            "this is a WebSocket endpoint: send Upgrade: websocket and Connection: Upgrade",
        ));
    }
    if version != Some(b"13".as_slice()) {
        return Handshake::Refuse(refusal(
            "426 Upgrade Required",
            "Sec-WebSocket-Version: 13\r\n",
            "only Sec-WebSocket-Version 13 is spoken",
        ));
    }
    match key {
        Some(key) if valid_key(key) => Handshake::Accept(accept_key(key)),
        _ => Handshake::Refuse(refusal(
            "400 Bad Request",
            "",
            "Sec-WebSocket-Key must be 16 bytes in base64",
        )),
    }
}

/// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID.as_bytes());
    STANDARD.encode(sha.digest().bytes())
}

/// Append the `101` head for an accepted upgrade.
pub fn push_switching(out: &mut Vec<u8>, accept: &str) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// A key is 16 bytes, base64-encoded (RFC 6455 4.1).
fn valid_key(key: &[u8]) -> bool {
    STANDARD.decode(key).is_ok_and(|bytes| bytes.len() == 16)
}

/// `value` is a comma-separated list holding `token` (any case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn refusal(status: &str, headers: &str, reason: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{reason}\n",
        reason.len() + 1
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &str) -> Vec<u8> {
        format!("GET /push/h/websocket/c HTTP/1.1\n{headers}").into_bytes()
    }

    const GOOD: &str = "Host: x\nUpgrade: websocket\nConnection: keep-alive, Upgrade\n\
                        Sec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n";

    #[test]
    fn the_rfcs_example_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            check(&head(GOOD)),
            Handshake::Accept("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into())
        );
        let lower = GOOD
            .to_ascii_lowercase()
            .replace("dghlihnhbxbszsbub25jzq==", "dGhlIHNhbXBsZSBub25jZQ==");
        assert!(
            matches!(check(&head(&lower)), Handshake::Accept(_)),
            "names and tokens in any case"
        );
    }

    fn refused(headers: &str) -> String {
        match check(&head(headers)) {
            Handshake::Refuse(bytes) => String::from_utf8(bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_is_refused_and_how() {
        let no_upgrade = refused("Host: x\n");
        assert!(
            no_upgrade.starts_with("HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n"),
            "{no_upgrade}"
        );
        assert!(no_upgrade.ends_with("\r\n\r\nthis is a WebSocket endpoint: send Upgrade: websocket and Connection: Upgrade\n"));
        let no_connection = GOOD.replace("keep-alive, Upgrade", "keep-alive");
        assert!(refused(&no_connection).starts_with("HTTP/1.1 426 "));
        let version = refused(&GOOD.replace("Version: 13", "Version: 8"));
        assert!(
            version.contains("\r\nSec-WebSocket-Version: 13\r\n"),
            "{version}"
        );
        for key in [
            "",
            "abc",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZSE=",
        ] {
            let bad = refused(&GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", key));
            assert_eq!(
                bad,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 45\r\nConnection: close\r\n\r\n\
                 Sec-WebSocket-Key must be 16 bytes in base64\n",
                "{key:?}"
            );
        }
    }
}
