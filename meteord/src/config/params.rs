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
    /// Ours: `0`/`1` (also yes/no, true/false, on/off).
    Bool,
    /// The original's switches: any text but empty and `0` is on (Perl's
    /// truth).
    Flag,
    /// The original's numbers: Perl's numeric value of the text (never
    /// refused; see `build.rs` for what each one makes of 0 and below).
    Number,
    /// A non-negative integer no smaller than `min`.
    Count { min: u64 },
    /// A non-negative number of seconds no smaller than `min`.
    Seconds { min: u64 },
    /// A TCP/UDP port, read as the original reads it (a number cut to 16
    /// bits; 0 means any free port, or off for UDP).
    Port,
    /// An IPv4 or IPv6 address or a host name; empty = every address.
    Ip,
    /// Free text (templates, messages): taken as is.
    Text,
    /// A file system path.
    Path,
    /// A path where empty means "none".
    OptionalPath,
    /// A user or group name where empty means "none".
    OptionalName,
    /// A URL path prefix (taken as is, as the original does).
    UrlPath,
    /// A syslog facility name, or `none`.
    Facility,
    /// `unix`, `human` or a strftime-style format.
    TimeFormat,
    /// Debug level: Perl-false text is 0, any other its number (at least 1).
    Level,
    /// A `redis://` or `rediss://` URL, or empty for none (ClusterRedis).
    RedisUrl,
    /// One of a few words (`HistoryFsync`), shown as `placeholder`.
    Choice {
        words: &'static [&'static str],
        placeholder: &'static str,
    },
    /// White-space separated `address/prefix` networks (ControllerAllow).
    Networks,
}

impl Kind {
    /// The value placeholder shown by `-help`.
    pub(crate) fn placeholder(self) -> &'static str {
        match self {
            Kind::Bool | Kind::Flag => "<0|1>",
            Kind::Number => "<number>",
            Kind::Count { .. } => "<number>",
            Kind::Seconds { .. } => "<seconds>",
            Kind::Port => "<port>",
            Kind::Ip => "<address>",
            Kind::Text => "<text>",
            Kind::Path | Kind::OptionalPath => "<path>",
            Kind::OptionalName => "<name>",
            Kind::UrlPath => "</path>",
            Kind::Facility => "<facility>",
            Kind::TimeFormat => "<format>",
            Kind::Level => "<level>",
            Kind::RedisUrl => "<redis://host:port/db>",
            Kind::Choice { placeholder, .. } => placeholder,
            Kind::Networks => "<cidr>...",
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
        /// Every parameter, in the order of the table (see [`sorted`] for
        /// the order `-help` lists them in).
        pub(crate) const PARAMS: &[&Param] = &[ $( &$ident, )* ];
    };
}

