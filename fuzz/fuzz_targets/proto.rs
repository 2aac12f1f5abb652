//! meteor-proto's rules (meteor-proto/src/): the channel-name and
//! request-path byte rules and the `OK\t<id>` reply reader.
//!
//! Holds for every input: no panic, and
//! - `valid_channel_name` is exactly "non-empty and every byte allowed by
//!   `is_channel_byte`", `valid_path_bytes` "every byte allowed by
//!   `is_path_byte`" (the empty path is the caller's rule);
//! - a line `parse_ok_reply` accepts is exactly what `OkReply` writes for
//!   that id (no sign, no leading zero), and every id the daemon writes with
//!   `OkReply` reads back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteor_proto::channel::{is_channel_byte, valid_channel_name};
use meteor_proto::path::{is_path_byte, valid_path_bytes};
use meteor_proto::reply::{OkReply, parse_ok_reply};

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
        let written = OkReply(id).to_string();
        assert_eq!(data, written.trim_end().as_bytes());
    }
    if data.len() >= 8 {
        let id = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let line = OkReply(id).to_string();
        let line = line.strip_suffix("\r\n").expect("the reply ends in CR LF");
        assert_eq!(parse_ok_reply(line.as_bytes()), Some(id));
    }
});
