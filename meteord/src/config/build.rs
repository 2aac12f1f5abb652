//! Turns a parsed file plus command-line overrides into a validated
//! [`Config`]: layers the values (table default < file < command line, and
//! for one mode: the file's `[mode]` section over all of those, and
//! `-Name.mode` over that), then converts each one to its type.
//!
//! The original's parameters are read as the original reads them (see
//! [`super::perl`]): it never refuses a value, so neither do we, except
//! where the original itself fails to start (an empty port, an address that
//! does not resolve). A value read differently from how it looks (`Persist
//! off` is on, `SubscriberPort 70000` is port 4464) is reported in
//! `Config::notes`. Our own parameters are checked strictly and a bad value
//! names the origin, parameter and value.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::cli::CommandLine;
use super::error::{ConfigError, Origin};
use super::params::{self as p, Kind, Param};
use super::parse::{Document, Section, Setting, Settings, decode_value};
use super::perl;
use super::{Config, ModeSettings, Modes};
use crate::subscriber::token::TokenRules;

/// Boolean spellings accepted besides `0`/`1` for our own switches,
/// compared case-insensitively.
const TRUE_WORDS: [&str; 4] = ["1", "yes", "true", "on"];
const FALSE_WORDS: [&str; 4] = ["0", "no", "false", "off"];

/// The original's `human` log time: `localtime` printed by Perl
/// (`Tue Dec  1 07:30:04 2026`).
pub(crate) const HUMAN_TIME_FORMAT: &str = "%a %b %e %H:%M:%S %Y";
/// The original's `unix` log time: seconds since the epoch.
pub(crate) const UNIX_TIME_FORMAT: &str = "%s";

/// `SyslogFacility none`: no syslog at all (the original then logs to
/// LogFilename and stays in the foreground).
pub(crate) const NO_SYSLOG: &str = "none";

/// A layered view of the values that apply in one scope (global, or one
/// mode); anything not set falls back to the table default.
pub(super) struct Values<'a> {
    layers: Vec<&'a Settings>,
}