params! {
    CHANNEL_INFO_TEMPLATE: "ChannelInfoTemplate", Kind::Text,
        r#"<script>ch("~name~", ~lastMsgID~);</script>\r\n"#, true,
        "What ~channelinfo~ in HeaderTemplate expands to, once per requested channel \
         (placeholders ~name~ ~lastMsgID~ ~subscriberCount~ ~messageCount~). Only used \
         when SendChannelInfo is 1.";
    CLOSE_ON_EVENT: "CloseOnEvent", Kind::Flag, "0", true,
        "1 = end the response as soon as at least one message has been sent (after the \
         whole backlog): long polling.";
    // cluster broker (issue 13); here and not at the end because -help
    // lists the table in alphabetical order (names_are_unique_and_sorted).
    CLUSTER_REDIS: "ClusterRedis", Kind::RedisUrl, "", false,
        "Run as one node of a cluster on Redis: redis://[:password@]host:port/db or \
         rediss://... (TLS). Every node then takes message ids from one cluster-wide \
         sequence, shares the channel histories (bounded by MaxMessagesPerChannel and \
         MaxMessageAge) and delivers every message published on any node. Empty = a \
         single node with no Redis at all. Needs a restart to change.";
    CONFIG_FILE_LOCATION: "ConfigFileLocation", Kind::Path, "/etc/meteord.conf", false,
        "The configuration file. If it does not exist (or the name is empty), the \
         built-in configuration (the shipped conf/meteord.conf with its mode sections) is \
         used; if it exists, it alone decides. Command line only: a file that sets it is \
         refused, as by the original.";
    CONTROLLER_IP: "ControllerIP", Kind::Ip, "127.0.0.1", false,
        "Address the controller port listens on (an address or a host name; empty = every \
         local address). Anyone who can reach it can publish; the original listened on \
         every address by default, we listen on loopback unless told otherwise.";
    CONTROLLER_PORT: "ControllerPort", Kind::Port, "4671", false,
        "TCP port of the controller (ADDMESSAGE, LISTCHANNELS, ...). 0 = any free port \
         (the one chosen is logged at start).";
    CONTROLLER_SHUTDOWN_MSG: "ControllerShutdownMsg", Kind::Text, "", false,
        "Text sent to every controller connection when the daemon shuts down (empty = \
         nothing).";
    DEBUG: "Debug", Kind::Level, "0", false,
        "Anything but empty or 0 = log debug messages to stderr and stay in the \
         foreground. -d is short for -Debug (with no value: 1).";
    DIRECTORY_INDEX: "DirectoryIndex", Kind::Text, "index.html", false,
        "File served when a directory of SubscriberDocumentRoot is requested (never one \
         outside the document root).";
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
    // history (issue 14)
    HISTORY_FILE: "HistoryFile", Kind::OptionalPath, "", false,
        "File every acknowledged message is appended to (before its OK), so the channels' \
         histories survive a restart or a crash (empty = none: histories start empty). \
         Compacted in the background; SIGUSR1 empties it. See docs/history.md.";
    HISTORY_FSYNC: "HistoryFsync",
        Kind::Choice { words: &["always", "everysec", "no"], placeholder: "<always|everysec|no>" },
        "everysec", false,
        "When HistoryFile reaches the disk: always (before each OK; concurrent publishes \
         share one fsync), everysec (once a second: a power cut loses at most about a \
         second; a crash of meteord alone loses nothing) or no (when the kernel writes).";
    LOG_FILENAME: "LogFilename", Kind::OptionalPath, "", false,
        "With Debug on or SyslogFacility none: log to this file (reopened on SIGHUP) \
         instead of stderr. Otherwise every line goes to syslog and this is not used, as \
         in the original.";
    LOG_TIME_FORMAT: "LogTimeFormat", Kind::TimeFormat, "%Y-%m-%d %H:%M:%S", false,
        "Timestamps of the lines written to LogFilename or stderr: unix (seconds since \
         the epoch), human (Tue Dec  1 07:30:04 2026), or a strftime format. Any other \
         value is human, as in the original.";
    MAX_CONNECTIONS: "MaxConnections", Kind::Count { min: 1 }, "100000", false,
        "Most connections (subscribers and controllers) held at once; further ones are \
         refused. Also capped by the open-files limit.";
    MAX_MESSAGE_AGE: "MaxMessageAge", Kind::Number, "7200", false,
        "Seconds a message stays in its channel's history (checked once a minute; 0 or \
         less = messages go at the next check).";
    MAX_MESSAGES: "MaxMessages", Kind::Count { min: 0 }, "0", true,
        "End the response after this many messages (0 = no limit).";
    MAX_MESSAGES_PER_CHANNEL: "MaxMessagesPerChannel", Kind::Number, "250", false,
        "Messages each channel keeps for .r/.b/.h requests and for subscribers catching up \
         (0 = no limit but MaxMessageAge; less than 0 = none).";
    MAX_TIME: "MaxTime", Kind::Number, "0", true,
        "End persistent responses older than this many seconds (0 or less = never).";
    MESSAGE_TEMPLATE: "MessageTemplate", Kind::Text,
        r#"<script>p(~id~,"~channel~","~text~");</script>\r\n"#, true,
        "One message (placeholders ~id~ ~channel~ ~text~ ~timestamp~; the text is \
         inserted as published).";
    PERSIST: "Persist", Kind::Flag, "0", true,
        "1 = keep the response open and stream messages as they arrive; 0 = send the \
         backlog and the footer, then close (polling). As for CloseOnEvent, any value but \
         empty or 0 means 1, as in the original.";
    PID_FILE: "PidFile", Kind::OptionalPath, "/var/run/meteord.pid", false,
        "File the process id is written to when the daemon detaches (empty = none).";
    PING_INTERVAL: "PingInterval", Kind::Number, "5", true,
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
    SUBSCRIBER_DOCUMENT_ROOT: "SubscriberDocumentRoot", Kind::OptionalPath,
        "/usr/local/meteor/public_html", false,
        "Directory static files (meteor.js, stream.html, ...) are served from. Empty or / \
         = no documents: every document request is answered not found.";
    SUBSCRIBER_DYNAMIC_PAGE_ADDRESS: "SubscriberDynamicPageAddress", Kind::UrlPath, "/push", false,
        "URL prefix of subscriber streams (/push/<hostid>/<mode>/<channels>), matched \
         case-insensitively (empty = streams at the root).";
    SUBSCRIBER_IP: "SubscriberIP", Kind::Ip, "0.0.0.0", false,
        "Address the subscriber (HTTP) port listens on.";
    SUBSCRIBER_PORT: "SubscriberPort", Kind::Port, "4670", false,
        "TCP port browsers connect to. 0 = any free port (the one chosen is logged at \
         start). As in the original, a value is read as a number (abc is 0) and cut to 16 \
         bits (70000 is 4464).";
    SUBSCRIBER_SHUTDOWN_MSG: "SubscriberShutdownMsg", Kind::Text, r"<script>eof();</script>\r\n", true,
        "Sent to a subscriber when the daemon shuts down or a newer connection with the \
         same hostid takes over.";
    // subscriber tokens (issue 14); here, not at the end, because the
    // table is alphabetical (names_are_unique_and_sorted).
    SUBSCRIBER_TOKEN_CHANNELS: "SubscriberTokenChannels", Kind::Text, "", false,
        "Channels a subscriber may read only with a token signed with \
         SubscriberTokenSecret: shell-style patterns separated by spaces (private-* \
         room?? [a-c]*). Empty = no channel needs one. See docs/tokens.md.";
    SUBSCRIBER_TOKEN_SECRET: "SubscriberTokenSecret", Kind::Text, "", false,
        "The HS256 key the tokens of SubscriberTokenChannels are signed with (at least 32 \
         bytes of random text is best). Empty with SubscriberTokenChannels set = those \
         channels are refused to everyone.";
    SYSLOG_FACILITY: "SyslogFacility", Kind::Facility, "daemon", false,
        "syslog facility (daemon, user, local0 ... local7, ...; a name syslog does not \
         know logs as user). none = no syslog: log to LogFilename (or stderr) and stay in \
         the foreground, as the original does.";
    UDP_IP: "UDPIP", Kind::Ip, "127.0.0.1", false,
        "Address the UDP publish port listens on (0.0.0.0 or empty to receive broadcasts \
         from other nodes).";
    UDP_PORT: "UDPPort", Kind::Port, "0", false,
        "UDP port for ADDMESSAGE datagrams (0, or anything that is not a number above 0, \
         = off).";
    USER: "User", Kind::OptionalName, "", false,
        "User to switch to after binding the ports, when started as root (empty = stay).";
    WRITE_TIMEOUT: "WriteTimeout", Kind::Seconds { min: 1 }, "30", false,
        "Seconds a write to a subscriber may stall before that subscriber is dropped.";
    // eventsource (issue 12)
    EVENT_SOURCE_ALLOW_ORIGIN: "EventSourceAllowOrigin", Kind::Text, "*", false,
        "Access-Control-Allow-Origin of eventsource streams: the origin whose pages may \
         read them (* = any; credentials are never allowed, so cookies are not sent \
         cross-origin).";
    EVENT_SOURCE_RETRY: "EventSourceRetry", Kind::Count { min: 0 }, "3000", true,
        "Milliseconds an eventsource client waits before it reconnects (sent as the \
         stream's retry field; 0 = none, the browser's own delay). Set so every browser \
         resumes a stream that ended (MaxTime, restart) at the same, known pace.";
    // ops (issue 14): publisher protection, named limits, metrics.
    CONTROLLER_ALLOW: "ControllerAllow", Kind::Networks, "127.0.0.0/8 ::1", false,
        "Networks (address/prefix, white-space separated; a bare address is one host) \
         whose peers may use the controller port and UDP publish; anyone else is closed at \
         accept (logged once per address per minute). Anyone who can publish can put \
         script into every subscriber's page, so loopback only unless told otherwise.";
    CONTROLLER_IDLE_TIMEOUT: "ControllerIdleTimeout", Kind::Seconds { min: 0 }, "0", false,
        "Seconds a controller connection may send nothing before it is closed (0 = never: \
         publishers such as fcgi-chat keep one connection open for hours, and the original \
         never closed one).";
    CONTROLLER_MAX_LINE: "ControllerMaxLine", Kind::Count { min: 1024 }, "1052672", false,
        "Longest controller line in bytes; a longer one is answered ERR Line too long and \
         the connection closed. Room for a MaxMessageSize message with its command and \
         channel (1 MiB + 4 KiB).";
    MAX_CHANNEL_NAME_LENGTH: "MaxChannelNameLength", Kind::Count { min: 1 }, "256", false,
        "Longest channel name in bytes, for subscribers (400 Bad Request) and publishers \
         (ERR Channel name too long). Names are keys of memory held per channel.";
    MAX_CHANNELS_PER_REQUEST: "MaxChannelsPerRequest", Kind::Count { min: 1 }, "64", false,
        "Most channels one subscriber request may join; more are answered 400 Bad \
         Request. A page needs a few; each joined channel costs memory and work per \
         publish.";
    MAX_CONNECTIONS_PER_IP: "MaxConnectionsPerIP", Kind::Count { min: 0 }, "0", false,
        "Most subscriber connections from one client address; further ones get 503 \
         (0 = no limit). Behind a reverse proxy on the same machine every client is \
         127.0.0.1: leave it 0 there and limit at the proxy (nginx limit_conn).";
    MAX_HEADER_BYTES: "MaxHeaderBytes", Kind::Count { min: 1024 }, "32768", false,
        "Most bytes of a subscriber's request line and headers; past it the request is \
         given up as at HeaderTimeout. Far above a real browser's request with its cookies.";
    MAX_MESSAGE_SIZE: "MaxMessageSize", Kind::Count { min: 1 }, "1048576", false,
        "Largest message text in bytes, from the controller (ERR Message too large) or \
         UDP (dropped, logged). Every message is held in its channel's history and sent to \
         every subscriber.";
    METRICS_IP: "MetricsIP", Kind::Ip, "127.0.0.1", false,
        "Address the Prometheus metrics listener (GET /metrics) binds to.";
    METRICS_PORT: "MetricsPort", Kind::Port, "4672", false,
        "TCP port of the Prometheus metrics listener (0 = off).";
    // websocket (issue 12)
    WEBSOCKET_MAX_MESSAGE: "WebSocketMaxMessage", Kind::Count { min: 125 }, "65536", false,
        "Largest WebSocket message a client may send, in bytes; a bigger one closes the \
         connection (1009). Clients only send small control frames.";
    WEBSOCKET_MAX_RATE: "WebSocketMaxRate", Kind::Count { min: 1 }, "20", false,
        "Most WebSocket frames a client may send per second; more close the connection \
         (1008). A browser sends a few (subscribe, pong); a flood is not a browser.";
}

