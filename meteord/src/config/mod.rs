//! Configuration: Meteor's command line (`-Name value`) and file format
//! (`Name value` lines, `[mode]` sections), merged into one validated
//! [`Config`]. Whatever the original starts on, ours starts on with the
//! same meaning; whatever it refuses, ours refuses with a message naming
//! the file and line (tests/config_fidelity.rs pins both).
//!
//! Owns: the parameter table (names, defaults, descriptions, which ones may
//! appear in a `[mode]` section), the file reader, the command-line reader,
//! and the built-in configuration used when no file exists (the shipped
//! `conf/meteord.conf`, embedded at compile time).

mod build;
mod cli;
mod error;
mod help;
mod manpage;
mod ops;
mod params;
mod parse;
mod perl;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use cli::{CommandLine, Invocation};
pub use error::{ConfigError, Origin};
pub use ops::LimitSettings;

/// The shipped, commented configuration. Used as is when no file exists at
/// `ConfigFileLocation`, so the daemon serves every mode out of the box.
pub const BUILTIN_CONF: &str = include_str!("../../../conf/meteord.conf");

/// How the built-in configuration is named in error messages.
const BUILTIN_ORIGIN: &str = "built-in conf/meteord.conf";

/// Per-mode behaviour and templates: the defaults outside any section,
/// overridden by the keys of a `[mode]` section.
///
/// Template strings are stored after escape processing (`\r\n` already real
/// CR LF); `template.rs` compiles them into placeholder segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSettings {
    /// The section name (`""` for the defaults).
    pub name: String,
    pub persist: bool,
    pub close_on_event: bool,
    /// Close after this many messages; 0 = unlimited.
    pub max_messages: u64,
    /// Close persistent connections older than this many seconds; 0 = never.
    pub max_time: u64,
    /// Seconds between pings; values <= 2 disable pings.
    pub ping_interval: u64,
    pub header_template: String,
    pub message_template: String,
    pub channel_info_template: String,
    pub ping_message: String,
    pub footer_template: String,
    pub subscriber_shutdown_msg: String,
    // eventsource (issue 12)
    /// Milliseconds in an eventsource stream's `retry:` field; 0 = none.
    pub event_source_retry: u64,
    /// EventSourceAllowOrigin: a global parameter, carried by every mode
    /// so the eventsource framing compiles from its mode alone.
    pub event_source_allow_origin: String,
}

/// The mode table: defaults plus every `[mode]` section, already merged.
#[derive(Debug, Clone)]
pub struct Modes {
    pub default: Arc<ModeSettings>,
    /// Case-sensitive section names, as Meteor looks them up.
    pub named: HashMap<String, Arc<ModeSettings>>,
}

impl Modes {
    /// The settings for `mode`; an unknown mode gets the defaults.
    pub fn get(&self, mode: &str) -> &Arc<ModeSettings> {
        self.named.get(mode).unwrap_or(&self.default)
    }
}

/// Everything the daemon needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this configuration came from; `None` = the built-in one
    /// (no file existed at `ConfigFileLocation`).
    pub source: Option<PathBuf>,
    pub config_file_location: PathBuf,

    // --- Meteor's own parameters -------------------------------------
    pub subscriber_ip: IpAddr,
    pub subscriber_port: u16,
    pub controller_ip: IpAddr,
    pub controller_port: u16,
    /// UDP publish address; port 0 = off.
    pub udp_ip: IpAddr,
    pub udp_port: u16,
    /// `None` = no documents (SubscriberDocumentRoot empty or `/`).
    pub subscriber_document_root: Option<PathBuf>,
    pub directory_index: String,
    /// Prefix of subscriber stream URLs (`/push`), matched case-insensitively.
    pub subscriber_dynamic_page_address: String,
    /// Seconds a message stays in a channel's history.
    pub max_message_age: u64,
    /// How many messages a channel keeps for `.b` / `.h` / `.r`.
    pub max_messages_per_channel: usize,
    /// Sent to controller connections when the daemon shuts down (may be empty).
    pub controller_shutdown_msg: String,
    /// 0 = quiet; >= 1 = debug logging to stderr and stay in the foreground.
    pub debug: u8,
    /// Log to this file instead of syslog (reopened on SIGHUP).
    pub log_filename: Option<PathBuf>,
    /// strftime-style format for timestamps in the log file (`unix` and
    /// `human` already turned into one).
    pub log_time_format: String,
    /// syslog facility name (`daemon`, `local0` … `local7`, `user`);
    /// `None` = `SyslogFacility none`: no syslog at all.
    pub syslog_facility: Option<String>,

    // --- Parameters of ours (same style) ------------------------------
    /// Most connections (subscriber + controller) held at once.
    pub max_connections: usize,
    /// File that keeps the message-id high-water mark across restarts;
    /// `None` = ids start from the clock (microseconds since the epoch).
    pub state_file: Option<PathBuf>,
    /// Pid file written when the daemon detaches; `None` = none.
    pub pid_file: Option<PathBuf>,
    /// Drop to this user (and group) after binding, when started as root.
    pub user: Option<String>,
    pub group: Option<String>,
    /// Stay in the foreground (also set by `SyslogFacility none`, and
    /// implied by Debug and by systemd's NOTIFY_SOCKET).
    pub foreground: bool,
    /// Expand `~channelinfo~` with ChannelInfoTemplate (the original never
    /// did, because of a bug; off by default so old clients see no change).
    pub send_channel_info: bool,
    /// Seconds a client may take to send its request headers.
    pub header_timeout: u64,
    /// Seconds a write to a subscriber may stall before the subscriber is dropped.
    pub write_timeout: u64,
    /// Seconds SIGTERM waits for subscribers' buffers to drain.
    pub shutdown_timeout: u64,
    // history (issue 14)
    /// `HistoryFile`: where acknowledged messages are appended; `None` = off.
    pub history_file: Option<PathBuf>,
    /// `HistoryFsync`.
    pub history_fsync: crate::persist::FsyncPolicy,

    // cluster broker (issue 13)
    /// `ClusterRedis`: the Redis URL of the cluster; `None` = a single node.
    pub cluster_redis: Option<String>,
    /// subscriber tokens (issue 14): which channels need a token, and the
    /// secret (kept out of Debug output).
    pub subscriber_tokens: crate::subscriber::token::TokenRules,

    /// Lines and values accepted but without effect or read differently
    /// from how they look (`file:line: …`), for the log at start.
    pub notes: Vec<String>,

    /// Per-mode settings.
    pub modes: Modes,

    // ops (issue 14)
    /// ControllerAllow, the named limits, the metrics listener.
    pub limits: LimitSettings,
}

