//! The chat form (fcgi-chat/src/form/): the urlencoded and multipart body
//! decoders on their own (through `form::fuzzing`), and `validate`, which
//! picks the decoder from the Content-Type and checks the fields.
//!
//! Input: the first line is the Content-Type header value; the rest is the
//! body. A Content-Type line `@<boundary>` stands for
//! `multipart/form-data; boundary=<boundary>` and an empty one for
//! `application/x-www-form-urlencoded`, so the fuzzer reaches both decoders
//! without having to find those strings first.
//!
//! Holds for every input: no panic, and
//! - the urlencoded decoder never yields more bytes than it was given, and
//!   what it yields, percent-encoded again, decodes to the same fields;
//! - every multipart value is a piece of the body (no more bytes than the
//!   body altogether);
//! - `validate` agrees with the decoder it used: on success the message is
//!   the decoded `message` field, not blank, within the limit, and the user
//!   is trimmed, within its limit (or `Guest`); a refusal has a 4xx status
//!   and a one-line reason in printable text.
#![no_main]

use fcgi_chat::form::{DEFAULT_USER, Limits, fuzzing, validate};
use libfuzzer_sys::fuzz_target;

fn percent_encode(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| format!("%{b:02X}").into_bytes())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let Ok(first) = std::str::from_utf8(first) else {
        return;
    };
    let content_type = match first {
        "" => "application/x-www-form-urlencoded".to_owned(),
        _ => match first.strip_prefix('@') {
            Some(boundary) => format!("multipart/form-data; boundary={boundary}"),
            None => first.to_owned(),
        },
    };

    let urlencoded = fuzzing::urlencoded(body);
    if let Ok(fields) = &urlencoded {
        let out: usize = fields.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert!(out <= body.len(), "{out} bytes out of {}", body.len());
        let again: Vec<u8> = fields
            .iter()
            .map(|(n, v)| [percent_encode(n), b"=".to_vec(), percent_encode(v)].concat())
            .collect::<Vec<_>>()
            .join(&b'&');
        let reread = fuzzing::urlencoded(&again).expect("re-encoded form decodes");
        assert_eq!(&reread, fields);
    }

    let boundary = first.strip_prefix('@');
    if let Some(boundary) = boundary.filter(|b| !b.is_empty()) {
        if let Ok(fields) = fuzzing::multipart(body, boundary) {
            let out: usize = fields.iter().map(|(_, v)| v.len()).sum();
            assert!(out <= body.len());
            for (_, value) in &fields {
                assert!(contains(body, value));
            }
        }
    }

    let limits = Limits {
        max_user_chars: 8,
        max_message_chars: 64,
    };
    match validate("POST", Some(&content_type), body, &limits) {
        Ok(valid) => {
            assert!(!valid.message.trim().is_empty());
            assert!(valid.message.chars().count() <= limits.max_message_chars);
            assert!(
                valid.user == DEFAULT_USER || valid.user.chars().count() <= limits.max_user_chars
            );
            assert_eq!(valid.user, valid.user.trim());
            assert!(!valid.user.is_empty());
            if first.is_empty() {
                let fields = urlencoded.expect("validate accepted what the decoder refused");
                let message = fields
                    .iter()
                    .find(|(n, _)| n == b"message")
                    .expect("a message field");
                assert_eq!(message.1, valid.message.as_bytes());
            }
        }
        Err(err) => {
            assert!((400..500).contains(&err.status()));
            let reason = err.to_string();
            assert!(!reason.contains(['\r', '\n']), "reason {reason:?}");
        }
    }
});
