//! The parameter table: every parameter's name, kind, default, whether a
//! `[mode]` section may set it, and the description `-help` prints.
//!
//! Defaults are written exactly as they would be in the configuration file
//! (escapes such as `\r\n` included) and decoded by the same code as file
//! values, so `-help` shows what to type and the table cannot drift from the
//! reader.

use super::error::ConfigError;

/// What a parameter's value must look like; decides validation and the
/// placeholder `-help` prints after the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `0`/`1` (also yes/no, true/false, on/off).
    Bool,
    /// A non-negative integer no smaller than `min`.
    Count { min: u64 },
    /// A non-negative number of seconds no smaller than `min`.
    Seconds { min: u64 },
    /// A TCP/UDP port; `allow_zero` when 0 means "off".
    Port { allow_zero: bool },
    /// An IPv4 or IPv6 address.
    Ip,
    /// Free text (templates, messages): taken as is.
    Text,
    /// A non-empty file system path.
    Path,
    /// A path where empty means "none".
    OptionalPath,
    /// A user or group name where empty means "none".
    OptionalName,
    /// A URL path starting with `/`.
    UrlPath,
    /// A syslog facility name.
    Facility,
    /// A strftime-style format.
    TimeFormat,
    /// Debug level 0–255 (booleans accepted too).
    Level,
}

impl Kind {
    /// The value placeholder shown by `-help`.
    fn placeholder(self) -> &'static str {
        match self {
            Kind::Bool => "<0|1>",
            Kind::Count { .. } => "<number>",
            Kind::Seconds { .. } => "<seconds>",
            Kind::Port { .. } => "<port>",
            Kind::Ip => "<address>",
            Kind::Text => "<text>",
            Kind::Path | Kind::OptionalPath => "<path>",
            Kind::OptionalName => "<name>",
            Kind::UrlPath => "</path>",
            Kind::Facility => "<facility>",
            Kind::TimeFormat => "<format>",
            Kind::Level => "<level>",
        }
    }
}

/// One configuration parameter.
#[derive(Debug)]
pub(crate) struct Param {
    /// Canonical spelling; the file matches it exactly, the command line
    /// case-insensitively and by unique prefix.
    pub name: &'static str,
    pub kind: Kind,
    /// Default in file syntax (escapes not yet decoded).
    pub default: &'static str,
    /// May appear inside a `[mode]` section.
    pub per_mode: bool,
    pub help: &'static str,
}

macro_rules! params {
    ($( $ident:ident: $name:literal, $kind:expr, $default:literal, $per_mode:literal, $help:literal; )*) => {
        $( pub(crate) const $ident: Param = Param {
            name: $name, kind: $kind, default: $default, per_mode: $per_mode, help: $help,
        }; )*
        /// Every parameter, in the order `-help` lists them (alphabetical).
        pub(crate) const PARAMS: &[&Param] = &[ $( &$ident, )* ];
    };
}