impl Values<'_> {
    /// The effective value of `param` and where it came from.
    fn setting(&self, param: &'static Param) -> Setting {
        self.layers
            .iter()
            .rev()
            .find_map(|layer| layer.get(param.name).cloned())
            .unwrap_or_else(|| Setting {
                value: decode_value(param.default),
                origin: Origin::Default,
            })
    }

    /// Converts `param`'s value, or builds the error naming it.
    pub(super) fn get<T>(
        &self,
        param: &'static Param,
        convert: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let setting = self.setting(param);
        convert(&setting.value).map_err(|reason| ConfigError::InvalidValue {
            origin: setting.origin,
            name: param.name,
            value: setting.value,
            reason,
        })
    }

    fn text(&self, param: &'static Param) -> String {
        self.setting(param).value
    }

    /// One of our switches: 0/1 and the usual words, strictly.
    fn bool(&self, param: &'static Param) -> Result<bool, ConfigError> {
        debug_assert_eq!(param.kind, Kind::Bool);
        self.get(param, parse_bool)
    }

    /// One of the original's switches: Perl's truth of the text.
    fn flag(&self, param: &'static Param, notes: &mut Notes) -> bool {
        debug_assert_eq!(param.kind, Kind::Flag);
        let setting = self.setting(param);
        let on = perl::truthy(&setting.value);
        if setting.value != "0" && setting.value != "1" {
            notes.read_as(param, &setting, if on { "1 (on)" } else { "0 (off)" });
        }
        on
    }

    /// One of the original's numbers: Perl's numeric value of the text.
    fn perl_number(&self, param: &'static Param, notes: &mut Notes) -> f64 {
        debug_assert_eq!(param.kind, Kind::Number);
        let setting = self.setting(param);
        let n = perl::number(&setting.value);
        if !perl::is_plain_number(&setting.value) {
            notes.read_as(param, &setting, &n.to_string());
        }
        n
    }

    /// One of our counts: a whole number no smaller than the kind's minimum.
    pub(super) fn number(&self, param: &'static Param) -> Result<u64, ConfigError> {
        let min = match param.kind {
            Kind::Count { min } | Kind::Seconds { min } => min,
            _ => 0,
        };
        self.get(param, |v| {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| "expected a whole number of 0 or more".to_string())?;
            if n < min {
                return Err(format!("must be at least {min}"));
            }
            Ok(n)
        })
    }

    /// A TCP port as the original binds it: an empty value (or `0`, which
    /// is ours for "any free port") as is; otherwise the text's number,
    /// truncated to 16 bits as the socket library does.
    fn port(&self, param: &'static Param, notes: &mut Notes) -> Result<u16, ConfigError> {
        let setting = self.setting(param);
        if setting.value.is_empty() {
            return Err(ConfigError::InvalidValue {
                origin: setting.origin,
                name: param.name,
                value: setting.value,
                reason: "a port number is required".to_string(),
            });
        }
        let port = low_16_bits(perl::integer(&setting.value));
        if setting.value != port.to_string() {
            notes.read_as(param, &setting, &port.to_string());
        }
        Ok(port)
    }

    /// A port of ours: a whole number 0 to 65535, strictly (0 = off).
    pub(super) fn plain_port(&self, param: &'static Param) -> Result<u16, ConfigError> {
        self.get(param, |v| {
            v.trim()
                .parse::<u16>()
                .map_err(|_| "expected a port number from 0 to 65535".to_string())
        })
    }

    /// The UDP port: on only if the value is a number above 0 (else off, as
    /// in the original).
    fn udp_port(&self, param: &'static Param, notes: &mut Notes) -> u16 {
        let setting = self.setting(param);
        let n = perl::number(&setting.value);
        let port = if n > 0.0 {
            low_16_bits(perl::integer(&setting.value))
        } else {
            0
        };
        if setting.value != port.to_string() {
            let meaning = match port {
                0 => "0 (off)".to_string(),
                port => port.to_string(),
            };
            notes.read_as(param, &setting, &meaning);
        }
        port
    }

    /// An address to listen on: empty = every local address (as in the
    /// original), an IPv4 or IPv6 address, or a host name resolved to its
    /// first IPv4 address (the original resolves names the same way).
    pub(super) fn ip(&self, param: &'static Param) -> Result<IpAddr, ConfigError> {
        self.get(param, |v| {
            let v = v.trim();
            if v.is_empty() {
                return Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            }
            if let Ok(ip) = IpAddr::from_str(v) {
                return Ok(ip);
            }
            (v, 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.find(|a| a.is_ipv4()))
                .map(|a| a.ip())
                .ok_or_else(|| {
                    "not an address, and no IPv4 address found for it as a host name".to_string()
                })
        })
    }

    /// Empty means "none".
    fn optional_path(&self, param: &'static Param) -> Option<PathBuf> {
        Some(self.text(param))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    fn optional_name(&self, param: &'static Param) -> Result<Option<String>, ConfigError> {
        self.get(param, |v| {
            if v.is_empty() {
                Ok(None)
            } else if v
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ':')
            {
                Err("expected a user or group name without blanks".to_string())
            } else {
                Ok(Some(v.to_string()))
            }
        })
    }
}

/// Lines for the log about values read differently from how they look.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn read_as(&mut self, param: &'static Param, setting: &Setting, meaning: &str) {
        let line = format!(
            "{}: {} {:?} is read as {meaning}, as the original reads it",
            setting.origin, param.name, setting.value
        );
        if !self.0.contains(&line) {
            self.0.push(line);
        }
    }
}

/// The port a socket library makes of a number: its low 16 bits.
fn low_16_bits(n: i64) -> u16 {
    // Two's complement: -1 is 65535, 70000 is 4464, as in the original.
    (n & 0xFFFF) as u16
}

/// `0`/`1` and the usual words, case-insensitively.
fn parse_bool(v: &str) -> Result<bool, String> {
    let v = v.trim();
    if TRUE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Ok(true)
    } else if FALSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Ok(false)
    } else {
        Err("expected 0 or 1 (or yes/no, true/false, on/off)".to_string())
    }
}

