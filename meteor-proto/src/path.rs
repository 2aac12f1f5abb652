//! The request-path byte rule for static documents: a path is served only
//! if every byte is `A-Z a-z 0-9 . _ / -`. Anything else (`%`, `\`, spaces,
//! non-ASCII) is refused before the path is looked at, so no decoding or
//! normalisation step can turn it into a way out of the document root.
//! Segment rules (no `..`, no hidden files) are each server's own.

/// Whether `b` may appear in a request path.
pub fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-')
}

/// Whether every byte of `path` is allowed by [`is_path_byte`] (true for
/// the empty path: emptiness is the caller's rule).
pub fn valid_path_bytes(path: &[u8]) -> bool {
    path.iter().all(|&b| is_path_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_bytes() {
        assert!(valid_path_bytes(b"/meteor.js"));
        assert!(valid_path_bytes(b"/a/b-c_d.e/"));
        assert!(valid_path_bytes(b""));
        for bad in [
            &b"/a b"[..],
            b"/%2e%2e/",
            b"/a\\b",
            b"/a?x",
            "/\u{e9}".as_bytes(),
        ] {
            assert!(!valid_path_bytes(bad), "{bad:?}");
        }
    }

    #[test]
    fn exactly_the_listed_bytes_are_allowed() {
        let allowed: Vec<u8> = (0..=255u8).filter(|&b| is_path_byte(b)).collect();
        let mut expected: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain([b'.', b'_', b'/', b'-'])
            .collect();
        expected.sort_unstable();
        assert_eq!(allowed, expected);
    }
}