/// Every parameter in the order `-help` and the manual list them
/// (alphabetical, case-insensitively), whatever order the table has them.
pub(crate) fn sorted() -> Vec<&'static Param> {
    let mut all: Vec<&'static Param> = PARAMS.to_vec();
    all.sort_by_key(|p| p.name.to_ascii_lowercase());
    all
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

/// The original's `Help` parameter: on the command line it shows the help;
/// in a file it is accepted and means nothing.
pub(crate) const HELP_NAME: &str = "Help";

/// The original's parameter names (its `Help` included). A command-line
/// name is resolved against these first, so every abbreviation the original
/// accepts means the same parameter here (`-f` is FooterTemplate, `-hea`
/// HeaderTemplate, `-maxmessages` MaxMessagesPerChannel) and every one it
/// calls ambiguous (`-h`, `-D`, `-Pi`) is refused; only names that match
/// none of them are looked up among ours.
const ORIGINAL_NAMES: &[&str] = &[
    "ChannelInfoTemplate",
    "ConfigFileLocation",
    "ControllerIP",
    "ControllerPort",
    "ControllerShutdownMsg",
    "Debug",
    "DirectoryIndex",
    "FooterTemplate",
    "HeaderTemplate",
    HELP_NAME,
    "LogTimeFormat",
    "MaxMessageAge",
    "CloseOnEvent",
    "MaxMessagesPerChannel",
    "MaxTime",
    "MessageTemplate",
    "PingInterval",
    "Persist",
    "PingMessage",
    "SubscriberIP",
    "SubscriberPort",
    "SubscriberShutdownMsg",
    "SubscriberDocumentRoot",
    "SubscriberDynamicPageAddress",
    "SyslogFacility",
    "LogFilename",
    "UDPIP",
    "UDPPort",
];

