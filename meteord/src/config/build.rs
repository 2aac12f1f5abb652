//! Turns a parsed file plus command-line overrides into a validated
//! [`Config`]: layers the values (table default < file < command line, and
//! a `[mode]` section over all of those for its mode), then converts each
//! one to its type, naming the origin, parameter and value on failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::cli::CommandLine;
use super::error::{ConfigError, Origin};
use super::params::{self as p, Kind, Param};
use super::parse::{Document, Setting, Settings, decode_value};
use super::{Config, ModeSettings, Modes};

/// Boolean spellings accepted besides `0`/`1`, compared case-insensitively.
const TRUE_WORDS: [&str; 4] = ["1", "yes", "true", "on"];
const FALSE_WORDS: [&str; 4] = ["0", "no", "false", "off"];

/// A layered view of the values that apply in one scope (global, or one
/// mode); anything not set falls back to the table default.
struct Values<'a> {
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
    fn get<T>(
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

    fn bool(&self, param: &'static Param) -> Result<bool, ConfigError> {
        debug_assert_eq!(param.kind, Kind::Bool);
        self.get(param, parse_bool)
    }

    fn number(&self, param: &'static Param) -> Result<u64, ConfigError> {
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

    fn port(&self, param: &'static Param) -> Result<u16, ConfigError> {
        let allow_zero = matches!(param.kind, Kind::Port { allow_zero: true });
        self.get(param, |v| {
            let low = if allow_zero { 0 } else { 1 };
            match v.trim().parse::<u32>() {
                Ok(n) if n >= low && n <= u32::from(u16::MAX) => {
                    u16::try_from(n).map_err(|_| "port out of range".to_string())
                }
                _ => Err(format!("expected a port number from {low} to 65535")),
            }
        })
    }

    fn ip(&self, param: &'static Param) -> Result<IpAddr, ConfigError> {
        self.get(param, |v| {
            IpAddr::from_str(v.trim())
                .map_err(|_| "expected an IPv4 or IPv6 address such as 127.0.0.1".to_string())
        })
    }

    fn path(&self, param: &'static Param) -> Result<PathBuf, ConfigError> {
        self.get(param, |v| {
            if v.is_empty() {
                Err("a path is required".to_string())
            } else {
                Ok(PathBuf::from(v))
            }
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

/// Debug level: a number 0–255, or a boolean word.
fn parse_level(v: &str) -> Result<u8, String> {
    match v.trim().parse::<u8>() {
        Ok(n) => Ok(n),
        Err(_) => parse_bool(v)
            .map(u8::from)
            .map_err(|_| "expected a level from 0 to 255 (0 = off)".to_string()),
    }
}

fn parse_facility(v: &str) -> Result<String, String> {
    let name = v.trim().to_ascii_lowercase();
    match syslog::Facility::from_str(&name) {
        Ok(_) => Ok(name),
        Err(()) => Err("expected a syslog facility such as daemon, user or local0".to_string()),
    }
}

/// Checks the format by formatting a fixed time with it, so a typo is
/// reported at start-up rather than on the first log line.
fn parse_time_format(v: &str) -> Result<String, String> {
    let sample = jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(v, &sample)
        .map(|_| v.to_string())
        .map_err(|e| format!("not a usable strftime format ({e})"))
}

fn parse_url_path(v: &str) -> Result<String, String> {
    if v.starts_with('/')
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?')
    {
        Ok(v.to_string())
    } else {
        Err("expected a URL path starting with / (such as /push)".to_string())
    }
}

fn parse_index(v: &str) -> Result<String, String> {
    if v.is_empty() || v.contains('/') || v == "." || v == ".." {
        Err("expected a file name such as index.html".to_string())
    } else {
        Ok(v.to_string())
    }
}

/// The settings of one mode scope.
fn mode_settings(name: &str, values: &Values<'_>) -> Result<ModeSettings, ConfigError> {
    Ok(ModeSettings {
        name: name.to_string(),
        persist: values.bool(&p::PERSIST)?,
        close_on_event: values.bool(&p::CLOSE_ON_EVENT)?,
        max_messages: values.number(&p::MAX_MESSAGES)?,
        max_time: values.number(&p::MAX_TIME)?,
        ping_interval: values.number(&p::PING_INTERVAL)?,
        header_template: values.text(&p::HEADER_TEMPLATE),
        message_template: values.text(&p::MESSAGE_TEMPLATE),
        channel_info_template: values.text(&p::CHANNEL_INFO_TEMPLATE),
        ping_message: values.text(&p::PING_MESSAGE),
        footer_template: values.text(&p::FOOTER_TEMPLATE),
        subscriber_shutdown_msg: values.text(&p::SUBSCRIBER_SHUTDOWN_MSG),
    })
}

/// Builds the validated configuration. `source` is the file the document
/// was read from (`None` for the built-in one).
pub(crate) fn build(
    doc: &Document,
    cli: &CommandLine,
    source: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let command_line: Settings = cli
        .overrides
        .iter()
        .map(|(param, value)| {
            let setting = Setting {
                value: value.clone(),
                origin: Origin::CommandLine,
            };
            (param.name, setting)
        })
        .collect();
    let global = Values {
        layers: vec![&doc.globals, &command_line],
    };

    let default_mode = Arc::new(mode_settings("", &global)?);
    let mut named = HashMap::with_capacity(doc.sections.len());
    for section in &doc.sections {
        let scope = Values {
            layers: vec![&doc.globals, &command_line, &section.values],
        };
        named.insert(
            section.name.clone(),
            Arc::new(mode_settings(&section.name, &scope)?),
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

    Ok(Config {
        source,
        config_file_location: cli.config_file_location().to_path_buf(),
        subscriber_ip: global.ip(&p::SUBSCRIBER_IP)?,
        subscriber_port: global.port(&p::SUBSCRIBER_PORT)?,
        controller_ip: global.ip(&p::CONTROLLER_IP)?,
        controller_port: global.port(&p::CONTROLLER_PORT)?,
        udp_ip: global.ip(&p::UDP_IP)?,
        udp_port: global.port(&p::UDP_PORT)?,
        subscriber_document_root: global.path(&p::SUBSCRIBER_DOCUMENT_ROOT)?,
        directory_index: global.get(&p::DIRECTORY_INDEX, parse_index)?,
        subscriber_dynamic_page_address: global
            .get(&p::SUBSCRIBER_DYNAMIC_PAGE_ADDRESS, parse_url_path)?,
        max_message_age: global.number(&p::MAX_MESSAGE_AGE)?,
        max_messages_per_channel: count(&p::MAX_MESSAGES_PER_CHANNEL)?,
        controller_shutdown_msg: global.text(&p::CONTROLLER_SHUTDOWN_MSG),
        debug: global.get(&p::DEBUG, parse_level)?,
        log_filename: global.optional_path(&p::LOG_FILENAME),
        log_time_format: global.get(&p::LOG_TIME_FORMAT, parse_time_format)?,
        syslog_facility: global.get(&p::SYSLOG_FACILITY, parse_facility)?,
        max_connections: count(&p::MAX_CONNECTIONS)?,
        state_file: global.optional_path(&p::STATE_FILE),
        pid_file: global.optional_path(&p::PID_FILE),
        user: global.optional_name(&p::USER)?,
        group: global.optional_name(&p::GROUP)?,
        foreground: global.bool(&p::FOREGROUND)?,
        send_channel_info: global.bool(&p::SEND_CHANNEL_INFO)?,
        header_timeout: global.number(&p::HEADER_TIMEOUT)?,
        write_timeout: global.number(&p::WRITE_TIMEOUT)?,
        shutdown_timeout: global.number(&p::SHUTDOWN_TIMEOUT)?,
        modes: Modes {
            default: default_mode,
            named,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_words() {
        for t in ["1", "yes", "TRUE", "On", " 1 "] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "No", "false", "OFF"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["2", "", "y", "-1"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("0"), Ok(0));
        assert_eq!(parse_level("3"), Ok(3));
        assert_eq!(parse_level("yes"), Ok(1));
        assert!(parse_level("256").is_err());
        assert!(parse_level("x").is_err());
    }

    #[test]
    fn facilities() {
        assert_eq!(parse_facility("daemon"), Ok("daemon".to_string()));
        assert_eq!(parse_facility("LOCAL3"), Ok("local3".to_string()));
        assert!(parse_facility("nonsense").is_err());
    }

    #[test]
    fn time_formats() {
        assert!(parse_time_format("%Y-%m-%d %H:%M:%S").is_ok());
        assert!(parse_time_format("%s %Z").is_ok());
        assert!(parse_time_format("%Y %K").is_err());
        assert!(parse_time_format("trailing %").is_err());
    }

    #[test]
    fn url_paths_and_index_names() {
        assert!(parse_url_path("/push").is_ok());
        assert!(parse_url_path("push").is_err());
        assert!(parse_url_path("/a b").is_err());
        assert!(parse_index("index.html").is_ok());
        assert!(parse_index("a/b.html").is_err());
        assert!(parse_index("..").is_err());
        assert!(parse_index("").is_err());
    }
}
