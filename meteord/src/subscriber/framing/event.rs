//! The JSON objects that describe events to the EventSource and WebSocket
//! framings (one wire format for both; issue 12 is its contract):
//!
//! - a message: `{"type":"message","id":17,"channel":"chat","text":"…"}`,
//!   the text exactly the bytes published, as UTF-8 (invalid bytes become
//!   U+FFFD, as JSON cannot carry them);
//! - a gap: `{"type":"gap","channel":"chat","requested":5,"oldest":120}`,
//!   sent before anything else of a channel whose resume the history no
//!   longer covers.
//!
//! Pure: bytes in, bytes out. Rendered once per message and mode (the
//! render cache), so this is written for clarity before speed, but it
//! copies runs of plain bytes in one go.

use crate::template::push_number;

/// Append the message event's JSON object.
pub fn push_message(out: &mut Vec<u8>, id: u64, channel: &[u8], text: &[u8]) {
    out.extend_from_slice(b"{\"type\":\"message\",\"id\":");
    push_number(out, id);
    out.extend_from_slice(b",\"channel\":");
    push_string(out, channel);
    out.extend_from_slice(b",\"text\":");
    push_string(out, text);
    out.push(b'}');
}

/// Append the gap event's JSON object.
pub fn push_gap(out: &mut Vec<u8>, channel: &[u8], requested: u64, oldest: u64) {
    out.extend_from_slice(b"{\"type\":\"gap\",\"channel\":");
    push_string(out, channel);
    out.extend_from_slice(b",\"requested\":");
    push_number(out, requested);
    out.extend_from_slice(b",\"oldest\":");
    push_number(out, oldest);
    out.push(b'}');
}

/// Append `bytes` as a JSON string: UTF-8, invalid sequences replaced by
/// U+FFFD; `"`, `\` and control characters escaped (also U+2028/U+2029,
/// which older JavaScript parsers reject in string literals).
pub fn push_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        push_escaped(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

fn push_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    for (at, ch) in text.char_indices() {
        let escape: Option<&[u8]> = match ch {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{2028}' | '\u{2029}' => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain_from..at]);
        match escape {
            Some(escape) => out.extend_from_slice(escape),
            None => {
                let code = ch as u32;
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(b"0123456789abcdef"[((code >> shift) & 0xf) as usize]);
                }
            }
        }
        plain_from = at + ch.len_utf8();
    }
    out.extend_from_slice(&bytes[plain_from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, channel: &[u8], text: &[u8]) -> String {
        let mut out = Vec::new();
        push_message(&mut out, id, channel, text);
        String::from_utf8(out).expect("always UTF-8")
    }

    #[test]
    fn a_message_is_the_contracts_object() {
        assert_eq!(
            message(17, b"chat", b"hello"),
            r#"{"type":"message","id":17,"channel":"chat","text":"hello"}"#
        );
    }

    #[test]
    fn a_gap_is_the_contracts_object() {
        let mut out = Vec::new();
        push_gap(&mut out, b"chat", 5, 120);
        assert_eq!(
            out,
            br#"{"type":"gap","channel":"chat","requested":5,"oldest":120}"#
        );
    }

    #[test]
    fn text_is_escaped_and_unicode_kept() {
        assert_eq!(
            message(1, b"c", "a\"b\\c\nd\u{1}e\u{7f}f\u{2028}ÄΩ😀".as_bytes()),
            "{\"type\":\"message\",\"id\":1,\"channel\":\"c\",\"text\":\
             \"a\\\"b\\\\c\\nd\\u0001e\\u007ff\\u2028ÄΩ😀\"}"
        );
    }

    #[test]
    fn invalid_utf8_becomes_the_replacement_character() {
        assert_eq!(
            message(1, b"k\xe4n", b"a\xff\xfeb\xe2\x82"),
            "{\"type\":\"message\",\"id\":1,\"channel\":\"k\u{fffd}n\",\
             \"text\":\"a\u{fffd}\u{fffd}b\u{fffd}\"}"
        );
    }

    /// Whatever the bytes, the object is valid JSON whose text decodes to
    /// the bytes read as lossy UTF-8.
    #[test]
    fn any_bytes_give_a_json_string_that_decodes_back() {
        use proptest::prelude::*;
        proptest!(|(text in proptest::collection::vec(any::<u8>(), 0..64))| {
            let mut out = Vec::new();
            push_string(&mut out, &text);
            let decoded = decode_json_string(&out);
            prop_assert_eq!(decoded, String::from_utf8_lossy(&text).into_owned());
        });
    }

    /// A small JSON string decoder for the property above (the escapes
    /// `push_string` writes).
    fn decode_json_string(json: &[u8]) -> String {
        let text = std::str::from_utf8(json).expect("UTF-8");
        let inner = &text[1..text.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                assert!(c >= ' ' && c != '"', "unescaped {c:?}");
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).expect("hex");
                    out.push(char::from_u32(code).expect("scalar"));
                }
                other => panic!("unknown escape {other:?}"),
            }
        }
        out
    }
}
