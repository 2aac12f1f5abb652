//! The benchmark message body and the scanner that finds deliveries in a
//! subscriber's byte stream.
//!
//! A payload is `MB<seq>:<micros>:` padded with `x` to the requested size:
//! plain ASCII without `"`, `\` or `<`, so it sits unchanged inside every
//! Meteor template (`p(id,"chan","text")`, `Meteor.process(...)`) and inside
//! Nchan's EventSource or chunked framing. The scanner therefore does not
//! parse the transport at all: it looks for the `MB` marker and reads the
//! sequence number and send time after it, and the Meteor message id (or the
//! EventSource `id:`) just before it. Everything here is pure, so it is unit
//! tested without sockets.

use memchr::memmem;

/// The marker that starts every payload. Neither Meteor's headers, pings
/// and padding nor Nchan's framing contain it.
const MARKER: &[u8] = b"MB";

/// How many bytes before a marker may belong to the same delivery: the
/// Meteor prefix `<id>,"<channel>","` or the EventSource `id: ...\ndata: `.
/// Channel names made by the generator are short, so 256 bytes is ample;
/// the scanner keeps this much of an unfinished buffer for the next read.
pub const PREFIX_MAX: usize = 256;

/// Longest decimal number accepted in a payload or id (u64 has 20 digits).
const MAX_DIGITS: usize = 20;

/// Smallest payload: `MB` + up to 20 digits + `:` + 16 digits + `:`.
pub const MIN_PAYLOAD: usize = 40;

/// One message found in a subscriber's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Per-channel sequence number assigned by the publisher.
    pub seq: u64,
    /// Publisher's send time, microseconds since the Unix epoch.
    pub sent_us: u64,
    /// Meteor message id (`p(<id>,...`, or meteord's EventSource event
    /// id), when the stream carries one.
    pub meteor_id: Option<u64>,
    /// Byte range of the EventSource `id:` value inside the scanned buffer,
    /// when the stream carries one (Nchan); used to resume with
    /// `Last-Event-ID`.
    pub event_id: Option<(usize, usize)>,
}

/// Builds a payload of exactly `len` bytes (at least [`MIN_PAYLOAD`] are
/// used whatever `len` says, so the header always fits).
pub fn encode(seq: u64, sent_us: u64, len: usize, out: &mut Vec<u8>) {
    use std::io::Write;
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = write!(out, "MB{seq}:{sent_us}:");
    let written = out.len() - start;
    let target = len.max(MIN_PAYLOAD);
    if written < target {
        out.resize(start + target, b'x');
    }
}

/// Outcome of trying to read a payload header at a marker.
enum Header {
    Complete {
        seq: u64,
        sent_us: u64,
    },
    /// The buffer ends inside the header: wait for more bytes.
    Incomplete,
    /// Not a payload after all (e.g. `MB` inside other text).
    Invalid,
}

/// Reads decimal digits starting at `at`, then requires `term`.
/// Returns the value and the index after `term`.
fn digits_then(buf: &[u8], at: usize, term: u8) -> Result<(u64, usize), bool> {
    let mut value: u64 = 0;
    let mut i = at;
    while i < buf.len() && buf[i].is_ascii_digit() {
        if i - at >= MAX_DIGITS {
            return Err(false);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(buf[i] - b'0')))
            .ok_or(false)?;
        i += 1;
    }
    if i == buf.len() {
        return Err(true); // incomplete
    }
    if i == at || buf[i] != term {
        return Err(false);
    }
    Ok((value, i + 1))
}

fn header_at(buf: &[u8], marker: usize) -> (Header, usize) {
    let at = marker + MARKER.len();
    let (seq, after_seq) = match digits_then(buf, at, b':') {
        Ok(v) => v,
        Err(true) => return (Header::Incomplete, at),
        Err(false) => return (Header::Invalid, at),
    };
    match digits_then(buf, after_seq, b':') {
        Ok((sent_us, end)) => (Header::Complete { seq, sent_us }, end),
        Err(true) => (Header::Incomplete, at),
        Err(false) => (Header::Invalid, at),
    }
}

