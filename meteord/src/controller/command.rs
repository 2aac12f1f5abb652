//! The controller's line protocol, free of I/O: one [`Command`] enum with
//! its parser, and the reply formats side by side.
//!
//! The grammar is the original's, exactly, since existing publishers and
//! admin scripts rely on it:
//! - the command word is matched case-sensitively at the very start of the
//!   line (no leading white space) and may be followed directly by its
//!   arguments' white space;
//! - `ADDMESSAGE`: white space, the channel (any run of non-white bytes),
//!   exactly one white-space byte, then the text (the rest of the line, may
//!   be empty) — without that separator it is a syntax error;
//! - `COUNTSUBSCRIBERS` and `DESCRIBE`: white space, one word, end of line;
//! - `LISTCHANNELS`, `LISTSUBSCRIBERS`, `LISTCONNECTIONS`, `QUIT`: nothing
//!   after the word, not even a blank; `SHOWSTATS` ignores what follows.
//!
//! "White space" is the original's: space, TAB, LF, VT, FF, CR. The line
//! handed to [`parse`] has its `\n` (and one `\r` before it) removed; a CR
//! anywhere else is data that separates like a blank.

/// The reply to anything we do not understand.
pub const ERR_SYNTAX: &str = "ERR Invalid command syntax";

/// One controller command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `ADDMESSAGE <channel> <text…>` → `OK\t<id>`.
    AddMessage { channel: &'a [u8], text: &'a [u8] },
    /// `COUNTSUBSCRIBERS <channel>` → `OK <n>`.
    CountSubscribers { channel: &'a [u8] },
    /// `LISTCHANNELS` → `OK`, `name(<messages>/<subscribers>)`…, `--EOT--`.
    ListChannels,
    /// `LISTSUBSCRIBERS` → `OK`, one line per streaming subscriber, `--EOT--`.
    ListSubscribers,
    /// `LISTCONNECTIONS` → `OK`, `<n> <ip> <type> [<hostid>]`…, `--EOT--`.
    ListConnections,
    /// `DESCRIBE <conn-number>` → `OK`, `key: value`…, `--EOT--`. The
    /// argument is read as a number the way the original does (see
    /// [`numeric_value`]); `None` when that number is no connection number.
    Describe(Option<u64>),
    /// `SHOWSTATS` → `OK`, `key: value`…, `--EOT--`.
    ShowStats,
    /// `QUIT` → `OK`, then close.
    Quit,
}

/// The original's white space (Perl's `\s` on bytes).
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Split a leading run of non-white bytes off `s`.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&b| is_space(b)).unwrap_or(s.len());
    s.split_at(end)
}

/// `\s+(\S+)` then the rest: `None` unless `s` starts with white space
/// followed by a word.
fn spaced_word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| !is_space(b))?;
    if start == 0 {
        return None;
    }
    Some(word(&s[start..]))
}

/// `\s+(\S+)$`: exactly one word after white space, nothing after it.
fn only_word(s: &[u8]) -> Option<&[u8]> {
    match spaced_word(s)? {
        (w, []) => Some(w),
        _ => None,
    }
}

const WORDS: [&[u8]; 8] = [
    b"ADDMESSAGE",
    b"COUNTSUBSCRIBERS",
    b"LISTCHANNELS",
    b"LISTSUBSCRIBERS",
    b"LISTCONNECTIONS",
    b"DESCRIBE",
    b"SHOWSTATS",
    b"QUIT",
];

/// Parse one line (without its line end).
pub fn parse(line: &[u8]) -> Result<Command<'_>, &'static str> {
    let word = WORDS
        .iter()
        .find(|w| line.starts_with(w))
        .ok_or(ERR_SYNTAX)?;
    let rest = &line[word.len()..];
    let nothing_after = |command: Command<'static>| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(ERR_SYNTAX)
        }
    };
    match *word {
        b"ADDMESSAGE" => {
            let (channel, after) = spaced_word(rest).ok_or(ERR_SYNTAX)?;
            // Exactly one separator byte; the text keeps any further blanks.
            match after.split_first() {
                Some((&sep, text)) if is_space(sep) => Ok(Command::AddMessage { channel, text }),
                _ => Err(ERR_SYNTAX),
            }
        }
        b"COUNTSUBSCRIBERS" => {
            let channel = only_word(rest).ok_or(ERR_SYNTAX)?;
            Ok(Command::CountSubscribers { channel })
        }
        b"DESCRIBE" => {
            let arg = only_word(rest).ok_or(ERR_SYNTAX)?;
            Ok(Command::Describe(connection_number(numeric_value(arg))))
        }
        b"LISTCHANNELS" => nothing_after(Command::ListChannels),
        b"LISTSUBSCRIBERS" => nothing_after(Command::ListSubscribers),
        b"LISTCONNECTIONS" => nothing_after(Command::ListConnections),
        b"SHOWSTATS" => Ok(Command::ShowStats),
        _ => nothing_after(Command::Quit),
    }
}

