//! Command line, scenario defaults and validation: turns what the user typed
//! into a checked [`Settings`] (loopback targets only, every run bounded).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

/// Upper bound on subscribers in one run: 64 worker processes of ~19,900.
const MAX_SUBSCRIBERS: usize = 1_000_000;
/// Upper bound on one run's publish phase; a full run is minutes, not hours.
const MAX_DURATION_S: f64 = 3600.0;
/// Upper bound on the publish rate (messages per second).
const MAX_RATE: f64 = 1_000_000.0;
/// Upper bound on a message body; Meteor controller lines are not meant
/// for megabytes.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Upper bound on `--prefill` messages per channel.
const MAX_PREFILL: u64 = 100_000;
/// Upper bound on worker processes.
pub const MAX_WORKERS: usize = 64;

/// Named workloads from issue 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Hold N subscribers and publish nothing: memory per subscriber.
    Idle,
    /// 1 channel, N subscribers, 2 msg/s of 400 bytes.
    Fanout,
    /// N subscribers over N/10 channels, 200 msg/s.
    ManyChannels,
    /// 1 channel, 1,000 subscribers, publish as fast as acknowledged and
    /// delivered (see --max-lag).
    MaxThroughput,
    /// Publish steadily; halfway, every subscriber reconnects at once
    /// resuming from its last id; nothing may be lost.
    Storm,
}

/// How subscribers talk to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Meteor `xhrinteractive` streaming.
    Xhrinteractive,
    /// Meteor `iframe` streaming.
    Iframe,
    /// Meteor `longpoll`: re-polls with `.r<last id + 1>` after each answer.
    Longpoll,
    /// meteord's `eventsource` (Server-Sent Events; resumes with
    /// `Last-Event-ID`).
    Eventsource,
    /// Nchan EventSource subscriber (resume with `Last-Event-ID`).
    NchanEventsource,
    /// Nchan http-chunked subscriber (no resume).
    NchanChunked,
    /// meteord's WebSocket (issue 12): resumes with a subscribe `since`.
    Websocket,
    /// Nchan WebSocket subscriber (frames carry the text only: no resume).
    NchanWebsocket,
}

impl Mode {
    pub fn is_nchan(self) -> bool {
        matches!(
            self,
            Mode::NchanEventsource | Mode::NchanChunked | Mode::NchanWebsocket
        )
    }

    /// Subscribers speak WebSocket frames after a `101`.
    pub fn is_websocket(self) -> bool {
        matches!(self, Mode::Websocket | Mode::NchanWebsocket)
    }

    /// The mode word in a Meteor subscriber URL.
    pub fn meteor_word(self) -> &'static str {
        match self {
            Mode::Xhrinteractive => "xhrinteractive",
            Mode::Iframe => "iframe",
            Mode::Longpoll => "longpoll",
            Mode::Eventsource => "eventsource",
            Mode::Websocket => "websocket",
            Mode::NchanEventsource | Mode::NchanChunked | Mode::NchanWebsocket => "",
        }
    }
}