params! {
    CHANNEL_INFO_TEMPLATE: "ChannelInfoTemplate", Kind::Text,
        r#"<script>ch("~name~", ~lastMsgID~);</script>\r\n"#, true,
        "What ~channelinfo~ in HeaderTemplate expands to, once per requested channel \
         (placeholders ~name~ ~lastMsgID~ ~subscriberCount~ ~messageCount~). Only used \
         when SendChannelInfo is 1.";
    CLOSE_ON_EVENT: "CloseOnEvent", Kind::Bool, "0", true,
        "1 = end the response as soon as at least one message has been sent (after the \
         whole backlog): long polling.";
    CONFIG_FILE_LOCATION: "ConfigFileLocation", Kind::Path, "/etc/meteord.conf", false,
        "The configuration file. If it does not exist, the built-in configuration (the \
         shipped conf/meteord.conf with its mode sections) is used; if it exists, it alone \
         decides. Only meaningful on the command line (ignored inside the file).";
    CONTROLLER_IP: "ControllerIP", Kind::Ip, "127.0.0.1", false,
        "Address the controller port listens on. Anyone who can reach it can publish; \
         the original listened on every address, we listen on loopback unless told \
         otherwise.";
    CONTROLLER_PORT: "ControllerPort", Kind::Port { allow_zero: true }, "4671", false,
        "TCP port of the controller (ADDMESSAGE, LISTCHANNELS, ...). 0 = any free port \
         (the one chosen is logged at start).";
    CONTROLLER_SHUTDOWN_MSG: "ControllerShutdownMsg", Kind::Text, "", false,
        "Text sent to every controller connection when the daemon shuts down (empty = \
         nothing).";
    DEBUG: "Debug", Kind::Level, "0", false,
        "1 or more = log debug messages to stderr and stay in the foreground. -d is short \
         for -Debug 1.";
    DIRECTORY_INDEX: "DirectoryIndex", Kind::Text, "index.html", false,
        "File served when a directory of SubscriberDocumentRoot is requested.";
    FOOTER_TEMPLATE: "FooterTemplate", Kind::Text, "</body></html>", true,
        "Sent verbatim (placeholders are not expanded) when a subscriber's response ends.";
    FOREGROUND: "Foreground", Kind::Bool, "0", false,
        "1 = do not detach from the terminal (implied by Debug and when started by \
         systemd with NOTIFY_SOCKET).";
    GROUP: "Group", Kind::OptionalName, "", false,
        "Group to switch to after binding the ports, when started as root (empty = the \
         user's primary group).";
    HEADER_TEMPLATE: "HeaderTemplate", Kind::Text, r"HTTP/1.1 ~status~\r\n\r\n~channelinfo~\r\n", true,
        "Start of a subscriber's response: the whole status line, the headers and any \
         body prefix (placeholders ~status~ ~server~ ~servertime~ ~channelinfo~; ~~ is a \
         literal ~).";
    HEADER_TIMEOUT: "HeaderTimeout", Kind::Seconds { min: 1 }, "10", false,
        "Seconds a client may take to send its request line and headers before it is \
         disconnected.";
    LOG_FILENAME: "LogFilename", Kind::OptionalPath, "", false,
        "Log to this file (reopened on SIGHUP) instead of syslog; empty = syslog.";
    LOG_TIME_FORMAT: "LogTimeFormat", Kind::TimeFormat, "%Y-%m-%d %H:%M:%S", false,
        "strftime format of the timestamps written to LogFilename.";
    MAX_CONNECTIONS: "MaxConnections", Kind::Count { min: 1 }, "100000", false,
        "Most connections (subscribers and controllers) held at once; further ones are \
         refused. Also capped by the open-files limit.";
    MAX_MESSAGE_AGE: "MaxMessageAge", Kind::Seconds { min: 0 }, "7200", false,
        "Seconds a message stays in its channel's history (0 = no age limit).";
    MAX_MESSAGES: "MaxMessages", Kind::Count { min: 0 }, "0", true,
        "End the response after this many messages (0 = no limit).";
    MAX_MESSAGES_PER_CHANNEL: "MaxMessagesPerChannel", Kind::Count { min: 1 }, "250", false,
        "Messages each channel keeps for .r/.b/.h requests and for subscribers catching up.";
    MAX_TIME: "MaxTime", Kind::Seconds { min: 0 }, "0", true,
        "End persistent responses older than this many seconds (0 = never).";
    MESSAGE_TEMPLATE: "MessageTemplate", Kind::Text,
        r#"<script>p(~id~,"~channel~","~text~");</script>\r\n"#, true,
        "One message (placeholders ~id~ ~channel~ ~text~ ~timestamp~; the text is \
         inserted as published).";
    PERSIST: "Persist", Kind::Bool, "0", true,
        "1 = keep the response open and stream messages as they arrive; 0 = send the \
         backlog and the footer, then close (polling).";
    PID_FILE: "PidFile", Kind::OptionalPath, "/var/run/meteord.pid", false,
        "File the process id is written to when the daemon detaches (empty = none).";
    PING_INTERVAL: "PingInterval", Kind::Seconds { min: 0 }, "5", true,
        "Seconds between PingMessages on persistent responses; 2 or less disables pings.";
    PING_MESSAGE: "PingMessage", Kind::Text, r#"<script>p(-1,"");</script>\r\n"#, true,
        "Sent every PingInterval seconds on persistent responses.";
    SEND_CHANNEL_INFO: "SendChannelInfo", Kind::Bool, "0", false,
        "1 = expand ~channelinfo~ with ChannelInfoTemplate. The original Meteor always \
         sent it empty (a bug clients rely on), so it is off by default.";
    SHUTDOWN_TIMEOUT: "ShutdownTimeout", Kind::Seconds { min: 0 }, "5", false,
        "Seconds SIGTERM waits for subscribers' buffers to drain before exiting.";
    STATE_FILE: "StateFile", Kind::OptionalPath, "", false,
        "File that keeps the message-id high-water mark so ids never go back across a \
         restart (empty = none: ids start from the clock).";
    SUBSCRIBER_DOCUMENT_ROOT: "SubscriberDocumentRoot", Kind::Path,
        "/usr/local/meteor/public_html", false,
        "Directory static files (meteor.js, stream.html, ...) are served from.";
    SUBSCRIBER_DYNAMIC_PAGE_ADDRESS: "SubscriberDynamicPageAddress", Kind::UrlPath, "/push", false,
        "URL prefix of subscriber streams (/push/<hostid>/<mode>/<channels>), matched \
         case-insensitively.";
    SUBSCRIBER_IP: "SubscriberIP", Kind::Ip, "0.0.0.0", false,
        "Address the subscriber (HTTP) port listens on.";
    SUBSCRIBER_PORT: "SubscriberPort", Kind::Port { allow_zero: true }, "4670", false,
        "TCP port browsers connect to. 0 = any free port (the one chosen is logged at start).";
    SUBSCRIBER_SHUTDOWN_MSG: "SubscriberShutdownMsg", Kind::Text, r"<script>eof();</script>\r\n", true,
        "Sent to a subscriber when the daemon shuts down or a newer connection with the \
         same hostid takes over.";
    SYSLOG_FACILITY: "SyslogFacility", Kind::Facility, "daemon", false,
        "syslog facility (daemon, user, local0 ... local7, ...).";
    UDP_IP: "UDPIP", Kind::Ip, "127.0.0.1", false,
        "Address the UDP publish port listens on (0.0.0.0 to receive broadcasts from \
         other nodes).";
    UDP_PORT: "UDPPort", Kind::Port { allow_zero: true }, "0", false,
        "UDP port for ADDMESSAGE datagrams (0 = off).";
    USER: "User", Kind::OptionalName, "", false,
        "User to switch to after binding the ports, when started as root (empty = stay).";
    WRITE_TIMEOUT: "WriteTimeout", Kind::Seconds { min: 1 }, "30", false,
        "Seconds a write to a subscriber may stall before that subscriber is dropped.";
}