/// One UDP datagram: the original's UDP grammar is stricter than the
/// controller's. `ADDMESSAGE`, exactly one white-space byte, the channel,
/// exactly one white-space byte, and the text is everything after it,
/// line end included. Anything else is ignored (`None`).
pub fn parse_datagram(datagram: &[u8]) -> Option<(&[u8], &[u8])> {
    let after_word = datagram.strip_prefix(b"ADDMESSAGE")?;
    let (&sep, rest) = after_word.split_first()?;
    if !is_space(sep) {
        return None;
    }
    let (channel, after) = word(rest);
    let (&sep, text) = after.split_first()?;
    if channel.is_empty() || !is_space(sep) {
        return None;
    }
    Some((channel, text))
}

/// A word read as a number the way Perl reads a string in `==`: the
/// longest leading decimal number (`7`, `7.0`, `7e0`, `+7`, `7abc` are all
/// 7; `0x7` is 0), `inf`/`nan` as such, and 0 when there is none.
pub fn numeric_value(word: &[u8]) -> f64 {
    let (sign, body) = match word.first() {
        Some(b'-') => (-1.0, &word[1..]),
        Some(b'+') => (1.0, &word[1..]),
        _ => (1.0, word),
    };
    let lower = body.to_ascii_lowercase();
    if lower.starts_with(b"inf") {
        return sign * f64::INFINITY;
    }
    if lower.starts_with(b"nan") {
        return f64::NAN;
    }
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let int = digits(body);
    let mut end = int;
    if body.get(end) == Some(&b'.') {
        end += 1 + digits(&body[end + 1..]);
    }
    if end == 0 || (int == 0 && end == 1) {
        return 0.0;
    }
    if matches!(body.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(body.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let n = digits(&body[exp..]);
        if n > 0 {
            end = exp + n;
        }
    }
    // Only ASCII digits, '.', 'e' and signs were taken: valid UTF-8 and a
    // valid float.
    let text = std::str::from_utf8(&body[..end]).unwrap_or("0");
    sign * text.parse::<f64>().unwrap_or(0.0)
}

/// The connection number a numeric value names, if any can have it.
fn connection_number(value: f64) -> Option<u64> {
    let exact = value.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&value);
    exact.then_some(value as u64)
}

/// Reply line endings.
pub const EOL: &[u8] = b"\r\n";

/// `OK`, the lines, `--EOT--`, each ending in CR LF, appended to `out`.
pub fn list_reply<I, S>(out: &mut Vec<u8>, lines: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    out.extend_from_slice(b"OK\r\n");
    for line in lines {
        out.extend_from_slice(line.as_ref());
        out.extend_from_slice(EOL);
    }
    out.extend_from_slice(b"--EOT--\r\n");
}

/// One LISTCHANNELS line: the name exactly as published.
pub fn channel_line(name: &[u8], messages: usize, subscribers: usize) -> Vec<u8> {
    let mut line = name.to_vec();
    line.extend_from_slice(format!("({messages}/{subscribers})").as_bytes());
    line
}

