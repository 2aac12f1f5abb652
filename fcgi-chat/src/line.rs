//! Formats the controller command for one chat message:
//! `ADDMESSAGE <channel> <strong>USER HH:MM:SS</strong> MESSAGE\n`, with both
//! fields escaped by [`crate::escape`] and the time of day in a configurable
//! time zone. Also validates channel names once at start-up.

use jiff::{Timestamp, tz::TimeZone};
use meteor_proto::channel::{self, CHANNEL_CHARS};

use crate::escape::escape;
use crate::form::Validated;

/// Longest channel name we accept on the command line; meteord's names are
/// short identifiers and the line must stay well under its line limit.
pub const MAX_CHANNEL_LEN: usize = 64;

/// Checks a channel name against meteord's grammar (`[A-Za-z0-9_\-%]+`,
/// [`meteor_proto::channel`]) and our length bound.
pub fn validate_channel(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_CHANNEL_LEN {
        return Err(format!(
            "channel name must be 1 to {MAX_CHANNEL_LEN} characters, got {}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|&c| !(c.is_ascii() && channel::is_channel_byte(c as u8)))
    {
        Some(bad) => Err(format!(
            "channel name {name:?} contains {bad:?}; allowed are {CHANNEL_CHARS}"
        )),
        None => Ok(()),
    }
}

/// The chat text as it appears in the channel (what subscribers receive as
/// `~text~`): `<strong>USER HH:MM:SS</strong> MESSAGE`.
pub fn chat_text(msg: &Validated, now: Timestamp, tz: &TimeZone) -> String {
    let time = now
        .to_zoned_datetime(tz.clone())
        .strftime("%H:%M:%S")
        .to_string();
    format!(
        "<strong>{} {time}</strong> {}",
        escape(&msg.user),
        escape(&msg.message)
    )
}

/// The full controller line, newline-terminated. `channel` must have passed
/// [`validate_channel`]; the text is single-line by construction of
/// [`escape`].
pub fn addmessage_line(channel: &str, text: &str) -> String {
    format!("ADDMESSAGE {channel} {text}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(user: &str, message: &str) -> Validated {
        Validated {
            user: user.into(),
            message: message.into(),
        }
    }

    #[test]
    fn formats_time_in_the_given_zone() {
        // 2026-07-01 12:34:56 UTC is 14:34:56 in Berlin (CEST).
        let now: Timestamp = "2026-07-01T12:34:56Z".parse().unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            chat_text(&msg("Zoë", "<hi>"), now, &berlin),
            "<strong>Zo&#235; 14:34:56</strong> &lt;hi&gt;"
        );
        assert_eq!(
            chat_text(&msg("a", "b"), now, &TimeZone::UTC),
            "<strong>a 12:34:56</strong> b"
        );
    }

    #[test]
    fn hostile_text_stays_on_one_line() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let text = chat_text(
            &msg("x\nADDMESSAGE chat y", "a\r\nQUIT\r\n"),
            now,
            &TimeZone::UTC,
        );
        let line = addmessage_line("chat", &text);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n') && !line.contains('\r'));
        assert_eq!(
            line,
            "ADDMESSAGE chat <strong>x&#10;ADDMESSAGE chat y 00:00:00</strong> a&#13;&#10;QUIT&#13;&#10;\n"
        );
    }

    #[test]
    fn channel_error_names_the_first_bad_character() {
        assert_eq!(
            validate_channel("ch.r1").unwrap_err(),
            "channel name \"ch.r1\" contains '.'; allowed are A-Z a-z 0-9 _ - %"
        );
        assert_eq!(
            validate_channel("\u{fc}").unwrap_err(),
            "channel name \"\u{fc}\" contains '\u{fc}'; allowed are A-Z a-z 0-9 _ - %"
        );
    }

    #[test]
    fn channel_names() {
        for good in ["chat", "a_b-c%20", "X9"] {
            assert!(validate_channel(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "chat\n", "ch.r1", "ü", &"x".repeat(65)] {
            assert!(validate_channel(bad).is_err(), "{bad:?}");
        }
    }
}
