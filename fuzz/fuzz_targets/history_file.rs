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
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteord::persist::format;

fuzz_target!(|bytes: &[u8]| {
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
            assert_eq!(again, &bytes[..good]);
            let repaired = format::decode(&bytes[..good]).expect("a repaired file reads");
            assert_eq!(repaired.records, decoded.records);
            assert_eq!(repaired.torn, None);
        }
        Err(corrupt) => {
            assert!((corrupt.offset as usize) < bytes.len().max(1));
            let _ = corrupt.to_string();
        }
    }
});
