//! "Unicode escaping" of chat text: turns any string into one line of
//! printable ASCII that is safe in three places at once — inside the
//! double-quoted JavaScript string of every meteord message template
//! (`p(~id~,"~channel~","~text~")`), inside the chat page's HTML, and on
//! meteord's line-oriented controller protocol.
//!
//! Rules (pure function, no I/O):
//! - `&` `<` `>` `"` `'` become `&amp;` `&lt;` `&gt;` `&quot;` `&#39;`;
//! - `\` becomes `&#92;` (a raw backslash would end or bend the JS string);
//! - every control character (C0 including TAB/CR/LF, and DEL) becomes a
//!   decimal numeric character reference, so no input can start a second
//!   controller line;
//! - every non-ASCII character becomes one decimal NCR of its code point
//!   (a 4-byte emoji is one `&#128512;`, never a surrogate pair);
//! - everything else (printable ASCII) is copied.
//!
//! Normalisation (documented, and the only case where decoding the output
//! does not give the input back): U+0000 NUL and the C1 controls
//! U+0080–U+009F are replaced by U+FFFD (`&#65533;`). HTML forbids `&#0;`
//! and re-maps `&#128;`–`&#159;` to Windows-1252 characters (e.g. `&#128;`
//! shows "€"), so emitting those references would display something other
//! than what was sent.

/// The character that replaces code points HTML cannot represent as an NCR.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` is replaced by [`REPLACEMENT`] before escaping (see the module
/// documentation for why).
pub fn is_normalised_away(c: char) -> bool {
    c == '\0' || ('\u{80}'..='\u{9F}').contains(&c)
}

/// The input as it will appear after a browser decodes the escaped text:
/// NUL and C1 controls replaced by U+FFFD, everything else unchanged.
pub fn normalise(input: &str) -> String {
    input
        .chars()
        .map(|c| {
            if is_normalised_away(c) {
                REPLACEMENT
            } else {
                c
            }
        })
        .collect()
}

/// Escapes `input` as described in the module documentation.
pub fn escape(input: &str) -> String {
    use std::fmt::Write as _;

    // Most chat text is ASCII; reserve a little headroom for entities.
    let mut out = String::with_capacity(input.len() + input.len() / 4 + 8);
    for c in input.chars() {
        let c = if is_normalised_away(c) {
            REPLACEMENT
        } else {
            c
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\\' => out.push_str("&#92;"),
            ' '..='~' => out.push(c),
            // Control characters, DEL and every non-ASCII character. Writing
            // into a String cannot fail, so the fmt::Result carries no
            // information here.
            _ => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
        }
    }
    out
}

/// Decodes the entities [`escape`] produces (the five named/numeric ones and
/// decimal NCRs). Used by tests and by tools that want the display text back;
/// returns `None` for anything `escape` cannot have produced.
pub fn unescape(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';')?;
        let entity = &after[..semi];
        let decoded = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            _ => {
                let digits = entity.strip_prefix('#')?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                char::from_u32(digits.parse().ok()?)?
            }
        };
        out.push(decoded);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// True when `s` could be pasted into a JS double-quoted string, an HTML
    /// text node and a controller line without changing their structure.
    fn is_safe(s: &str) -> bool {
        s.bytes()
            .all(|b| (b' '..=b'~').contains(&b) && !b"\"'\\<>".contains(&b))
    }

    #[test]
    fn html_specials_become_entities() {
        assert_eq!(escape(r#"<b>&"'"#), "&lt;b&gt;&amp;&quot;&#39;");
    }

    #[test]
    fn script_end_tag_cannot_survive() {
        let e = escape("</script><script>alert(1)</script>");
        assert_eq!(e, "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
        assert!(!e.contains('<'));
    }

    #[test]
    fn backslashes_and_quotes_cannot_break_a_js_string() {
        assert_eq!(escape(r#"\"); x(\'"#), "&#92;&quot;); x(&#92;&#39;");
    }

    #[test]
    fn newlines_cannot_start_a_second_controller_line() {
        let e = escape("hi\r\nADDMESSAGE chat pwned\n\tx");
        assert_eq!(e, "hi&#13;&#10;ADDMESSAGE chat pwned&#10;&#9;x");
        assert!(!e.contains('\n') && !e.contains('\r'));
    }

    #[test]
    fn german_french_chinese_japanese() {
        assert_eq!(escape("Grüße, Ärger"), "Gr&#252;&#223;e, &#196;rger");
        assert_eq!(
            escape("Ça été à Noël"),
            "&#199;a &#233;t&#233; &#224; No&#235;l"
        );
        assert_eq!(escape("你好世界"), "&#20320;&#22909;&#19990;&#30028;");
        assert_eq!(
            escape("こんにちは"),
            "&#12371;&#12435;&#12395;&#12385;&#12399;"
        );
    }

    #[test]
    fn four_byte_emoji_is_one_reference() {
        assert_eq!(escape("😀"), "&#128512;");
        assert_eq!(escape("a👍🏽b"), "a&#128077;&#127997;b");
    }

    #[test]
    fn js_line_terminators_are_escaped() {
        assert_eq!(escape("\u{2028}\u{2029}"), "&#8232;&#8233;");
    }

    #[test]
    fn nul_and_c1_controls_are_normalised() {
        assert_eq!(escape("a\0b"), "a&#65533;b");
        assert_eq!(escape("\u{80}\u{9F}"), "&#65533;&#65533;");
        assert_eq!(escape("\u{1}\u{7F}"), "&#1;&#127;");
        assert_eq!(normalise("a\0\u{85}b"), "a\u{FFFD}\u{FFFD}b");
    }

    #[test]
    fn plain_ascii_is_untouched() {
        let s = "Hello, world! 1+1=2 (ok) ~id~ [x] {y} #z; @w `q` %20 /path";
        assert_eq!(escape(s), s);
    }

    #[test]
    fn unescape_rejects_what_escape_never_writes() {
        assert_eq!(unescape("&nbsp;"), None);
        assert_eq!(unescape("&#x41;"), None);
        assert_eq!(unescape("&#;"), None);
        assert_eq!(unescape("&amp"), None);
        assert_eq!(unescape("&#55296;"), None); // a surrogate is no char
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn output_is_safe_printable_ascii(s in any::<String>()) {
            let e = escape(&s);
            prop_assert!(is_safe(&e), "unsafe output {:?} for {:?}", e, s);
        }

        #[test]
        fn decoding_gives_back_the_normalised_input(s in any::<String>()) {
            prop_assert_eq!(unescape(&escape(&s)), Some(normalise(&s)));
        }

        #[test]
        fn hostile_mixtures_round_trip(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\r".to_string()), Just("\n".to_string()), Just("\0".to_string()),
                    Just("</script>".to_string()), Just("\\".to_string()), Just("\"".to_string()),
                    Just("'".to_string()), Just("&#92;".to_string()), Just("😀".to_string()),
                    Just("ü".to_string()), Just("中".to_string()), "[ -~]{0,4}",
                ],
                0..20,
            )
        ) {
            let s: String = parts.concat();
            let e = escape(&s);
            prop_assert!(is_safe(&e));
            prop_assert_eq!(unescape(&e), Some(normalise(&s)));
        }
    }
}
