//! The history file's bytes, apart from any I/O: encoding one record, and
//! reading a whole file into its records, telling a tail cut short by a
//! crash (repairable) from any other damage (refused).
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! header   "METEORDH" version:u32                      (12 bytes)
//! record   len:u32 !len:u32 crc:u32 payload[len]       (12 + len bytes)
//! payload  id:u64 timestamp:u64 channel_len:u32 channel text
//! ```
//!
//! `crc` is CRC-32 (IEEE) of the payload. The length is written twice
//! (the second time inverted) so a damaged length is recognised as damage
//! where it stands, instead of being read as a record running past the end
//! of the file, which would look like a torn tail and drop everything after
//! it.
//!
//! What counts as a torn tail, the only damage repaired: after the last
//! good record, (a) fewer bytes than a record header, (b) a valid header
//! whose payload runs past the end of the file, (c) only zero bytes (a file
//! extended but not written before a power cut), or (d) a last record that
//! ends exactly at the end of the file but fails its checksum (its pages
//! only partly reached the disk). Everything else is [`Corrupt`].

/// First bytes of every history file.
pub const MAGIC: &[u8; 8] = b"METEORDH";
/// Format version written after the magic; a reader refuses any other.
pub const VERSION: u32 = 1;
/// Bytes before the first record.
pub const HEADER_LEN: usize = 12;
/// Bytes of a record before its payload.
pub const RECORD_HEADER_LEN: usize = 12;
/// Bytes of a payload before the channel name.
const PAYLOAD_FIXED: usize = 20;
/// Largest payload a reader accepts: far above any controller line, low
/// enough that a damaged length cannot make the reader reserve gigabytes.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// The header every history file starts with.
pub fn header() -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..].copy_from_slice(&VERSION.to_le_bytes());
    out
}

/// One stored message as the file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub id: u64,
    /// Seconds since the epoch when it was published.
    pub timestamp: u64,
    pub channel: &'a [u8],
    pub text: &'a [u8],
}

/// Append `record`'s bytes to `out`. A channel name or text too long for
/// the format (over [`MAX_PAYLOAD`] together) is refused, so a reader never
/// refuses what a writer wrote.
pub fn encode(record: &Record<'_>, out: &mut Vec<u8>) -> Result<(), TooLong> {
    let len = PAYLOAD_FIXED + record.channel.len() + record.text.len();
    if len > MAX_PAYLOAD {
        return Err(TooLong(len));
    }
    let start = out.len();
    // Sizes below MAX_PAYLOAD fit 32 bits.
    let len32 = len as u32;
    out.extend_from_slice(&len32.to_le_bytes());
    out.extend_from_slice(&(!len32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let payload = out.len();
    out.extend_from_slice(&record.id.to_le_bytes());
    out.extend_from_slice(&record.timestamp.to_le_bytes());
    out.extend_from_slice(&(record.channel.len() as u32).to_le_bytes());
    out.extend_from_slice(record.channel);
    out.extend_from_slice(record.text);
    let crc = crc32fast::hash(&out[payload..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A message too long for a record (its payload would be this many bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message too long for the history file ({0} bytes)")]
pub struct TooLong(pub usize);

/// Damage that is not a torn tail: where it starts and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte offset {offset}: {reason}")]
pub struct Corrupt {
    pub offset: u64,
    pub reason: String,
}

/// A tail cut short, to be cut off: the good part ends at `offset`, and
/// `dropped` bytes follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    pub offset: u64,
    pub dropped: u64,
}

/// A file read through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub records: Vec<Record<'a>>,
    /// Bytes of header and good records: the length the file should have.
    pub good_len: u64,
    pub torn: Option<Torn>,
}

/// Read a whole history file. An empty input is an empty file (a file
/// created by a crash before its header was written).
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, Corrupt> {
    if bytes.is_empty() {
        return Ok(Decoded {
            records: Vec::new(),
            good_len: 0,
            torn: None,
        });
    }
    check_header(bytes)?;
    let mut records = Vec::new();
    let mut at = HEADER_LEN;
    loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            return Ok(Decoded {
                records,
                good_len: at as u64,
                torn: None,
            });
        }
        let torn = || Torn {
            offset: at as u64,
            dropped: rest.len() as u64,
        };
        if rest.iter().all(|&b| b == 0) || rest.len() < RECORD_HEADER_LEN {
            return Ok(Decoded {
                records,
                good_len: at as u64,
                torn: Some(torn()),
            });
        }
        let len = u32_at(rest, 0);
        if u32_at(rest, 4) != !len {
            return Err(corrupt(at, "damaged record length"));
        }
        let len = len as usize;
        if !(PAYLOAD_FIXED..=MAX_PAYLOAD).contains(&len) {
            return Err(corrupt(at, format!("impossible record length {len}")));
        }
        let Some(payload) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
            return Ok(Decoded {
                records,
                good_len: at as u64,
                torn: Some(torn()),
            });
        };
        if crc32fast::hash(payload) != u32_at(rest, 8) {
            if RECORD_HEADER_LEN + len == rest.len() {
                return Ok(Decoded {
                    records,
                    good_len: at as u64,
                    torn: Some(torn()),
                });
            }
            return Err(corrupt(at, "record checksum mismatch"));
        }
        records.push(parse_payload(payload).map_err(|reason| corrupt(at, reason))?);
        at += RECORD_HEADER_LEN + len;
    }
}

fn check_header(bytes: &[u8]) -> Result<(), Corrupt> {
    let magic_seen = bytes.len().min(MAGIC.len());
    if bytes[..magic_seen] != MAGIC[..magic_seen] {
        return Err(corrupt(
            0,
            "not a meteord history file (no METEORDH header)",
        ));
    }
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(0, "history file header cut short"));
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(corrupt(
            8,
            format!("history file format version {version}; this meteord reads {VERSION}"),
        ));
    }
    Ok(())
}

