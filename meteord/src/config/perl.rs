//! How the original reads a value it never validates: as a Perl scalar.
//!
//! Meteor takes every value as text and lets Perl decide what it means where
//! it is used: in a condition (`if ($persist)`) any text other than the empty
//! string and `0` is true; in arithmetic (`$maxTime > 0`) the text is read as
//! a number from its leading digits, and text without any is 0. Ours reads
//! the values it shares with the original the same way, so a configuration
//! the original starts on means the same to us (`Persist yes` persists,
//! `MaxTime -5` is no limit, `MaxMessageAge abc` is 0).

/// Perl's truth of a text value: false only for `""` and `"0"` (so `"0.0"`,
/// `" 0"` and `"off"` are true).
pub(crate) fn truthy(value: &str) -> bool {
    !(value.is_empty() || value == "0")
}

/// White space Perl skips before a number (`isSPACE`: ASCII blanks and
/// line breaks, vertical tab included).
fn is_perl_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Perl's numeric value of a text: leading white space, an optional sign,
/// decimal digits with an optional fraction and exponent; whatever follows
/// is ignored, and text that does not start like a number is 0. `inf` and
/// `nan` are read as Perl reads them.
pub(crate) fn number(value: &str) -> f64 {
    let bytes = value.as_bytes();
    let mut at = 0;
    while at < bytes.len() && is_perl_space(bytes[at]) {
        at += 1;
    }
    let start = at;
    if at < bytes.len() && matches!(bytes[at], b'+' | b'-') {
        at += 1;
    }
    let word = value[at..].to_ascii_lowercase();
    if word.starts_with("inf") || word.starts_with("nan") {
        let negative = bytes.get(start) == Some(&b'-');
        return match (word.starts_with("nan"), negative) {
            (true, _) => f64::NAN,
            (false, true) => f64::NEG_INFINITY,
            (false, false) => f64::INFINITY,
        };
    }
    let digits = |at: &mut usize| {
        let from = *at;
        while *at < bytes.len() && bytes[*at].is_ascii_digit() {
            *at += 1;
        }
        *at > from
    };
    let mut any = digits(&mut at);
    if at < bytes.len() && bytes[at] == b'.' {
        let dot = at;
        at += 1;
        if !digits(&mut at) && !any {
            at = dot;
        } else {
            any = true;
        }
    }
    if !any {
        return 0.0;
    }
    if at < bytes.len() && matches!(bytes[at], b'e' | b'E') {
        let mut exp = at + 1;
        if exp < bytes.len() && matches!(bytes[exp], b'+' | b'-') {
            exp += 1;
        }
        if digits(&mut exp) {
            at = exp;
        }
    }
    value[start..at].parse().unwrap_or(0.0)
}

/// [`number`] as a whole number, the fraction cut off (as Perl's `int`),
/// saturating at the ends of `i64`; `nan` is 0.
pub(crate) fn integer(value: &str) -> i64 {
    let n = number(value).trunc();
    if n.is_nan() {
        0
    } else {
        // `as` saturates at the ends of the range.
        n as i64
    }
}

/// Whether the text is exactly what Perl would also print for its number
/// (`12`, `-3`, `0.5`), i.e. reading it as a number lost nothing. Used to
/// tell the operator when a value was read differently from how it looks.
pub(crate) fn is_plain_number(value: &str) -> bool {
    let body = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_empty() != body.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_and_zero_are_false() {
        for f in ["", "0"] {
            assert!(!truthy(f), "{f:?}");
        }
        for t in ["1", "0.0", "00", " 0", "0 ", "off", "no", "false", "x"] {
            assert!(truthy(t), "{t:?}");
        }
    }

    #[test]
    fn numbers_read_their_leading_digits() {
        let cases: &[(&str, f64)] = &[
            ("12", 12.0),
            ("  12  ", 12.0),
            ("12abc", 12.0),
            ("abc", 0.0),
            ("", 0.0),
            ("-5", -5.0),
            ("+7", 7.0),
            ("3.75", 3.75),
            (".5", 0.5),
            ("5.", 5.0),
            (".", 0.0),
            ("1e3", 1000.0),
            ("1e", 1.0),
            ("1e+2x", 100.0),
            ("0x10", 0.0),
            ("\t\n 9", 9.0),
            ("- 5", 0.0),
        ];
        for &(text, want) in cases {
            assert_eq!(number(text), want, "{text:?}");
        }
        assert_eq!(number("inf"), f64::INFINITY);
        assert_eq!(number("-Infinity"), f64::NEG_INFINITY);
        assert!(number("nan").is_nan());
    }

    #[test]
    fn integers_cut_the_fraction_and_saturate() {
        assert_eq!(integer("3.9"), 3);
        assert_eq!(integer("-3.9"), -3);
        assert_eq!(integer("1e30"), i64::MAX);
        assert_eq!(integer("-inf"), i64::MIN);
        assert_eq!(integer("nan"), 0);
        assert_eq!(integer("x"), 0);
    }

    #[test]
    fn plain_numbers() {
        for p in ["0", "12", "-3", "0.5"] {
            assert!(is_plain_number(p), "{p}");
        }
        for n in ["", " 1", "1 ", "1x", "abc", "1.", ".5", "+1", "1e3", "-"] {
            assert!(!is_plain_number(n), "{n}");
        }
    }
}
