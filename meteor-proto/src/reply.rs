//! The controller's answer to a published message: `OK\t<id>\r\n`, where
//! `<id>` is the decimal message id (the original daemon's exact bytes: a
//! tab, not a space, unlike `OK <n>` of COUNTSUBSCRIBERS). The daemon and
//! the bench's bare server write it with [`OkReply`]; fcgi-chat and the
//! bench's publisher read it with [`parse_ok_reply`].

use std::fmt;

/// What every `ADDMESSAGE` answer starts with.
pub const OK_PREFIX: &[u8] = b"OK\t";

/// The whole reply line for message `id`, line end included, written
/// through `Display` so it goes into a `String` or a socket without an
/// intermediate allocation: `write!(out, "{}", OkReply(id))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkReply(pub u64);

impl fmt::Display for OkReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OK\t{}\r\n", self.0)
    }
}

/// The message id of one reply line given without its line end (no `\n`,
/// no `\r`); `None` for anything but `OK\t<id>` (an `ERR …` line, garbage,
/// an id that is not a `u64`, or one written other than as the daemon
/// writes it: a sign or a leading zero, which `u64::from_str` would take).
pub fn parse_ok_reply(line: &[u8]) -> Option<u64> {
    let id = line.strip_prefix(OK_PREFIX)?;
    let canonical = match id {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(id).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_original_bytes() {
        assert_eq!(OkReply(42).to_string(), "OK\t42\r\n");
        assert_eq!(
            OkReply(u64::MAX).to_string(),
            "OK\t18446744073709551615\r\n"
        );
    }

    #[test]
    fn parses_what_it_formats_and_nothing_else() {
        for id in [0, 1, 42, u64::MAX] {
            let line = OkReply(id).to_string();
            assert_eq!(parse_ok_reply(line.trim_end().as_bytes()), Some(id));
        }
        assert_eq!(parse_ok_reply(b"OK 42"), None);
        assert_eq!(parse_ok_reply(b"OK\tx"), None);
        assert_eq!(parse_ok_reply(b"OK\t"), None);
        assert_eq!(parse_ok_reply(b"OK\t42\r"), None);
        assert_eq!(parse_ok_reply(b"ERR Invalid command syntax"), None);
        assert_eq!(parse_ok_reply(b"OK\t18446744073709551616"), None);
        assert_eq!(parse_ok_reply(b"OK\t+5"), None);
        assert_eq!(parse_ok_reply(b"OK\t007"), None);
    }
}