/// Load generator for Meteor-protocol push servers (meteord, the Perl
/// original) and Nchan. Targets 127.0.0.0/8 only. Prints one JSON line per
/// run on stdout and a readable summary on stderr.
#[derive(Debug, Parser)]
#[command(name = "meteor-bench", version)]
pub struct Args {
    /// Workload to run.
    #[arg(long, short = 's', value_enum)]
    pub scenario: Scenario,
    /// Subscriber (HTTP) address of the server.
    #[arg(long, default_value = "127.0.0.1:4670")]
    pub target: SocketAddr,
    /// Meteor controller address (ADDMESSAGE); for Nchan modes the publisher
    /// is an HTTP POST to --target instead.
    #[arg(long, default_value = "127.0.0.1:4671")]
    pub controller: SocketAddr,
    /// Subscriber transport.
    #[arg(long, value_enum, default_value = "xhrinteractive")]
    pub mode: Mode,
    /// Subscribers (N). Scenario default if omitted.
    #[arg(long, short = 'n')]
    pub subscribers: Option<usize>,
    /// Channels (C); subscriber i joins channel i mod C.
    #[arg(long, short = 'c')]
    pub channels: Option<usize>,
    /// Messages per second over all channels (R); 0 = as fast as
    /// acknowledgements come back (pipelined --window) and the slowest
    /// subscriber keeps up (--max-lag).
    #[arg(long, short = 'r')]
    pub rate: Option<f64>,
    /// Message body size in bytes (B), at least 40.
    #[arg(long, short = 'b')]
    pub bytes: Option<usize>,
    /// Length of the publish (or hold) phase in seconds.
    #[arg(long, short = 'd')]
    pub duration: Option<f64>,
    /// Pid of the server process to sample (RSS, CPU seconds) from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write the JSON line to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Worker processes for the subscribers (raised when one process's fd
    /// limit is not enough).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// New subscriber connections per second, over all workers (ramp).
    #[arg(long, default_value_t = 50_000.0)]
    pub connect_rate: f64,
    /// Connections being set up at once per worker.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Unacknowledged publishes in flight.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// With --rate 0: most messages per channel the publisher may be ahead
    /// of the slowest subscriber (keep it below the server's history size,
    /// 250 in meteord, or slow subscribers fall out of it). 0 = no flow
    /// control, only the acknowledgement window.
    #[arg(long, default_value_t = 100)]
    pub max_lag: u64,
    /// Loopback source addresses to spread subscribers over (127.0.1.1, …).
    #[arg(long, default_value_t = 16)]
    pub source_ips: usize,
    /// After the last publish, wait until no delivery has arrived for this
    /// many milliseconds (at most 60 s) before counting losses.
    #[arg(long, default_value_t = 1000)]
    pub drain_ms: u64,
    /// Settle time after all subscribers connected, before sampling memory.
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    /// Sample the server's RSS and CPU this often during the publish
    /// window (the `server.timeline` of the JSON), in milliseconds; shows
    /// whether memory grows at steady load (soak runs).
    #[arg(long, default_value_t = 1000)]
    pub sample_ms: u64,
    /// Read buffer per subscriber in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub read_buf: usize,
    /// Meteor SubscriberDynamicPageAddress.
    #[arg(long, default_value = "/push")]
    pub push_prefix: String,
    /// Nchan subscriber location prefix (channel id appended); by default
    /// the location bench/nchan.conf.in has for the mode: /sub/
    /// (eventsource), /chunked/, /ws/.
    #[arg(long)]
    pub nchan_sub: Option<String>,
    /// Nchan publisher location prefix (channel id appended).
    #[arg(long, default_value = "/pub/")]
    pub nchan_pub: String,
    /// Before subscribers connect, publish this many messages (of B bytes,
    /// not counted as deliveries) to every channel, e.g. the server's
    /// MaxMessagesPerChannel, so memory is measured with full histories
    /// (soak runs). Meteor servers only.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    /// Free-form label copied into the JSON (e.g. "meteord" or "nchan").
    #[arg(long, default_value = "")]
    pub label: String,
    /// Subscriber token (a JWT) sent as `?token=` on every Meteor request,
    /// for a meteord whose SubscriberTokenChannels cover the run's channels
    /// (issue 14: connection setup with a token check against without).
    #[arg(long, value_name = "JWT")]
    pub token: Option<String>,
}

/// Validated settings of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub scenario: Scenario,
    pub label: String,
    pub target: SocketAddr,
    pub controller: SocketAddr,
    pub mode: Mode,
    pub subscribers: usize,
    pub channels: usize,
    pub rate: f64,
    pub bytes: usize,
    pub duration: Duration,
    pub server_pid: Option<u32>,
    pub workers: usize,
    pub connect_rate: f64,
    pub connect_concurrency: usize,
    pub window: usize,
    pub max_lag: u64,
    pub source_ips: usize,
    pub drain: Duration,
    pub settle: Duration,
    pub sample_every: Duration,
    pub read_buf: usize,
    pub push_prefix: String,
    pub nchan_sub: String,
    pub nchan_pub: String,
    pub prefill: u64,
    /// Makes channel names and host ids unique to this run, so history
    /// left by an earlier run is never mistaken for this run's messages.
    pub run_tag: String,
    /// `--token`: appended as `?token=` to Meteor requests.
    #[serde(default)]
    pub token: Option<String>,
}

fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