/// Reads the Meteor id in front of a payload: `<digits>,"<chan>","MB`.
fn meteor_id_before(buf: &[u8], marker: usize) -> Option<u64> {
    let before = buf.get(..marker)?;
    let rest = before.strip_suffix(b"\",\"")?;
    let quote = memchr::memrchr(b'"', rest)?;
    let rest = rest[..quote].strip_suffix(b",")?;
    let digits_start = rest
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let digits = &rest[digits_start..];
    if digits.is_empty() || digits.len() > MAX_DIGITS {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Reads the EventSource id in front of a payload: `id: <x>\ndata: MB`.
fn event_id_before(buf: &[u8], marker: usize) -> Option<(usize, usize)> {
    let before = buf.get(..marker)?;
    let rest = before.strip_suffix(b"data: ")?;
    let rest = rest.strip_suffix(b"\n")?;
    let line_start = memchr::memrchr(b'\n', rest).map_or(0, |p| p + 1);
    let line = &rest[line_start..];
    let value = line.strip_prefix(b"id: ")?;
    let start = line_start + 4;
    Some((start, start + value.len()))
}

/// Finds every complete delivery in `buf`, calling `found` for each, and
/// returns how many leading bytes the caller may discard. The bytes kept
/// (at most [`PREFIX_MAX`] plus an unfinished header) are needed to parse a
/// delivery that the next read completes.
pub fn scan(buf: &[u8], mut found: impl FnMut(&Delivery)) -> usize {
    let finder = memmem::Finder::new(MARKER);
    let mut pos = 0;
    let mut last_end = 0;
    while let Some(rel) = finder.find(&buf[pos..]) {
        let marker = pos + rel;
        match header_at(buf, marker) {
            (Header::Complete { seq, sent_us }, end) => {
                let delivery = Delivery {
                    seq,
                    sent_us,
                    meteor_id: meteor_id_before(buf, marker)
                        .or_else(|| crate::eventsource::id_before(buf, marker)),
                    event_id: event_id_before(buf, marker),
                };
                found(&delivery);
                last_end = end;
                pos = end;
            }
            (Header::Invalid, next) => pos = next,
            (Header::Incomplete, _) => {
                // Keep the marker and the prefix in front of it.
                return marker.saturating_sub(PREFIX_MAX).max(last_end);
            }
        }
    }
    // Keep the tail: it may hold the prefix of a delivery, or a lone `M`.
    buf.len().saturating_sub(PREFIX_MAX).max(last_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> (Vec<Delivery>, usize) {
        let mut v = Vec::new();
        let keep = scan(buf, |d| v.push(d.clone()));
        (v, keep)
    }

    #[test]
    fn encode_has_exact_length_and_safe_bytes() {
        let mut out = Vec::new();
        encode(7, 1_700_000_000_000_000, 400, &mut out);
        assert_eq!(out.len(), 400);
        assert!(out.starts_with(b"MB7:1700000000000000:x"));
        assert!(!out.iter().any(|b| matches!(b, b'"' | b'\\' | b'<')));
        let mut short = Vec::new();
        encode(1, 2, 3, &mut short);
        assert_eq!(short.len(), MIN_PAYLOAD);
    }

    #[test]
    fn finds_iframe_deliveries_with_ids() {
        let mut buf = b"HTTP/1.1 200 OK\r\n\r\n....<script>p(-1,\"\");</script>\r\n".to_vec();
        for (id, seq) in [(41u64, 0u64), (42, 1)] {
            buf.extend_from_slice(format!("<script>p({id},\"ch_1\",\"").as_bytes());
            encode(seq, 1000 + seq, 60, &mut buf);
            buf.extend_from_slice(b"\");</script>\r\n");
        }
        let (found, keep) = all(&buf);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].seq, 0);
        assert_eq!(found[0].sent_us, 1000);
        assert_eq!(found[0].meteor_id, Some(41));
        assert_eq!(found[1].meteor_id, Some(42));
        assert!(keep <= buf.len());
    }

    #[test]
    fn finds_longpoll_deliveries() {
        let mut buf = b"Meteor.process(9,\"c\",\"".to_vec();
        encode(3, 5, 50, &mut buf);
        buf.extend_from_slice(b"\");\r\nMeteor.clearpoll();\r\n");
        let (found, _) = all(&buf);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].meteor_id, Some(9));
        assert_eq!(found[0].seq, 3);
    }

    #[test]
    fn finds_eventsource_id() {
        let mut buf = b"HTTP/1.1 200 OK\r\n\r\n: hi\n\nid: 1700:0\ndata: ".to_vec();
        encode(0, 1, 50, &mut buf);
        buf.extend_from_slice(b"\n\n");
        let (found, _) = all(&buf);
        assert_eq!(found.len(), 1);
        let (s, e) = found[0].event_id.unwrap();
        assert_eq!(&buf[s..e], b"1700:0");
        assert_eq!(found[0].meteor_id, None);
    }

    #[test]
    fn split_reads_lose_nothing_and_count_nothing_twice() {
        let mut stream = Vec::new();
        for i in 0..50u64 {
            stream.extend_from_slice(format!("<script>p({},\"chan\",\"", 100 + i).as_bytes());
            encode(i, i * 10, 120, &mut stream);
            stream.extend_from_slice(b"\");</script>\r\n");
        }
        for chunk in [1usize, 2, 3, 7, 64, 333] {
            let mut buf = Vec::new();
            let mut seen = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                let keep = scan(&buf, |d| seen.push((d.seq, d.meteor_id)));
                buf.drain(..keep);
            }
            let want: Vec<_> = (0..50u64).map(|i| (i, Some(100 + i))).collect();
            assert_eq!(seen, want, "chunk size {chunk}");
        }
    }

    #[test]
    fn rejects_marker_without_digits_and_overflow() {
        let (found, _) = all(b"MBx:1: MB:1: MB99999999999999999999999:1: MB1:2:");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].seq, 1);
    }

    #[test]
    fn incomplete_header_is_kept() {
        let buf = b"p(5,\"c\",\"MB12:345";
        let (found, keep) = all(buf);
        assert!(found.is_empty());
        assert_eq!(keep, 0);
    }
}
