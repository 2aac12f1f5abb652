//! The WebSocket side of a subscriber (`--mode websocket` for meteord,
//! `--mode nchan-websocket` for Nchan), pure: the upgrade request's
//! headers, the client frames it sends (a masked subscribe for a resume, a
//! pong per ping), and the scanner that reads the server's frames. meteord
//! frames carry the JSON event object (`{"type":"message","id":N,...,
//! "text":"MB..."}`), Nchan's the message text alone; either way the
//! payload's `MB` body is found by [`payload::scan`], and meteord's id is
//! read from the object's start so a resume can ask `since` it.

use crate::payload::{self, Delivery};

/// The key every bench client sends (any 16 bytes in base64 will do; the
/// bench does not check the server's accept value beyond the 101).
pub const KEY: &str = "bWV0ZW9yLWJlbmNoLWtleQ==";

/// Headers that make a GET an upgrade.
pub fn upgrade_headers() -> String {
    format!(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: {KEY}\r\n"
    )
}

const OP_TEXT: u8 = 0x1;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
/// The bench's mask: clients must mask; the value does not matter.
const MASK: [u8; 4] = [0x6d, 0x62, 0x21, 0x7e];

/// A masked client frame (payload under 64 KiB).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len().min(0xffff) as u16).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// The subscribe a resume sends: everything after `last_id`, or with no
/// id seen yet the whole history (`backtrack` 0).
pub fn subscribe_frame(channel: &str, last_id: Option<u64>) -> Vec<u8> {
    let json = match last_id {
        Some(id) => format!(r#"{{"type":"subscribe","channel":"{channel}","since":{id}}}"#),
        None => format!(r#"{{"type":"subscribe","channel":"{channel}","backtrack":0}}"#),
    };
    client_frame(OP_TEXT, json.as_bytes())
}

/// `n` pongs, one per ping received.
pub fn pongs(n: usize) -> Vec<u8> {
    client_frame(OP_PONG, b"").repeat(n)
}

/// The meteord event's id: `{"type":"message","id":<digits>,`.
fn event_id(json: &[u8]) -> Option<u64> {
    let rest = json.strip_prefix(br#"{"type":"message","id":"#)?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Reads every complete frame at the start of `buf`, calling `found` for
/// each delivery; returns how many bytes were consumed and how many pings
/// came (each owes a pong).
pub fn scan(buf: &[u8], mut found: impl FnMut(&Delivery)) -> (usize, usize) {
    let mut at = 0;
    let mut pings = 0;
    while let Some((opcode, payload_at, len)) = frame_at(&buf[at..]) {
        let payload = &buf[at + payload_at..at + payload_at + len];
        match opcode {
            OP_TEXT => {
                let id = event_id(payload);
                payload::scan(payload, |d| {
                    found(&Delivery {
                        meteor_id: id,
                        event_id: None,
                        ..d.clone()
                    })
                });
            }
            OP_PING => pings += 1,
            // Gaps are counted by the tally from the sequence numbers;
            // a close is followed by the end of the connection.
            _ => {}
        }
        at += payload_at + len;
    }
    (at, pings)
}

/// A complete server frame at the start of `buf`: opcode, where its
/// payload starts, its length.
fn frame_at(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, at): (usize, usize) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(buf.get(2..10)?);
            (usize::try_from(u64::from_be_bytes(n)).ok()?, 10)
        }
        n => (n as usize, 2),
    };
    (buf.len() >= at.checked_add(len)?).then_some((b0 & 0x0f, at, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x81];
        if payload.len() < 126 {
            out.push(payload.len() as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn meteord_events_nchan_texts_and_pings() {
        let mut body = Vec::new();
        payload::encode(3, 1000, 200, &mut body);
        let mut json = br#"{"type":"message","id":77,"channel":"c","text":""#.to_vec();
        json.extend_from_slice(&body);
        json.extend_from_slice(b"\"}");
        let mut buf = text(&json);
        buf.extend_from_slice(b"\x89\x00");
        buf.extend(text(
            br#"{"type":"gap","channel":"c","requested":1,"oldest":5}"#,
        ));
        buf.extend(text(&body));
        let whole = buf.len();
        buf.extend_from_slice(&text(&json)[..10]);
        let mut seen = Vec::new();
        let (used, pings) = scan(&buf, |d| seen.push(d.clone()));
        assert_eq!((used, pings), (whole, 1), "the unfinished frame stays");
        assert_eq!(seen.len(), 2);
        assert_eq!(
            (seen[0].seq, seen[0].sent_us, seen[0].meteor_id),
            (3, 1000, Some(77))
        );
        assert_eq!(
            (seen[1].seq, seen[1].meteor_id),
            (3, None),
            "Nchan: text only"
        );
    }

    #[test]
    fn client_frames_are_masked() {
        let frame = subscribe_frame("c", Some(9));
        assert_eq!(frame[0], 0x81);
        assert_eq!(frame[1] & 0x80, 0x80);
        let len = (frame[1] & 0x7f) as usize;
        let unmasked: Vec<u8> = frame[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        assert_eq!(len, unmasked.len());
        assert_eq!(unmasked, br#"{"type":"subscribe","channel":"c","since":9}"#);
        assert_eq!(pongs(2), [0x8a, 0x80, 0x6d, 0x62, 0x21, 0x7e].repeat(2));
    }
}
