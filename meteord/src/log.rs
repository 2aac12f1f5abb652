//! Logging: one global `tracing` subscriber whose sink (stderr, a log file,
//! or syslog) and level can be switched at runtime, so SIGHUP can reopen a
//! rotated log file and apply a reloaded configuration.
//!
//! Sink choice, the original's rule: with `Debug` on or `SyslogFacility
//! none` the daemon writes its own lines, to `LogFilename` (appended to) or,
//! without one, to stderr; otherwise every line goes to syslog with
//! `SyslogFacility`, tag `meteord` and the pid, and `LogFilename` is not
//! used (the original ignores it then, and an admin moving its config here
//! must find the log where it was). If syslog cannot be reached
//! (no `/dev/log`, e.g. in a container), the line goes to stderr instead,
//! and the next line tries syslog again: the `syslog` crate never reconnects
//! by itself, so a restarted syslog daemon would otherwise mean silent loss.
//!
//! Line format for stderr and files:
//! `<time> <LEVEL> <message> key=value… span-key=value…`, the time formatted
//! with `LogTimeFormat` (strftime style, local time zone; an empty format
//! leaves the time out). Syslog lines carry `<message> key=value…`, the
//! priority derived from the level. Control characters in messages and
//! values (a client's user agent, say) are escaped, so one event is always
//! one line.
//!
//! Level: debug when `Debug` > 0, else info; `RUST_LOG` overrides it if set
//! (tracing's `EnvFilter` syntax, e.g. `RUST_LOG=meteord=trace`).
//! Before [`init`] nothing is logged (tracing drops events without a
//! subscriber), so early errors are printed by `main` itself.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use jiff::ZonedDateTime;
use jiff::fmt::strtime;
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::Config;

/// The syslog tag (program name) of every line.
const SYSLOG_TAG: &str = "meteord";

/// Permissions of a log file we create: the daemon's user may write, its
/// group (e.g. `adm`) may read; lines can hold client addresses and user
/// agents, so not everybody.
const LOG_FILE_MODE: u32 = 0o640;

/// RFC 3164 timestamp of syslog lines (`Nov  5 09:03:07`).
const SYSLOG_TIME_FORMAT: &str = "%b %e %H:%M:%S";

/// Handle to the installed logger: reopen the sink and change the level.
/// Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct LogHandle {
    sink: Arc<Mutex<Sink>>,
    filter: reload::Handle<EnvFilter, Registry>,
}

impl fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHandle")
            .field("sink", &lock(&self.sink).kind_name())
            .finish()
    }
}

/// The parts of the configuration the logger uses (kept apart from
/// [`Config`] so tests can build them directly).
#[derive(Debug, Clone)]
struct LogSettings {
    debug: bool,
    log_filename: Option<PathBuf>,
    time_format: String,
    /// `None` = no syslog (`SyslogFacility none`).
    facility: Option<String>,
    /// `RUST_LOG`, read once per init/reopen.
    rust_log: Option<String>,
    /// Socket of the syslog daemon; `None` = the system's (`/dev/log`).
    syslog_path: Option<PathBuf>,
}

impl LogSettings {
    fn from_config(config: &Config) -> Self {
        LogSettings {
            debug: config.debug > 0,
            log_filename: config.log_filename.clone(),
            time_format: config.log_time_format.clone(),
            facility: config.syslog_facility.clone(),
            rust_log: std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()),
            syslog_path: None,
        }
    }

    fn filter(&self) -> anyhow::Result<EnvFilter> {
        match &self.rust_log {
            Some(directives) => EnvFilter::try_new(directives)
                .with_context(|| format!("invalid RUST_LOG '{directives}'")),
            None if self.debug => Ok(EnvFilter::new("debug")),
            None => Ok(EnvFilter::new("info")),
        }
    }
}

/// Install the global tracing subscriber for `config` (see the module
/// documentation for the sink and level rules). Errors: an unknown
/// `SyslogFacility`, an invalid `LogTimeFormat` or `RUST_LOG`, a log file
/// that cannot be opened, or a subscriber already installed.
pub fn init(config: &Config) -> anyhow::Result<LogHandle> {
    let (subscriber, handle) = build(&LogSettings::from_config(config))?;
    tracing::subscriber::set_global_default(subscriber)
        .context("a global logger is already installed")?;
    Ok(handle)
}

impl LogHandle {
    /// Re-read sink settings (file name, facility, level, time format) from
    /// a reloaded config and reopen the file (log rotation). On error the
    /// previous sink and level stay in force.
    pub fn reopen(&self, config: &Config) -> anyhow::Result<()> {
        self.apply(&LogSettings::from_config(config))
    }

