//! The subscriber port's request grammar (meteord/src/subscriber/request.rs)
//! on arbitrary bytes: `parse_head`, then `route` and `user_agent` on the
//! head's text, and `parse_channel` on the input itself.
//!
//! Input: the first byte picks the SubscriberDynamicPageAddress (the
//! default `/push`, an empty one, or a longer mixed-case one); the rest is
//! what a client sent.
//!
//! Holds for every input: a decision without a panic, and
//! - a complete head never claims more bytes than it was given, is found
//!   again in exactly those bytes, and its text is lines ending in `\n`
//!   with no `\r` left in them;
//! - a stream has an alphanumeric hostid and mode, and distinct, valid
//!   channel names; a disconnect id and a document path contain no white
//!   space (nor `?` for a path);
//! - the User-Agent is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteor_proto::channel::valid_channel_name;
use meteord::subscriber::request::{Route, parse_channel, parse_head, route, user_agent};

const PREFIXES: [&str; 3] = ["/push", "", "/Push/Deep"];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn check_route(text: &[u8], prefix: &str) {
    match route(text, prefix) {
        Route::Stream(stream) => {
            assert!(!stream.hostid.is_empty());
            assert!(stream.hostid.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(!stream.mode.is_empty());
            assert!(stream.mode.bytes().all(|b| b.is_ascii_alphanumeric()));
            for (i, (name, _)) in stream.channels.iter().enumerate() {
                assert!(valid_channel_name(name.as_bytes()), "channel {name:?}");
                assert!(
                    stream.channels[..i].iter().all(|(n, _)| n != name),
                    "channel {name:?} twice"
                );
            }
        }
        Route::Disconnect(id) => {
            assert!(!id.is_empty());
            assert!(!id.bytes().any(is_space), "disconnect id {id:?}");
        }
        Route::Document(path) => {
            assert!(!path.is_empty());
            assert!(
                !path.bytes().any(|b| is_space(b) || b == b'?'),
                "path {path:?}"
            );
        }
        Route::Unknown => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&select, buf)) = data.split_first() else {
        return;
    };
    let prefix = PREFIXES[usize::from(select) % PREFIXES.len()];

    if let Some(head) = parse_head(buf) {
        assert!(head.len <= buf.len());
        assert!(head.text.len() <= head.len);
        assert!(!head.text.contains(&b'\r'), "CR left in head text");
        assert!(head.text.is_empty() || head.text.ends_with(b"\n"));
        // The head is decided by its own bytes: more input changes nothing.
        assert_eq!(parse_head(&buf[..head.len]).as_ref(), Some(&head));
        check_route(&head.text, prefix);
        assert!(!user_agent(&head.text).contains('\n'));
    }
    // The router must cope with any text, not only what parse_head gives.
    check_route(buf, prefix);

    if let Ok(definition) = std::str::from_utf8(buf) {
        if let Some((name, _)) = parse_channel(definition) {
            assert!(valid_channel_name(name.as_bytes()));
            assert!(definition.starts_with(name));
        }
    }
});
