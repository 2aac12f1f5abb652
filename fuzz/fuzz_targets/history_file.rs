//! The history-file reader (meteord/src/persist/format.rs, `format::decode`)
//! on any bytes. Properties besides no panic:
//! - an accepted file's good part is exactly the header followed by its
//!   records encoded again with `format::encode` (the reader accepts only
//!   what the writer writes, and drops nothing silently inside it);
//! - a torn tail starts where the good part ends and runs to the end of the
//!   input; without one the good part is the whole input;
//! - cutting the input at its good length reads back the same records with
//!   no tail (a repaired file is clean);
//! - a refusal names an offset inside the input.
//!
//! A fuzzer cannot guess CRC-32s, so an input whose first byte is odd is
//! first made well framed (the header written, each record's inverted
//! length and checksum set to match what follows), which lets the
//! mutations reach the payload reader; an even first byte feeds the rest
//! as it is, for the framing checks themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteord::persist::format;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        frame(&mut bytes);
    }
    check(&bytes);
});

/// Give `bytes` a valid header and every record that fits a matching
/// inverted length and checksum.
fn frame(bytes: &mut Vec<u8>) {
    if bytes.len() < format::HEADER_LEN {
        bytes.resize(format::HEADER_LEN, 0);
    }
    bytes[..format::HEADER_LEN].copy_from_slice(&format::header());
    let mut at = format::HEADER_LEN;
    while at + format::RECORD_HEADER_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        bytes[at + 4..at + 8].copy_from_slice(&(!len).to_le_bytes());
        let start = at + format::RECORD_HEADER_LEN;
        let Some(end) = start.checked_add(len as usize).filter(|&e| e <= bytes.len()) else {
            break;
        };
        let crc = crc32fast::hash(&bytes[start..end]);
        bytes[at + 8..at + 12].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn check(bytes: &[u8]) {
    match format::decode(bytes) {
        Ok(decoded) => {
            let good = decoded.good_len as usize;
            assert!(good <= bytes.len());
            match decoded.torn {
                Some(torn) => {
                    assert_eq!(torn.offset, decoded.good_len);
                    assert_eq!(good + torn.dropped as usize, bytes.len());
                }
                None => assert_eq!(good, bytes.len()),
            }
            if good == 0 {
                assert!(bytes.is_empty() && decoded.records.is_empty());
                return;
            }
            let mut again = format::header().to_vec();
            for record in &decoded.records {
                format::encode(record, &mut again).expect("a read record fits");
            }
            assert_eq!(again, bytes[..good]);
            let repaired = format::decode(&bytes[..good]).expect("a repaired file reads");
            assert_eq!(repaired.records, decoded.records);
            assert_eq!(repaired.torn, None);
        }
        Err(corrupt) => {
            assert!((corrupt.offset as usize) < bytes.len().max(1));
            let _ = corrupt.to_string();
        }
    }
}