/// `key: value` lines (an empty value leaves `key: `, as the original).
pub fn key_values<'a>(pairs: impl IntoIterator<Item = (&'a str, Vec<u8>)>) -> Vec<Vec<u8>> {
    pairs
        .into_iter()
        .map(|(k, v)| [k.as_bytes(), b": ", &v].concat())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add<'a>(channel: &'a [u8], text: &'a [u8]) -> Result<Command<'a>, &'static str> {
        Ok(Command::AddMessage { channel, text })
    }

    #[test]
    fn addmessage_needs_the_separator_and_keeps_the_rest() {
        assert_eq!(
            parse(b"ADDMESSAGE chat hello  world"),
            add(b"chat", b"hello  world")
        );
        assert_eq!(parse(b"ADDMESSAGE chat "), add(b"chat", b""));
        assert_eq!(parse(b"ADDMESSAGE  chat  x"), add(b"chat", b" x"));
        assert_eq!(parse(b"ADDMESSAGE\tchat\tx"), add(b"chat", b"x"));
        assert_eq!(parse(b"ADDMESSAGE c\x0bx"), add(b"c", b"x"));
        assert_eq!(
            parse("ADDMESSAGE kan\u{e4}le caf\u{e9}\r mid-CR".as_bytes()),
            add("kan\u{e4}le".as_bytes(), "caf\u{e9}\r mid-CR".as_bytes())
        );
        assert_eq!(parse(b"ADDMESSAGE a\x01\xa0b t"), add(b"a\x01\xa0b", b"t"));
        for bad in [
            &b"ADDMESSAGE"[..],
            b"ADDMESSAGE ",
            b"ADDMESSAGE chat",
            b"ADDMESSAGEchat x",
            b"ADDMESSAGE  ",
        ] {
            assert_eq!(
                parse(bad),
                Err(ERR_SYNTAX),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn words_are_exact_and_argument_rules_are_the_originals() {
        for bad in [
            &b""[..],
            b"addmessage chat x",
            b" ADDMESSAGE chat x",
            b"LISTCHANNELS x",
            b"LISTCHANNELS ",
            b"QUIT ",
            b"QUITX",
            b"LISTSUBSCRIBERSx",
            b"FOO",
            b"DESCRIBE",
            b"DESCRIBE 5 ",
            b"COUNTSUBSCRIBERS",
            b"COUNTSUBSCRIBERSx",
            b"COUNTSUBSCRIBERS a b",
            b"COUNTSUBSCRIBERS chat ",
        ] {
            assert_eq!(
                parse(bad),
                Err(ERR_SYNTAX),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(b"SHOWSTATS whatever"), Ok(Command::ShowStats));
        assert_eq!(parse(b"SHOWSTATSX"), Ok(Command::ShowStats));
        assert_eq!(
            parse(b"COUNTSUBSCRIBERS\t ~t"),
            Ok(Command::CountSubscribers { channel: b"~t" })
        );
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse(b"LISTCHANNELS"), Ok(Command::ListChannels));
        assert_eq!(parse(b"LISTSUBSCRIBERS"), Ok(Command::ListSubscribers));
        assert_eq!(parse(b"LISTCONNECTIONS"), Ok(Command::ListConnections));
        assert_eq!(parse(b"SHOWSTATS"), Ok(Command::ShowStats));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse(b"DESCRIBE 12"), Ok(Command::Describe(Some(12))));
    }

    #[test]
    fn describe_reads_its_argument_as_perl_does() {
        for (arg, want) in [
            ("7", Some(7)),
            ("7.0", Some(7)),
            ("7x", Some(7)),
            ("7e0", Some(7)),
            ("+7", Some(7)),
            ("70e-1", Some(7)),
            ("0x7", Some(0)),
            ("abc", Some(0)),
            (".", Some(0)),
            ("-1", None),
            ("7.5", None),
            ("inf", None),
            ("nan", None),
            ("99999999999", None),
        ] {
            assert_eq!(
                parse(format!("DESCRIBE {arg}").as_bytes()),
                Ok(Command::Describe(want)),
                "{arg}"
            );
        }
    }

    #[test]
    fn datagrams() {
        assert_eq!(
            parse_datagram(b"ADDMESSAGE u hi\n"),
            Some((&b"u"[..], &b"hi\n"[..]))
        );
        assert_eq!(
            parse_datagram(b"ADDMESSAGE u\n"),
            Some((&b"u"[..], &b""[..]))
        );
        assert_eq!(
            parse_datagram(b"ADDMESSAGE\tu\tx"),
            Some((&b"u"[..], &b"x"[..]))
        );
        assert_eq!(
            parse_datagram(b"ADDMESSAGE u "),
            Some((&b"u"[..], &b""[..]))
        );
        for ignored in [
            &b"ADDMESSAGE u"[..],
            b"ADDMESSAGE  u x",
            b"ADDMESSAGEu x",
            b"addmessage u x",
            b"COUNTSUBSCRIBERS u",
            b"",
        ] {
            assert_eq!(
                parse_datagram(ignored),
                None,
                "{:?}",
                String::from_utf8_lossy(ignored)
            );
        }
    }

    #[test]
    fn reply_formats() {
        let mut out = Vec::new();
        list_reply(&mut out, [b"a(1/2)"]);
        assert_eq!(out, b"OK\r\na(1/2)\r\n--EOT--\r\n");
        out.clear();
        list_reply(&mut out, Vec::<Vec<u8>>::new());
        assert_eq!(out, b"OK\r\n--EOT--\r\n");
        assert_eq!(channel_line(b"chat", 3, 1), b"chat(3/1)");
        assert_eq!(
            key_values([("uptime", b"5".to_vec()), ("writeBuffer", Vec::new())]),
            vec![b"uptime: 5".to_vec(), b"writeBuffer: ".to_vec()]
        );
    }
}
