//! The chat escaper (fcgi-chat/src/escape.rs) on any text.
//!
//! Holds for every input: no panic, and the escaped text
//! - is printable ASCII only: no `<`, `>`, `"`, `'`, `\`, CR, LF or other
//!   control character, and every `&` starts one of the entities `escape`
//!   writes (`&amp;` `&lt;` `&gt;` `&quot;` `&#<digits>;`);
//! - decodes, with an independent HTML entity decoder (the `html-escape`
//!   crate; it leaves C0 control references alone, see
//!   `as_html_escape_reads`) and with `unescape`, to the input as
//!   normalised;
//!
//! and `unescape` of arbitrary text does not panic either.
#![no_main]

use fcgi_chat::escape::{escape, normalise, unescape};
use libfuzzer_sys::fuzz_target;

/// Length of the entity at the start of `s` (which starts with `&`).
fn entity_len(s: &str) -> Option<usize> {
    for named in ["&amp;", "&lt;", "&gt;", "&quot;"] {
        if s.starts_with(named) {
            return Some(named.len());
        }
    }
    let digits = s.strip_prefix("&#")?;
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    (len > 0 && digits[len..].starts_with(';')).then_some(2 + len + 1)
}

/// `text` as html-escape decodes its escaped form: that crate leaves the
/// references to C0 controls other than TAB, LF, FF and CR undecoded (a
/// browser gives the control character, with a parse error), so those stay
/// as the reference `escape` wrote.
fn as_html_escape_reads(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\u{c}' | '\r' => c.to_string(),
            '\0'..='\u{1f}' => format!("&#{};", u32::from(c)),
            _ => c.to_string(),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let escaped = escape(&input);

    assert!(
        escaped.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "non-printable in {escaped:?}"
    );
    assert!(
        !escaped.contains(['<', '>', '"', '\'', '\\']),
        "raw special in {escaped:?}"
    );
    let mut rest = escaped.as_str();
    while let Some(at) = rest.find('&') {
        let len = entity_len(&rest[at..]).unwrap_or_else(|| panic!("bare & in {escaped:?}"));
        rest = &rest[at + len..];
    }

    let expected = normalise(&input);
    assert_eq!(
        html_escape::decode_html_entities(&escaped),
        as_html_escape_reads(&expected)
    );
    assert_eq!(unescape(&escaped).as_deref(), Some(expected.as_str()));
    assert_eq!(
        escape(&expected),
        escaped,
        "normalising first changes nothing"
    );

    let _ = unescape(&input);
});