    fn apply(&self, settings: &LogSettings) -> anyhow::Result<()> {
        let filter = settings.filter()?;
        let sink = Sink::open(settings)?;
        *lock(&self.sink) = sink;
        self.filter
            .reload(filter)
            .context("cannot change the log level")?;
        Ok(())
    }
}

/// The subscriber (not installed) and its handle.
fn build(
    settings: &LogSettings,
) -> anyhow::Result<(impl Subscriber + Send + Sync + 'static, LogHandle)> {
    let (filter, filter_handle) = reload::Layer::new(settings.filter()?);
    let sink = Arc::new(Mutex::new(Sink::open(settings)?));
    let layer = SinkLayer {
        sink: Arc::clone(&sink),
    };
    let subscriber = Registry::default().with(filter).with(layer);
    Ok((
        subscriber,
        LogHandle {
            sink,
            filter: filter_handle,
        },
    ))
}

/// A lock that survives a panic elsewhere: a sink has no state a panic
/// could leave half-updated.
fn lock(sink: &Mutex<Sink>) -> MutexGuard<'_, Sink> {
    sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where lines go.
enum SinkKind {
    Stderr,
    File(File),
    Syslog {
        facility: syslog::Facility,
        path: Option<PathBuf>,
        /// `None` after a failed write or connect; reconnected on the next line.
        logger: Option<syslog::Logger<syslog::LoggerBackend, SyslogFormat>>,
    },
}

struct Sink {
    kind: SinkKind,
    time_format: String,
}

impl Sink {
    fn open(settings: &LogSettings) -> anyhow::Result<Sink> {
        // Validate the time format now rather than on every line.
        format_time(&settings.time_format, &ZonedDateTime::now())
            .with_context(|| format!("invalid LogTimeFormat '{}'", settings.time_format))?;
        let facility = settings
            .facility
            .as_deref()
            .map(parse_facility)
            .transpose()?;
        let kind = if let (Some(facility), false) = (facility, settings.debug) {
            let path = settings.syslog_path.clone();
            let logger = connect_syslog(facility, path.as_ref());
            SinkKind::Syslog {
                facility,
                path,
                logger,
            }
        } else if let Some(path) = &settings.log_filename {
            let file = File::options()
                .append(true)
                .create(true)
                .mode(LOG_FILE_MODE)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            SinkKind::File(file)
        } else {
            SinkKind::Stderr
        };
        Ok(Sink {
            kind,
            time_format: settings.time_format.clone(),
        })
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            SinkKind::Stderr => "stderr",
            SinkKind::File(_) => "file",
            SinkKind::Syslog { .. } => "syslog",
        }
    }

    /// Write one event. Failures cannot be logged (this *is* the logger);
    /// syslog failures fall back to stderr for that line.
    fn write(&mut self, level: Level, text: &str) {
        let time_format = &self.time_format;
        match &mut self.kind {
            SinkKind::Stderr => {
                let line = file_line(time_format, level, text);
                let _ = io::stderr().lock().write_all(line.as_bytes());
            }
            SinkKind::File(file) => {
                // One write per line: with O_APPEND, concurrent writers
                // (and logrotate's copytruncate) never split a line.
                let line = file_line(time_format, level, text);
                let _ = file.write_all(line.as_bytes());
            }
            SinkKind::Syslog {
                facility,
                path,
                logger,
            } => {
                if !send_syslog(logger, *facility, path.as_ref(), level, text) {
                    let line = file_line(time_format, level, text);
                    let _ = io::stderr().lock().write_all(line.as_bytes());
                }
            }
        }
    }
}

/// `<time> <LEVEL> <text>\n`; the time is left out if the format is empty.
fn file_line(time_format: &str, level: Level, text: &str) -> String {
    let time = if time_format.is_empty() {
        String::new()
    } else {
        // The format was validated when the sink was opened.
        format_time(time_format, &ZonedDateTime::now()).unwrap_or_default()
    };
    let mut line = String::with_capacity(time.len() + text.len() + 8);
    if !time.is_empty() {
        line.push_str(&time);
        line.push(' ');
    }
    let _ = write!(line, "{level} {text}");
    line.push('\n');
    line
}

/// strftime-style formatting of `time` (empty format → empty string).
fn format_time(format: &str, time: &ZonedDateTime) -> anyhow::Result<String> {
    if format.is_empty() {
        return Ok(String::new());
    }
    Ok(strtime::format(format, time)?)
}