/// Debug level: off for Perl-false text (`""`, `0`), else the number it
/// starts with, at least 1 (`Debug yes` is on, as in the original).
fn debug_level(v: &str) -> u8 {
    if !perl::truthy(v) {
        return 0;
    }
    u8::try_from(perl::integer(v).clamp(1, 255)).unwrap_or(u8::MAX)
}

/// The syslog facility, `None` for `none` (no syslog). Empty and `0` are
/// the default `daemon`, as in the original; a name syslog does not know is
/// logged under `user`, the facility syslog itself falls back to.
fn facility(setting: &Setting, notes: &mut Notes) -> Option<String> {
    let value = setting.value.as_str();
    if value == NO_SYSLOG {
        return None;
    }
    if !perl::truthy(value) {
        return Some("daemon".to_string());
    }
    let name = value.trim().to_ascii_lowercase();
    if syslog::Facility::from_str(&name).is_ok() {
        Some(name)
    } else {
        notes.read_as(&p::SYSLOG_FACILITY, setting, "user (not a syslog facility)");
        Some("user".to_string())
    }
}

/// The log time format: the original's `unix` and `human`, or (ours) a
/// strftime format; anything else is `human`, as the original takes any
/// value other than `unix`.
fn time_format(setting: &Setting, notes: &mut Notes) -> String {
    let value = setting.value.as_str();
    match value {
        "unix" => return UNIX_TIME_FORMAT.to_string(),
        "human" | "" => return HUMAN_TIME_FORMAT.to_string(),
        _ => {}
    }
    let sample = jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    if value.contains('%') && jiff::fmt::strtime::format(value, &sample).is_ok() {
        value.to_string()
    } else {
        notes.read_as(&p::LOG_TIME_FORMAT, setting, "human");
        HUMAN_TIME_FORMAT.to_string()
    }
}

/// `ClusterRedis`: empty is off; anything else must be a Redis URL the
/// client accepts, checked here (no connection) so a typo stops the start
/// instead of leaving a node that refuses every publish. The password is
/// not repeated in the error.
fn cluster_redis(setting: &Setting) -> Result<Option<String>, ConfigError> {
    let url = setting.value.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let reason = if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        "not a redis:// or rediss:// URL".to_owned()
    } else {
        match redis::Client::open(url) {
            Ok(_) => return Ok(Some(url.to_owned())),
            Err(e) => e.to_string(),
        }
    };
    Err(ConfigError::InvalidValue {
        origin: setting.origin.clone(),
        name: p::CLUSTER_REDIS.name,
        value: crate::broker::redact_url(url),
        reason,
    })
}

/// The document root: none when empty or `/` (the original then serves no
/// document at all).
fn document_root(value: &str) -> Option<PathBuf> {
    (!value.is_empty() && value != "/").then(|| PathBuf::from(value))
}

/// Seconds between pings: the original pings when the number is above 2.
fn ping_interval(n: f64) -> u64 {
    if n > 2.0 {
        // 2.5 still pings (every 3 s: ours counts whole seconds).
        (n.trunc() as u64).max(3)
    } else {
        0
    }
}

/// The settings of one mode scope.
fn mode_settings(
    name: &str,
    values: &Values<'_>,
    notes: &mut Notes,
) -> Result<ModeSettings, ConfigError> {
    Ok(ModeSettings {
        name: name.to_string(),
        persist: values.flag(&p::PERSIST, notes),
        close_on_event: values.flag(&p::CLOSE_ON_EVENT, notes),
        max_messages: values.number(&p::MAX_MESSAGES)?,
        // The original: a limit only when the number is above 0.
        max_time: perl::integer(&values.text(&p::MAX_TIME)).max(0) as u64,
        ping_interval: ping_interval(values.perl_number(&p::PING_INTERVAL, notes)),
        header_template: values.text(&p::HEADER_TEMPLATE),
        message_template: values.text(&p::MESSAGE_TEMPLATE),
        channel_info_template: values.text(&p::CHANNEL_INFO_TEMPLATE),
        ping_message: values.text(&p::PING_MESSAGE),
        footer_template: values.text(&p::FOOTER_TEMPLATE),
        subscriber_shutdown_msg: values.text(&p::SUBSCRIBER_SHUTDOWN_MSG),
        // eventsource (issue 12)
        event_source_retry: values.number(&p::EVENT_SOURCE_RETRY)?,
        // Not per mode: no section or -Name.mode sets it, so this is the
        // global value.
        event_source_allow_origin: values.text(&p::EVENT_SOURCE_ALLOW_ORIGIN),
    })
}

