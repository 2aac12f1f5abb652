//! The `application/x-www-form-urlencoded` decoder. Our own rather than
//! `serde_urlencoded`, because that crate silently turns invalid UTF-8
//! (`%FF`) into U+FFFD; we must refuse it, so this one yields bytes.

use super::{Fields, FormError};

/// Decodes an `application/x-www-form-urlencoded` body: `&`-separated
/// pairs, `name=value` or a bare `name` (empty value).
pub fn parse(body: &[u8]) -> Result<Fields, FormError> {
    let mut fields = Vec::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        fields.push((percent_decode(name)?, percent_decode(value)?));
    }
    Ok(fields)
}

/// `+` is a space, `%XX` a byte; a `%` not followed by two hex digits is an
/// error (browsers never produce one, so it means a broken client).
fn percent_decode(input: &[u8]) -> Result<Vec<u8>, FormError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .ok_or(FormError::Malformed("truncated percent-encoding"))?;
                let hi = hex_value(hex[0]);
                let lo = hex_value(hex[1]);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(FormError::Malformed("invalid percent-encoding")),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::form::{FormError, Limits, validate};

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn err(body: &[u8]) -> FormError {
        validate("POST", FORM, body, &Limits::default()).unwrap_err()
    }

    #[test]
    fn decodes_plus_and_percent() {
        let v = validate(
            "POST",
            FORM,
            "user=J%C3%BCrgen+K&message=1%2B1%3D2+%26+more".as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(v.user, "Jürgen K");
        assert_eq!(v.message, "1+1=2 & more");
    }

    #[test]
    fn broken_percent_encoding_is_400() {
        assert!(matches!(err(b"message=%4"), FormError::Malformed(_)));
        assert!(matches!(err(b"message=%zz"), FormError::Malformed(_)));
    }
}
