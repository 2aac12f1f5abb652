//! The controller's line protocol, free of I/O: one [`Command`] enum with
//! its parser, and the reply formats side by side.
//!
//! Syntax is exact, as existing publishers rely on it: upper-case command
//! words, one space before arguments, no leading white space; anything else
//! is `ERR Invalid command syntax`. The line handed to [`parse`] has its
//! `\n` (and one `\r` before it) removed; a CR anywhere else is data.

use std::fmt::Write as _;

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
    /// `DESCRIBE <conn-number>` → `OK`, `key: value`…, `--EOT--`.
    Describe(u64),
    /// `SHOWSTATS` → `OK`, `key: value`…, `--EOT--`.
    ShowStats,
    /// `QUIT` → `OK`, then close.
    Quit,
}

/// Parse one line (without its line end).
pub fn parse(line: &[u8]) -> Result<Command<'_>, &'static str> {
    let (word, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let no_args = |command: Command<'static>| match rest {
        None => Ok(command),
        // Tolerate trailing blanks after argument-less commands (PHP
        // publishers often send "QUIT \n"), nothing else.
        Some(r) if r.iter().all(|&b| b == b' ' || b == b'\t') => Ok(command),
        Some(_) => Err(ERR_SYNTAX),
    };
    match word {
        b"ADDMESSAGE" => {
            let rest = rest.ok_or(ERR_SYNTAX)?;
            let (channel, text) = match rest.iter().position(|&b| b == b' ') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            if channel.is_empty() {
                return Err(ERR_SYNTAX);
            }
            Ok(Command::AddMessage { channel, text })
        }
        b"COUNTSUBSCRIBERS" => {
            let channel = rest
                .filter(|c| !c.is_empty() && !c.contains(&b' '))
                .ok_or(ERR_SYNTAX)?;
            Ok(Command::CountSubscribers { channel })
        }
        b"DESCRIBE" => {
            let arg = rest.ok_or(ERR_SYNTAX)?;
            let number = std::str::from_utf8(arg)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or(ERR_SYNTAX)?;
            Ok(Command::Describe(number))
        }
        b"LISTCHANNELS" => no_args(Command::ListChannels),
        b"LISTSUBSCRIBERS" => no_args(Command::ListSubscribers),
        b"LISTCONNECTIONS" => no_args(Command::ListConnections),
        b"SHOWSTATS" => no_args(Command::ShowStats),
        b"QUIT" => no_args(Command::Quit),
        _ => Err(ERR_SYNTAX),
    }
}

/// Reply line endings.
pub const EOL: &str = "\r\n";

/// `OK`, the lines, `--EOT--`, each ending in CR LF.
pub fn list_reply<I, S>(lines: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::from("OK\r\n");
    for line in lines {
        out.push_str(line.as_ref());
        out.push_str(EOL);
    }
    out.push_str("--EOT--\r\n");
    out
}

/// One LISTCHANNELS line.
pub fn channel_line(name: &str, messages: usize, subscribers: usize) -> String {
    format!("{name}({messages}/{subscribers})")
}

/// `key: value` lines.
pub fn key_values<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Vec<String> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let mut line = String::with_capacity(k.len() + v.len() + 2);
            let _ = write!(line, "{k}: {v}");
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addmessage() {
        assert_eq!(
            parse(b"ADDMESSAGE chat hello  world"),
            Ok(Command::AddMessage {
                channel: b"chat",
                text: b"hello  world"
            })
        );
        assert_eq!(
            parse(b"ADDMESSAGE chat"),
            Ok(Command::AddMessage {
                channel: b"chat",
                text: b""
            })
        );
        assert_eq!(
            parse("ADDMESSAGE c caf\u{e9} \u{1F600}\r mid-CR".as_bytes()),
            Ok(Command::AddMessage {
                channel: b"c",
                text: "caf\u{e9} \u{1F600}\r mid-CR".as_bytes()
            })
        );
        assert_eq!(parse(b"ADDMESSAGE"), Err(ERR_SYNTAX));
        assert_eq!(parse(b"ADDMESSAGE "), Err(ERR_SYNTAX));
    }

    #[test]
    fn exact_syntax_only() {
        for bad in [
            &b""[..],
            b"addmessage chat x",
            b" ADDMESSAGE chat x",
            b"LISTCHANNELS x",
            b"FOO",
            b"QUITX",
            b"DESCRIBE",
            b"DESCRIBE x",
            b"DESCRIBE -1",
            b"COUNTSUBSCRIBERS",
            b"COUNTSUBSCRIBERS a b",
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
    fn simple_commands() {
        assert_eq!(parse(b"LISTCHANNELS"), Ok(Command::ListChannels));
        assert_eq!(parse(b"LISTSUBSCRIBERS"), Ok(Command::ListSubscribers));
        assert_eq!(parse(b"LISTCONNECTIONS"), Ok(Command::ListConnections));
        assert_eq!(parse(b"SHOWSTATS"), Ok(Command::ShowStats));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse(b"QUIT  "), Ok(Command::Quit));
        assert_eq!(parse(b"DESCRIBE 12"), Ok(Command::Describe(12)));
        assert_eq!(
            parse(b"COUNTSUBSCRIBERS chat"),
            Ok(Command::CountSubscribers { channel: b"chat" })
        );
    }

    #[test]
    fn reply_formats() {
        assert_eq!(list_reply(["a(1/2)"]), "OK\r\na(1/2)\r\n--EOT--\r\n");
        assert_eq!(list_reply(Vec::<String>::new()), "OK\r\n--EOT--\r\n");
        assert_eq!(channel_line("chat", 3, 1), "chat(3/1)");
        assert_eq!(key_values([("uptime", "5".to_string())]), vec!["uptime: 5"]);
    }
}