/// What a command-line name refers to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resolved {
    Help,
    Param(&'static Param),
}

/// The one name in `names` that `given` spells (case-insensitively) or, if
/// none, abbreviates; `Ok(None)` if it matches none; an error if it
/// abbreviates several.
fn unique_match(given: &str, names: &[&'static str]) -> Result<Option<&'static str>, ConfigError> {
    if let Some(exact) = names.iter().find(|n| n.eq_ignore_ascii_case(given)) {
        return Ok(Some(exact));
    }
    let lower = given.to_ascii_lowercase();
    let candidates: Vec<&'static str> = names
        .iter()
        .copied()
        .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
        .collect();
    match candidates.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(ConfigError::AmbiguousParameter {
            given: given.to_string(),
            candidates: many
                .iter()
                .map(|n| format!("-{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The parameter a command-line name refers to: the original's names first
/// (see [`ORIGINAL_NAMES`]), then ours, each case-insensitively, an exact
/// name before an abbreviation.
pub(crate) fn resolve(given: &str) -> Result<Resolved, ConfigError> {
    let name = match unique_match(given, ORIGINAL_NAMES)? {
        Some(name) => name,
        None => {
            let ours: Vec<&'static str> = PARAMS.iter().map(|p| p.name).collect();
            unique_match(given, &ours)?.ok_or_else(|| ConfigError::UnknownParameter {
                origin: super::error::Origin::CommandLine,
                name: given.to_string(),
                hint: match given.strip_prefix('-') {
                    Some(rest) => format!(" (parameters take one dash: -{rest})"),
                    None => " (see -help)".to_string(),
                },
            })?
        }
    };
    if name == HELP_NAME {
        return Ok(Resolved::Help);
    }
    exact(name)
        .map(Resolved::Param)
        .ok_or_else(|| ConfigError::UnknownParameter {
            origin: super::error::Origin::CommandLine,
            name: given.to_string(),
            hint: " (see -help)".to_string(),
        })
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

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