/// The parameter spelled exactly `name` (the configuration file is
/// case-sensitive).
pub(crate) fn exact(name: &str) -> Option<&'static Param> {
    PARAMS.iter().copied().find(|p| p.name == name)
}

/// A hint for a file name that is wrong only in case.
pub(crate) fn case_hint(name: &str) -> String {
    match PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
        Some(p) => format!(
            " (did you mean {}? names in the configuration file are case-sensitive)",
            p.name
        ),
        None => String::new(),
    }
}

/// The parameter a command-line name refers to: case-insensitive, an exact
/// name first (`MaxMessages` is also a prefix of `MaxMessagesPerChannel`),
/// else the one parameter the name is a prefix of.
pub(crate) fn by_prefix(given: &str) -> Result<&'static Param, ConfigError> {
    if let Some(p) = PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(given)) {
        return Ok(p);
    }
    let lower = given.to_ascii_lowercase();
    let candidates: Vec<&'static Param> = PARAMS
        .iter()
        .copied()
        .filter(|p| p.name.to_ascii_lowercase().starts_with(&lower))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(ConfigError::UnknownParameter {
            origin: super::error::Origin::CommandLine,
            name: given.to_string(),
            hint: " (see -help)".to_string(),
        }),
        many => Err(ConfigError::AmbiguousParameter {
            given: given.to_string(),
            candidates: many
                .iter()
                .map(|p| format!("-{}", p.name))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Names of the parameters a `[mode]` section may set, for error messages.
pub(crate) fn per_mode_names() -> String {
    PARAMS
        .iter()
        .filter(|p| p.per_mode)
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Width `-help` wraps descriptions at.
const HELP_WIDTH: usize = 78;
/// Indentation of a description under its parameter line.
const HELP_INDENT: &str = "      ";

/// The `-help` text: usage, the special flags, then every parameter with
/// its description and default.
pub(crate) fn help_text() -> String {
    let mut out = String::from(
        "Usage: meteord [-Name value]...\n\
         \n\
         meteord: a Meteor-compatible Comet (server push) daemon.\n\
         \n\
         Every parameter below can be given on the command line (-Name value; names\n\
         are case-insensitive and may be shortened to any unique prefix) or in the\n\
         configuration file (Name value; names are case-sensitive there). The command\n\
         line wins over the file. Values understand the escapes \\r \\n \\t \\s (space)\n\
         \\0 (NUL) and \\\\; a value starting with -- loses one dash. Parameters marked\n\
         [mode] may also be set inside a [mode] section of the file, for that mode only;\n\
         given on the command line they set the default for every mode, and a [mode]\n\
         section of the file still overrides them.\n\
         \n\
         The defaults below are the built-in ones. When no file exists at\n\
         ConfigFileLocation, the shipped conf/meteord.conf (built in) is read as if it\n\
         had been given: it adds the mode sections iframe, xhrinteractive, longpoll,\n\
         smartpoll, simplepoll and flash, and sets StateFile.\n\
         \n\
         \x20 -d                     same as -Debug 1\n\
         \x20 -help, -h, --help      show this help and exit\n\
         \n\
         Parameters:\n",
    );
    for p in PARAMS {
        out.push_str(&format!("  -{} {}", p.name, p.kind.placeholder()));
        if p.per_mode {
            out.push_str("  [mode]");
        }
        out.push('\n');
        wrap_into(&mut out, p.help);
        if p.default.is_empty() {
            out.push_str(&format!("{HELP_INDENT}Default: (empty)\n"));
        } else {
            out.push_str(&format!("{HELP_INDENT}Default: {}\n", p.default));
        }
    }
    out
}

/// Appends `text` word-wrapped at [`HELP_WIDTH`], indented by [`HELP_INDENT`].
fn wrap_into(out: &mut String, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && HELP_INDENT.len() + line.len() + 1 + word.len() > HELP_WIDTH {
            out.push_str(HELP_INDENT);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(HELP_INDENT);
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sorted() {
        for pair in PARAMS.windows(2) {
            assert!(
                pair[0].name.to_ascii_lowercase() < pair[1].name.to_ascii_lowercase(),
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn per_mode_set_is_exactly_the_documented_one() {
        let names: Vec<&str> = PARAMS
            .iter()
            .filter(|p| p.per_mode)
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            [
                "ChannelInfoTemplate",
                "CloseOnEvent",
                "FooterTemplate",
                "HeaderTemplate",
                "MaxMessages",
                "MaxTime",
                "MessageTemplate",
                "Persist",
                "PingInterval",
                "PingMessage",
                "SubscriberShutdownMsg"
            ]
        );
    }

    #[test]
    fn every_meteor_and_own_parameter_is_in_the_table() {
        let expected = [
            "ChannelInfoTemplate",
            "CloseOnEvent",
            "ConfigFileLocation",
            "ControllerIP",
            "ControllerPort",
            "ControllerShutdownMsg",
            "Debug",
            "DirectoryIndex",
            "FooterTemplate",
            "HeaderTemplate",
            "LogFilename",
            "LogTimeFormat",
            "MaxMessageAge",
            "MaxMessages",
            "MaxMessagesPerChannel",
            "MaxTime",
            "MessageTemplate",
            "Persist",
            "PingInterval",
            "PingMessage",
            "SubscriberIP",
            "SubscriberPort",
            "SubscriberShutdownMsg",
            "SubscriberDocumentRoot",
            "SubscriberDynamicPageAddress",
            "SyslogFacility",
            "UDPIP",
            "UDPPort",
            "MaxConnections",
            "StateFile",
            "PidFile",
            "User",
            "Group",
            "Foreground",
            "SendChannelInfo",
            "HeaderTimeout",
            "WriteTimeout",
            "ShutdownTimeout",
        ];
        assert_eq!(PARAMS.len(), expected.len());
        for name in expected {
            assert!(exact(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn exact_lookup_is_case_sensitive() {
        assert!(exact("Persist").is_some());
        assert!(exact("persist").is_none());
        assert!(case_hint("persist").contains("did you mean Persist?"));
        assert_eq!(case_hint("Bogus"), "");
    }

    #[test]
    fn prefixes_resolve_case_insensitively() {
        assert_eq!(
            by_prefix("subscriberp").map(|p| p.name).ok(),
            Some("SubscriberPort")
        );
        assert_eq!(
            by_prefix("SUBSCRIBERPORT").map(|p| p.name).ok(),
            Some("SubscriberPort")
        );
        // An exact name wins even though it prefixes a longer one.
        assert_eq!(
            by_prefix("maxmessages").map(|p| p.name).ok(),
            Some("MaxMessages")
        );
        assert_eq!(
            by_prefix("maxmessagesp").map(|p| p.name).ok(),
            Some("MaxMessagesPerChannel")
        );
        assert_eq!(by_prefix("udpi").map(|p| p.name).ok(), Some("UDPIP"));
    }

    #[test]
    fn ambiguous_prefix_lists_candidates() {
        let err = by_prefix("subscriber")
            .map(|p| p.name)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ambiguous parameter -subscriber"), "{err}");
        for c in [
            "-SubscriberIP",
            "-SubscriberPort",
            "-SubscriberDocumentRoot",
        ] {
            assert!(err.contains(c), "{err}");
        }
        let err = by_prefix("maxmessage")
            .map(|p| p.name)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("-MaxMessageAge, -MaxMessages, -MaxMessagesPerChannel"),
            "{err}"
        );
    }

    #[test]
    fn unknown_command_line_name_is_named() {
        let err = by_prefix("bogus").map(|p| p.name).unwrap_err().to_string();
        assert_eq!(err, "command line: unknown parameter \"bogus\" (see -help)");
    }

    #[test]
    fn help_lists_every_parameter_with_description_and_default() {
        let help = help_text();
        for p in PARAMS {
            let head = format!("  -{} {}", p.name, p.kind.placeholder());
            let at = help
                .find(&head)
                .unwrap_or_else(|| panic!("{} not listed", p.name));
            let block = &help[at..];
            let block = &block[..block.find("Default:").expect("default line")];
            let first_word = p.help.split_whitespace().next().expect("help text");
            assert!(
                block.contains(first_word),
                "{} lacks its description",
                p.name
            );
            let default = if p.default.is_empty() {
                "(empty)"
            } else {
                p.default
            };
            assert!(
                help[at..].contains(&format!("Default: {default}\n")),
                "{} lacks its default",
                p.name
            );
        }
        assert!(help.contains("-d "));
        assert!(help.contains("Default: 4670\n"));
        assert!(help.contains(r"Default: HTTP/1.1 ~status~\r\n\r\n~channelinfo~\r\n"));
    }

    #[test]
    fn help_lines_stay_narrow() {
        for line in help_text().lines() {
            // Defaults are printed whole; only prose is wrapped.
            if !line.trim_start().starts_with("Default:") {
                assert!(line.len() <= HELP_WIDTH + 2, "too wide: {line}");
            }
        }
    }
}
