//! The channel-name rule: subscribers can only name channels made of
//! `A-Z a-z 0-9 _ - %` (the subscriber URL grammar), so a publisher that
//! accepted any other name would store messages nobody can ever receive.

/// The allowed characters, as shown to people in error messages.
pub const CHANNEL_CHARS: &str = "A-Z a-z 0-9 _ - %";

/// Whether `b` may appear in a channel name.
pub fn is_channel_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%')
}

/// Whether `name` is a channel name a subscriber can ask for: one or more
/// bytes, each allowed by [`is_channel_byte`]. No length limit: that is
/// each caller's own bound (a line limit, a URL limit).
pub fn valid_channel_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_channel_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert!(valid_channel_name(b"chat"));
        assert!(valid_channel_name(b"a_b-c%20"));
        assert!(!valid_channel_name(b""));
        assert!(!valid_channel_name(b"a.b"));
        assert!(!valid_channel_name(b"a b"));
        assert!(!valid_channel_name("ch\u{e9}".as_bytes()));
    }

    #[test]
    fn exactly_the_listed_bytes_are_allowed() {
        let allowed: Vec<u8> = (0..=255u8).filter(|&b| is_channel_byte(b)).collect();
        let mut expected: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain([b'_', b'-', b'%'])
            .collect();
        expected.sort_unstable();
        assert_eq!(allowed, expected);
    }
}