/// Reads `ConfigFileLocation` (from the command line, default
/// `/etc/meteord.conf`); if no regular file exists there (nothing, a
/// directory, a device: the original then reads no file either), uses
/// [`BUILTIN_CONF`] (`Config::source` is then `None`); then applies the
/// command-line overrides (the command line wins over the file) and
/// validates.
///
/// A regular file that cannot be read is an error, not a reason to fall
/// back to the built-in configuration: that would silently run with
/// settings the operator did not choose (the original refuses it too).
pub fn load(cli: &CommandLine) -> Result<Config, ConfigError> {
    let path = cli.config_file_location();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            let mut config = load_builtin(cli)?;
            config.notes.insert(
                0,
                format!(
                    "{} is not a regular file: using the built-in configuration, as the \
                     original reads no file then",
                    path.display()
                ),
            );
            return Ok(config);
        }
        Err(_) => return load_builtin(cli),
    }
    let bytes = read_bounded(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let origin = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| {
        let bad_at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..bad_at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        ConfigError::NotUtf8 {
            origin: Origin::File {
                file: Arc::from(origin.as_str()),
                line,
            },
        }
    })?;
    let doc = parse::parse_document(&text, &origin)?;
    build::build(&doc, cli, Some(path.to_path_buf()))
}

/// Largest configuration file accepted. The shipped one is about 14 KB; a
/// megabyte leaves room for any real file while keeping a mistaken
/// multi-gigabyte file from eating memory.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads the whole file, refusing one larger than [`MAX_CONFIG_BYTES`].
fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Like [`load`], from text: `origin` names it in error messages and
/// becomes `Config::source`.
pub fn load_from_text(text: &str, origin: &str, cli: &CommandLine) -> Result<Config, ConfigError> {
    let doc = parse::parse_document(text, origin)?;
    build::build(&doc, cli, Some(PathBuf::from(origin)))
}

/// The built-in configuration ([`BUILTIN_CONF`]) with the command-line
/// overrides; `Config::source` is `None`.
pub fn load_builtin(cli: &CommandLine) -> Result<Config, ConfigError> {
    let doc = parse::parse_document(BUILTIN_CONF, BUILTIN_ORIGIN)?;
    build::build(&doc, cli, None)
}

/// The `-help` text (also returned by [`CommandLine::parse`] as
/// [`Invocation::Help`]).
pub fn help_text() -> String {
    help::help_text()
}

/// The command line the tests, the deployment and the docs use to start a
/// daemon on fixed loopback ports (tested by `cli` and `tests`).
#[cfg(test)]
const CONTRACT_ARGS: &[&str] = &[
    "-Foreground",
    "1",
    "-ConfigFileLocation",
    "/nonexistent",
    "-SubscriberIP",
    "127.0.0.1",
    "-SubscriberPort",
    "34670",
    "-ControllerPort",
    "34671",
    "-SubscriberDocumentRoot",
    "/srv/meteord/public",
    "-StateFile",
    "/tmp/x.state",
];

#[cfg(test)]
mod original_tests;
#[cfg(test)]
mod shipped_tests;
#[cfg(test)]
mod tests;