/// Builds the validated configuration. `source` is the file the document
/// was read from (`None` for the built-in one).
pub(crate) fn build(
    doc: &Document,
    cli: &CommandLine,
    source: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let setting = |value: &str| Setting {
        value: value.to_string(),
        origin: Origin::CommandLine,
    };
    let mut command_line = Settings::new();
    let mut cli_modes: HashMap<&str, Settings> = HashMap::new();
    for o in &cli.overrides {
        match &o.mode {
            None => command_line.insert(o.param.name, setting(&o.value)),
            Some(mode) => cli_modes
                .entry(mode.as_str())
                .or_default()
                .insert(o.param.name, setting(&o.value)),
        };
    }
    let global = Values {
        layers: vec![&doc.globals, &command_line],
    };
    let mut notes = Notes::default();

    let default_mode = Arc::new(mode_settings("", &global, &mut notes)?);
    // The file's sections, then the modes only the command line names.
    let empty = Settings::new();
    let mut sections: Vec<(&str, &Settings)> = doc
        .sections
        .iter()
        .map(|Section { name, values }| (name.as_str(), values))
        .collect();
    for mode in cli_modes.keys() {
        if !sections.iter().any(|(name, _)| name == mode) {
            sections.push((mode, &empty));
        }
    }
    let mut named = HashMap::with_capacity(sections.len());
    for (name, values) in sections {
        let mut layers = vec![&doc.globals, &command_line, values];
        layers.extend(cli_modes.get(name));
        let scope = Values { layers };
        named.insert(
            name.to_string(),
            Arc::new(mode_settings(name, &scope, &mut notes)?),
        );
    }

    let count = |param: &'static Param| -> Result<usize, ConfigError> {
        let n = global.number(param)?;
        usize::try_from(n).map_err(|_| ConfigError::InvalidValue {
            origin: global.setting(param).origin,
            name: param.name,
            value: n.to_string(),
            reason: "too large for this machine".to_string(),
        })
    };
    // The original keeps a message until the age check finds it older than
    // MaxMessageAge seconds; at 0 or below that is at the next check (the
    // original drops what is older than `time - N`; below 0 is the same as 0
    // for a check that runs once a minute).
    let max_message_age = match perl::integer(&global.text(&p::MAX_MESSAGE_AGE)) {
        n if n <= 0 => 0,
        n => n as u64,
    };
    // The original trims a channel to MaxMessagesPerChannel only when the
    // count is above it: 0 never trims (no limit), below 0 trims to nothing.
    let max_messages_per_channel = match perl::integer(&global.text(&p::MAX_MESSAGES_PER_CHANNEL)) {
        0 => usize::MAX,
        n if n < 0 => 0,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    for param in [
        &p::MAX_MESSAGE_AGE,
        &p::MAX_MESSAGES_PER_CHANNEL,
        &p::MAX_TIME,
    ] {
        global.perl_number(param, &mut notes);
    }
    let syslog_facility = facility(&global.setting(&p::SYSLOG_FACILITY), &mut notes);
    let log_time_format = time_format(&global.setting(&p::LOG_TIME_FORMAT), &mut notes);

    let mut all_notes = doc.notes.clone();
    all_notes.extend(cli.notes.iter().cloned());
    let subscriber_port = global.port(&p::SUBSCRIBER_PORT, &mut notes)?;
    let controller_port = global.port(&p::CONTROLLER_PORT, &mut notes)?;
    let udp_port = global.udp_port(&p::UDP_PORT, &mut notes);
    let debug = debug_level(&global.text(&p::DEBUG));
    let log_filename = global.optional_path(&p::LOG_FILENAME);
    if log_filename.is_some() && debug == 0 && syslog_facility.is_some() {
        // Said once at start: an admin who set it expects a file to appear.
        all_notes.push(
            "LogFilename is used only with Debug on or SyslogFacility none, as in the \
             original; logging to syslog"
                .to_owned(),
        );
    }
    all_notes.extend(notes.0);
    let subscriber_tokens = token_rules(&global, &mut all_notes);

    Ok(Config {
        source,
        config_file_location: cli.config_file_location().to_path_buf(),
        subscriber_ip: global.ip(&p::SUBSCRIBER_IP)?,
        subscriber_port,
        controller_ip: global.ip(&p::CONTROLLER_IP)?,
        controller_port,
        udp_ip: global.ip(&p::UDP_IP)?,
        udp_port,
        subscriber_document_root: document_root(&global.text(&p::SUBSCRIBER_DOCUMENT_ROOT)),
        directory_index: global.text(&p::DIRECTORY_INDEX),
        subscriber_dynamic_page_address: global.text(&p::SUBSCRIBER_DYNAMIC_PAGE_ADDRESS),
        max_message_age,
        max_messages_per_channel,
        controller_shutdown_msg: global.text(&p::CONTROLLER_SHUTDOWN_MSG),
        debug,
        log_filename,
        log_time_format,
        // The original does not detach when it logs without syslog.
        foreground: global.bool(&p::FOREGROUND)? || syslog_facility.is_none(),
        syslog_facility,
        max_connections: count(&p::MAX_CONNECTIONS)?,
        state_file: global.optional_path(&p::STATE_FILE),
        pid_file: global.optional_path(&p::PID_FILE),
        user: global.optional_name(&p::USER)?,
        group: global.optional_name(&p::GROUP)?,
        send_channel_info: global.bool(&p::SEND_CHANNEL_INFO)?,
        header_timeout: global.number(&p::HEADER_TIMEOUT)?,
        write_timeout: global.number(&p::WRITE_TIMEOUT)?,
        shutdown_timeout: global.number(&p::SHUTDOWN_TIMEOUT)?,
        // cluster broker (issue 13)
        cluster_redis: cluster_redis(&global.setting(&p::CLUSTER_REDIS))?,
        // history (issue 14)
        history_file: global.optional_path(&p::HISTORY_FILE),
        history_fsync: global.get(&p::HISTORY_FSYNC, |v| {
            crate::persist::FsyncPolicy::parse(v).ok_or_else(|| {
                "must be always, everysec or no (Redis' appendfsync words)".to_owned()
            })
        })?,
        subscriber_tokens,
        notes: all_notes,
        modes: Modes {
            default: default_mode,
            named,
        },
        // ops (issue 14)
        limits: super::ops::build(&global)?,
    })
}

/// subscriber tokens (issue 14): the patterns and the secret. Patterns
/// without a secret close those channels to everyone (no token can be
/// valid: fail closed) and say so at start.
fn token_rules(global: &Values<'_>, notes: &mut Vec<String>) -> TokenRules {
    let patterns: Vec<String> = global
        .text(&p::SUBSCRIBER_TOKEN_CHANNELS)
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    let secret = global.text(&p::SUBSCRIBER_TOKEN_SECRET);
    if !patterns.is_empty() && secret.is_empty() {
        notes.push(format!(
            "{}: SubscriberTokenChannels is set but SubscriberTokenSecret is empty: no token \
             can be valid, so those channels are refused to every subscriber",
            global.setting(&p::SUBSCRIBER_TOKEN_CHANNELS).origin
        ));
    }
    TokenRules::new(secret.as_bytes(), patterns)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