impl Settings {
    /// Applies scenario defaults and checks every bound.
    pub fn from_args(a: Args) -> anyhow::Result<Self> {
        for (what, addr) in [("--target", a.target), ("--controller", a.controller)] {
            if !is_loopback(&addr) {
                bail!(
                    "{what} {addr} is not a loopback address; meteor-bench only targets 127.0.0.0/8 or ::1"
                );
            }
        }
        let n = a.subscribers.unwrap_or(match a.scenario {
            Scenario::ManyChannels => 5_000,
            _ => 1_000,
        });
        let c = a.channels.unwrap_or(match a.scenario {
            Scenario::ManyChannels => (n / 10).max(1),
            Scenario::Storm => 10.min(n.max(1)),
            _ => 1,
        });
        let rate = a.rate.unwrap_or(match a.scenario {
            Scenario::Idle => 0.0,
            Scenario::Fanout => 2.0,
            Scenario::ManyChannels => 200.0,
            Scenario::MaxThroughput => 0.0,
            Scenario::Storm => 50.0,
        });
        let bytes = a.bytes.unwrap_or(400);
        let duration = a.duration.unwrap_or(match a.scenario {
            Scenario::Idle => 5.0,
            Scenario::MaxThroughput => 10.0,
            _ => 20.0,
        });
        if n == 0 || n > MAX_SUBSCRIBERS {
            bail!("--subscribers must be 1..={MAX_SUBSCRIBERS}, got {n}");
        }
        if c == 0 || c > n {
            bail!("--channels must be 1..=subscribers ({n}), got {c}");
        }
        if !(0.0..=MAX_RATE).contains(&rate) {
            bail!("--rate must be 0..={MAX_RATE}, got {rate}");
        }
        if !(40..=MAX_MESSAGE_BYTES).contains(&bytes) {
            bail!("--bytes must be 40..={MAX_MESSAGE_BYTES}, got {bytes}");
        }
        if !(duration > 0.0 && duration <= MAX_DURATION_S) {
            bail!("--duration must be in (0, {MAX_DURATION_S}] seconds, got {duration}");
        }
        if a.scenario == Scenario::Storm
            && matches!(a.mode, Mode::NchanChunked | Mode::NchanWebsocket)
        {
            bail!(
                "storm needs a resumable transport; nchan-chunked and nchan-websocket have no ids \
                 (use nchan-eventsource)"
            );
        }
        if a.scenario == Scenario::Storm && a.mode == Mode::Longpoll {
            bail!(
                "storm reconnects streaming subscribers; longpoll already reconnects after every message"
            );
        }
        if a.prefill > MAX_PREFILL {
            bail!("--prefill must be 0..={MAX_PREFILL}");
        }
        if a.prefill > 0 && a.mode.is_nchan() {
            bail!("--prefill publishes through the Meteor controller; it is not for Nchan modes");
        }
        if a.workers == 0 || a.workers > MAX_WORKERS {
            bail!("--workers must be 1..={MAX_WORKERS}");
        }
        if a.connect_rate.is_nan()
            || a.connect_rate < 1.0
            || a.connect_concurrency == 0
            || a.window == 0
        {
            bail!("--connect-rate, --connect-concurrency and --window must be positive");
        }
        if a.source_ips == 0 || a.source_ips > 250 * 250 {
            bail!("--source-ips must be 1..=62500");
        }
        if a.sample_ms < 100 {
            bail!("--sample-ms must be at least 100");
        }
        if a.read_buf < 1024 {
            bail!("--read-buf must be at least 1024");
        }
        let nchan_sub = a.nchan_sub.clone().unwrap_or_else(|| {
            match a.mode {
                Mode::NchanChunked => "/chunked/",
                Mode::NchanWebsocket => "/ws/",
                _ => "/sub/",
            }
            .to_owned()
        });
        if !a.push_prefix.starts_with('/')
            || !nchan_sub.starts_with('/')
            || !a.nchan_pub.starts_with('/')
        {
            bail!("--push-prefix, --nchan-sub and --nchan-pub must start with '/'");
        }
        if let Some(token) = &a.token {
            // Put in the URL as it is: only JWT characters, no escaping.
            if token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                bail!("--token must be a JWT (base64url segments separated by dots)");
            }
            if a.mode.is_nchan() {
                bail!("--token applies to Meteor modes only");
            }
        }
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("system clock before 1970")?;
        let run_tag = format!(
            "{:x}{:x}",
            since_epoch.as_secs() % 0x10_0000,
            std::process::id()
        );
        Ok(Settings {
            scenario: a.scenario,
            label: a.label,
            target: a.target,
            controller: a.controller,
            mode: a.mode,
            subscribers: n,
            channels: c,
            rate,
            bytes,
            duration: Duration::from_secs_f64(duration),
            server_pid: a.server_pid,
            workers: a.workers,
            connect_rate: a.connect_rate,
            connect_concurrency: a.connect_concurrency,
            window: a.window,
            max_lag: a.max_lag,
            source_ips: a.source_ips,
            drain: Duration::from_millis(a.drain_ms),
            settle: Duration::from_millis(a.settle_ms),
            sample_every: Duration::from_millis(a.sample_ms),
            read_buf: a.read_buf,
            push_prefix: a.push_prefix,
            nchan_sub,
            nchan_pub: a.nchan_pub,
            prefill: a.prefill,
            run_tag,
            token: a.token,
        })
    }

    /// Whether the publisher is paced by the subscribers' progress.
    pub fn flow_control(&self) -> bool {
        self.rate == 0.0 && self.max_lag > 0 && self.scenario != Scenario::Idle
    }

    /// Name of channel `k` in this run.
    pub fn channel_name(&self, k: usize) -> String {
        format!("b{}c{k}", self.run_tag)
    }

    /// Every channel's name, by number (made once, not per message).
    pub fn channel_names(&self) -> Vec<String> {
        (0..self.channels).map(|k| self.channel_name(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> anyhow::Result<Settings> {
        let mut argv = vec!["meteor-bench"];
        argv.extend_from_slice(extra);
        Settings::from_args(Args::try_parse_from(argv)?)
    }

    #[test]
    fn each_nchan_mode_has_its_locations_prefix_by_default() {
        let sub = |mode: &str| parse(&["-s", "fanout", "--mode", mode]).unwrap().nchan_sub;
        assert_eq!(sub("nchan-eventsource"), "/sub/");
        assert_eq!(sub("nchan-chunked"), "/chunked/");
        assert_eq!(sub("nchan-websocket"), "/ws/");
        let given = parse(&[
            "-s",
            "fanout",
            "--mode",
            "nchan-websocket",
            "--nchan-sub",
            "/x/",
        ]);
        assert_eq!(given.unwrap().nchan_sub, "/x/");
        assert!(parse(&["-s", "fanout", "--nchan-sub", "x/"]).is_err());
    }

    #[test]
    fn token_is_checked_and_kept() {
        let s = parse(&["-s", "idle", "--token", "aGk.e30.c2ln"]).unwrap();
        assert_eq!(s.token.as_deref(), Some("aGk.e30.c2ln"));
        assert!(parse(&["-s", "idle"]).unwrap().token.is_none());
        assert!(parse(&["-s", "idle", "--token", "a b"]).is_err());
        assert!(parse(&["-s", "idle", "--token", "a&x=1"]).is_err());
        assert!(parse(&["-s", "idle", "--mode", "nchan-chunked", "--token", "a.b.c"]).is_err());
    }

    #[test]
    fn scenario_defaults() {
        let s = parse(&["-s", "many-channels"]).unwrap();
        assert_eq!((s.subscribers, s.channels, s.rate), (5000, 500, 200.0));
        let s = parse(&["-s", "fanout", "-n", "50"]).unwrap();
        assert_eq!(
            (s.subscribers, s.channels, s.rate, s.bytes),
            (50, 1, 2.0, 400)
        );
    }

    #[test]
    fn channel_names_are_ones_subscribers_can_ask_for() {
        let s = parse(&["-s", "many-channels", "-n", "200"]).unwrap();
        for name in s.channel_names() {
            assert!(
                meteor_proto::channel::valid_channel_name(name.as_bytes()),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_non_loopback_targets() {
        let err = parse(&["-s", "idle", "--target", "10.0.0.1:80"]).unwrap_err();
        assert!(err.to_string().contains("loopback"));
        assert!(parse(&["-s", "idle", "--controller", "192.168.1.1:4671"]).is_err());
        assert!(parse(&["-s", "idle", "--target", "127.9.9.9:80"]).is_ok());
    }

    #[test]
    fn refuses_unbounded_runs() {
        assert!(parse(&["-s", "idle", "-d", "0"]).is_err());
        assert!(parse(&["-s", "idle", "-d", "99999"]).is_err());
        assert!(parse(&["-s", "idle", "-n", "0"]).is_err());
        assert!(parse(&["-s", "fanout", "-n", "5", "-c", "6"]).is_err());
        assert!(parse(&["-s", "storm", "--mode", "longpoll"]).is_err());
        assert!(parse(&["-s", "storm", "--mode", "nchan-websocket"]).is_err());
        assert!(parse(&["-s", "storm", "--mode", "websocket"]).is_ok());
        assert!(parse(&["-s", "fanout", "--prefill", "1000000"]).is_err());
        assert!(parse(&["-s", "fanout", "--prefill", "5", "--mode", "nchan-chunked"]).is_err());
    }
}