/// A syslog facility by name (`daemon`, `user`, `local0`…`local7`, `auth`,
/// `syslog`, … with or without a `log_` prefix, any case).
fn parse_facility(name: &str) -> anyhow::Result<syslog::Facility> {
    syslog::Facility::from_str(name).map_err(|()| {
        anyhow::anyhow!(
            "unknown SyslogFacility '{name}' (expected daemon, user, local0 … local7, \
             auth, authpriv, syslog, cron, mail, news, lpr, uucp, ftp, ntp, audit, alert, kern)"
        )
    })
}

/// Connect to the syslog daemon's socket; `None` if it is not reachable.
fn connect_syslog(
    facility: syslog::Facility,
    path: Option<&PathBuf>,
) -> Option<syslog::Logger<syslog::LoggerBackend, SyslogFormat>> {
    let format = SyslogFormat { facility };
    match path {
        Some(path) => syslog::unix_custom(format, path).ok(),
        None => syslog::unix(format).ok(),
    }
}

/// Send one line to syslog, reconnecting once if the socket went away (a
/// restarted syslog daemon). False if syslog cannot be reached.
fn send_syslog(
    logger: &mut Option<syslog::Logger<syslog::LoggerBackend, SyslogFormat>>,
    facility: syslog::Facility,
    path: Option<&PathBuf>,
    level: Level,
    text: &str,
) -> bool {
    for attempt in 0..2 {
        if logger.is_none() || attempt > 0 {
            *logger = connect_syslog(facility, path);
        }
        let Some(connected) = logger.as_mut() else {
            return false;
        };
        let sent = match level {
            Level::ERROR => connected.err(text),
            Level::WARN => connected.warning(text),
            Level::INFO => connected.info(text),
            _ => connected.debug(text),
        };
        if sent.is_ok() {
            return true;
        }
        *logger = None;
    }
    false
}

/// RFC 3164 lines for the local syslog socket:
/// `<PRI>Mmm dd hh:mm:ss meteord[PID]: text`, with the local time and the
/// pid at the moment of writing (correct after daemonizing).
#[derive(Clone, Debug)]
struct SyslogFormat {
    facility: syslog::Facility,
}

impl syslog::LogFormat<&str> for SyslogFormat {
    fn format<W: io::Write>(
        &self,
        w: &mut W,
        severity: syslog::Severity,
        message: &str,
    ) -> syslog::Result<()> {
        let priority = self.facility as u8 | severity as u8;
        let time = format_time(SYSLOG_TIME_FORMAT, &ZonedDateTime::now()).unwrap_or_default();
        // One `write!`: the datagram backend sends each write as one packet.
        write!(
            w,
            "<{priority}>{time} {SYSLOG_TAG}[{pid}]: {message}",
            pid = std::process::id()
        )
        .map_err(syslog::Error::Write)
    }
}

/// The tracing layer that formats events and hands them to the sink.
struct SinkLayer {
    sink: Arc<Mutex<Sink>>,
}

/// A span's fields, formatted once when recorded.
struct SpanFields(String);

impl<S> Layer<S> for SinkLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = FieldText::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = FieldText::default();
        values.record(&mut fields);
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(existing) => existing.0.push_str(&fields.fields),
            None => extensions.insert(SpanFields(fields.fields)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut text = FieldText::default();
        event.record(&mut text);
        let mut line = text.message;
        line.push_str(&text.fields);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    line.push_str(&fields.0);
                }
            }
        }
        lock(&self.sink).write(*event.metadata().level(), line.trim_start());
    }
}

/// Collects an event's `message` and its ` key=value` pairs.
#[derive(Default)]
struct FieldText {
    message: String,
    fields: String,
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            escape_into(&mut self.message, value);
        } else {
            let _ = write!(self.fields, " {}=", field.name());
            push_value(&mut self.fields, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            escape_into(&mut self.message, &text);
        } else {
            let _ = write!(self.fields, " {}=", field.name());
            push_value(&mut self.fields, &text);
        }
    }
}

/// A value as `value`, or quoted if it is empty or holds spaces, quotes or
/// `=` (so the line stays machine-splittable).
fn push_value(out: &mut String, value: &str) {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
    if plain {
        out.push_str(value);
    } else {
        out.push('"');
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c => push_escaped_char(out, c),
            }
        }
        out.push('"');
    }
}

/// Append `text` with control characters escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        push_escaped_char(out, c);
    }
}

fn push_escaped_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