fn parse_payload(payload: &[u8]) -> Result<Record<'_>, String> {
    let id = u64_at(payload, 0);
    let timestamp = u64_at(payload, 8);
    let channel_len = u32_at(payload, 16) as usize;
    let rest = &payload[PAYLOAD_FIXED..];
    if channel_len == 0 || channel_len > rest.len() {
        return Err(format!("impossible channel name length {channel_len}"));
    }
    if id == 0 {
        return Err("message id 0".to_owned());
    }
    let (channel, text) = rest.split_at(channel_len);
    Ok(Record {
        id,
        timestamp,
        channel,
        text,
    })
}

fn corrupt(offset: usize, reason: impl Into<String>) -> Corrupt {
    Corrupt {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Callers checked that 4 bytes are there.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Callers checked that 8 bytes are there.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: &[Record<'_>]) -> Vec<u8> {
        let mut out = header().to_vec();
        for r in records {
            encode(r, &mut out).unwrap();
        }
        out
    }

    fn rec<'a>(id: u64, channel: &'a [u8], text: &'a [u8]) -> Record<'a> {
        Record {
            id,
            timestamp: 1_700_000_000 + id,
            channel,
            text,
        }
    }

    #[test]
    fn records_read_back_exactly() {
        let records = [
            rec(1, b"c", b"hello"),
            rec(7, b"d\xff", b""),
            rec(9, b"c", b"\0\r\n"),
        ];
        let bytes = file(&records);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.records, records);
        assert_eq!(decoded.good_len, bytes.len() as u64);
        assert_eq!(decoded.torn, None);
        assert_eq!(&bytes[..12], b"METEORDH\x01\0\0\0");
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let bytes = file(&[rec(1, b"c", b"one"), rec(2, b"c", b"two")]);
        let first_end = HEADER_LEN + RECORD_HEADER_LEN + PAYLOAD_FIXED + 1 + 3;
        for cut in first_end + 1..bytes.len() {
            let decoded = decode(&bytes[..cut]).unwrap();
            assert_eq!(decoded.records, [rec(1, b"c", b"one")], "cut at {cut}");
            assert_eq!(
                decoded.torn,
                Some(Torn {
                    offset: first_end as u64,
                    dropped: (cut - first_end) as u64
                })
            );
        }
    }

    #[test]
    fn zeros_and_a_half_written_last_record_are_torn() {
        let mut bytes = file(&[rec(1, b"c", b"one")]);
        let good = bytes.len();
        bytes.extend_from_slice(&[0; 100]);
        assert_eq!(decode(&bytes).unwrap().torn.unwrap().offset, good as u64);
        let mut bytes = file(&[rec(1, b"c", b"one"), rec(2, b"c", b"two")]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.records.len(), 1);
        assert!(decoded.torn.is_some());
    }

    #[test]
    fn damage_in_the_middle_is_refused_with_its_offset() {
        let mut bytes = file(&[rec(1, b"c", b"one"), rec(2, b"c", b"two")]);
        let text_of_first = HEADER_LEN + RECORD_HEADER_LEN + PAYLOAD_FIXED + 1;
        bytes[text_of_first] ^= 1;
        let err = decode(&bytes).unwrap_err();
        assert_eq!(err.offset, HEADER_LEN as u64);
        assert_eq!(
            err.to_string(),
            "at byte offset 12: record checksum mismatch"
        );
        // A damaged length is damage, not a record running off the end.
        let mut bytes = file(&[rec(1, b"c", b"one"), rec(2, b"c", b"two")]);
        bytes[HEADER_LEN] = 0xff;
        assert_eq!(
            decode(&bytes).unwrap_err().to_string(),
            "at byte offset 12: damaged record length"
        );
    }

    #[test]
    fn foreign_files_and_other_versions_are_refused() {
        assert_eq!(decode(b"").unwrap().records, []);
        let err = decode(b"ids 12345\n").unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.reason.contains("not a meteord history file"), "{err}");
        assert!(decode(b"METEOR").unwrap_err().reason.contains("cut short"));
        let mut bytes = file(&[]);
        bytes[8] = 2;
        assert_eq!(
            decode(&bytes).unwrap_err().to_string(),
            "at byte offset 8: history file format version 2; this meteord reads 1"
        );
    }

    #[test]
    fn impossible_payloads_are_refused() {
        // A well-framed payload with a channel length beyond the payload.
        let mut bytes = file(&[rec(1, b"c", b"")]);
        let p = HEADER_LEN + RECORD_HEADER_LEN;
        bytes[p + 16] = 9;
        let crc = crc32fast::hash(&bytes[p..]);
        bytes[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&file(&[rec(2, b"c", b"")])[HEADER_LEN..]);
        assert!(
            decode(&bytes)
                .unwrap_err()
                .reason
                .contains("impossible channel name length 9")
        );
    }
}
