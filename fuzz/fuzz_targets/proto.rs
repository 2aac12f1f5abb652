//! meteor-proto's rules (meteor-proto/src/): the channel-name and
//! request-path byte rules and the `OK\t<id>` reply reader.
//!
//! Holds for every input: no panic, and
//! - `valid_channel_name` is exactly "non-empty and every byte allowed by
//!   `is_channel_byte`", `valid_path_bytes` "every byte allowed by
//!   `is_path_byte`" (the empty path is the caller's rule);
//! - a line `parse_ok_reply` accepts starts with `OK\t` followed by
//!   decimal digits only (an optional `+`, which Rust's integer parser
//!   takes, included), and every id the daemon writes with `OkReply` reads
//!   back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteor_proto::channel::{is_channel_byte, valid_channel_name};
use meteor_proto::path::{is_path_byte, valid_path_bytes};
use meteor_proto::reply::{OK_PREFIX, OkReply, parse_ok_reply};

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        valid_channel_name(data),
        !data.is_empty() && data.iter().all(|&b| is_channel_byte(b))
    );
    assert_eq!(
        valid_path_bytes(data),
        data.iter().all(|&b| is_path_byte(b))
    );

    if let Some(id) = parse_ok_reply(data) {
        let digits = data
            .strip_prefix(OK_PREFIX)
            .expect("accepted without OK\\t");
        let digits = digits.strip_prefix(b"+").unwrap_or(digits);
        assert!(!digits.is_empty() && digits.iter().all(u8::is_ascii_digit));
        assert_eq!(
            std::str::from_utf8(digits)
                .ok()
                .and_then(|s| s.parse::<u64>().ok()),
            Some(id)
        );
    }
    if data.len() >= 8 {
        let id = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let line = OkReply(id).to_string();
        let line = line.strip_suffix("\r\n").expect("the reply ends in CR LF");
        assert_eq!(parse_ok_reply(line.as_bytes()), Some(id));
    }
});
