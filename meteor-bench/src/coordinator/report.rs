//! The run's results: the JSON [`Report`] (one line on stdout), built from
//! what the phases measured, and its readable [`summary`] on stderr.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::{Scenario, Settings};
use crate::procstat::Sample;
use crate::publisher::PublishResult;
use crate::worker::pipe::{Counts, Phase};

/// Bytes in a MiB, for the summary.
const MIB: f64 = 1_048_576.0;

/// Server resource figures.
#[derive(Debug, Default, Serialize)]
pub struct ServerFigures {
    pub pid: Option<u32>,
    pub rss_before: u64,
    pub rss_connected: u64,
    pub rss_after: u64,
    /// (RSS with subscribers − RSS before) / subscribers connected.
    pub rss_per_sub: f64,
    /// CPU seconds over the publish window (publish + drain).
    pub cpu_s: f64,
    /// CPU seconds while subscribers were connecting.
    pub connect_cpu_s: f64,
    /// `cpu_s` / wall seconds of the window, in percent of one core.
    pub cpu_pct: f64,
    pub deliveries_per_cpu_s: f64,
    /// Samples over the publish window: (seconds since it began, RSS
    /// bytes, CPU seconds since it began), every `--sample-ms`.
    pub timeline: Vec<(f64, u64, f64)>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// The JSON line of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub label: String,
    pub mode: crate::cli::Mode,
    pub target: String,
    pub subscribers: usize,
    pub channels: usize,
    pub rate: f64,
    pub bytes: usize,
    pub duration_s: f64,
    pub workers: usize,
    pub connect: Phase,
    pub connect_rate: f64,
    pub publish: PublishResult,
    #[serde(flatten)]
    pub counts: Counts,
    pub deliveries_per_s: f64,
    pub latency_us: Latency,
    pub storm: Option<Phase>,
    pub storm_rate: Option<f64>,
    /// Seconds spent after the last publish until deliveries stopped.
    pub drain_s: f64,
    /// Messages published to fill the histories before the window
    /// (`--prefill`), not counted as deliveries.
    pub prefilled: u64,
    pub server: ServerFigures,
    /// CPU seconds of the generator itself (coordinator + workers) over the
    /// publish window: shows when the generator, not the server, limited.
    pub bench_cpu_s: f64,
    /// CPU seconds of the generator while connecting (shows whether the
    /// setup rate was limited by the generator).
    pub bench_connect_cpu_s: f64,
    /// CPU seconds the whole machine was busy over the publish window.
    pub machine_busy_s: f64,
    /// Busy CPU seconds of the machine not spent by the server or the
    /// generator: other work that disturbed the run (0 on a quiet box).
    pub other_cpu_s: f64,
    /// Wall seconds of the publish window (publish + drain).
    pub window_s: f64,
    pub ok: bool,
}

/// Server and generator figures over the publish window (publish + drain).
#[derive(Debug, Default)]
pub struct WindowFigures {
    /// The server at the window's end.
    pub after: Sample,
    pub window_s: f64,
    pub bench_cpu_s: f64,
    pub machine_busy_s: f64,
    pub timeline: Vec<(f64, u64, f64)>,
}

/// Everything one run measured, phase by phase.
pub struct Measured {
    pub workers: usize,
    pub connect: Phase,
    /// The server before any subscriber connected.
    pub before: Sample,
    /// The server right after the connect phase (its CPU cost).
    pub after_connect: Sample,
    /// The server after settling (the memory figure).
    pub connected: Sample,
    /// The server when the publish window began (after any prefill).
    pub window_base: Sample,
    pub bench_connect_cpu_s: f64,
    pub prefilled: u64,
    pub publish: PublishResult,
    pub storm: Option<Phase>,
    pub drain_s: f64,
    pub window: WindowFigures,
    pub counts: Counts,
    pub latency: Histogram<u64>,
}

impl Latency {
    fn of(hist: &Histogram<u64>) -> Self {
        Self {
            count: hist.len(),
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
            mean: hist.mean(),
        }
    }
}

impl ServerFigures {
    fn of(s: &Settings, m: &mut Measured) -> Self {
        let server_cpu = m.window.after.cpu_s - m.window_base.cpu_s;
        Self {
            pid: s.server_pid,
            rss_before: m.before.rss_bytes,
            rss_connected: m.connected.rss_bytes,
            rss_after: m.window.after.rss_bytes,
            rss_per_sub: if m.connect.connected > 0 {
                (m.connected.rss_bytes as f64 - m.before.rss_bytes as f64)
                    / m.connect.connected as f64
            } else {
                0.0
            },
            cpu_s: server_cpu,
            connect_cpu_s: m.after_connect.cpu_s - m.before.cpu_s,
            cpu_pct: 100.0 * server_cpu / m.window.window_s.max(1e-9),
            deliveries_per_cpu_s: if server_cpu > 0.0 {
                m.counts.deliveries as f64 / server_cpu
            } else {
                0.0
            },
            timeline: std::mem::take(&mut m.window.timeline),
        }
    }
}

impl Report {
    /// The report of a run with settings `s`.
    pub fn new(s: &Settings, mut m: Measured) -> Self {
        let server = ServerFigures::of(s, &mut m);
        let storm_rate = m
            .storm
            .as_ref()
            .map(|p| p.connected as f64 / p.secs.max(1e-9));
        let storm_failed = m.storm.as_ref().map_or(0, |p| p.failed);
        let ok = m.connect.failed == 0
            && m.counts.lost == 0
            && m.counts.duplicated == 0
            && m.publish.errors == 0
            && storm_failed == 0
            && m.counts.gave_up == 0;
        let w = &m.window;
        Report {
            scenario: s.scenario,
            label: s.label.clone(),
            mode: s.mode,
            target: s.target.to_string(),
            subscribers: s.subscribers,
            channels: s.channels,
            rate: s.rate,
            bytes: s.bytes,
            duration_s: s.duration.as_secs_f64(),
            workers: m.workers,
            connect_rate: m.connect.connected as f64 / m.connect.secs.max(1e-9),
            connect: m.connect,
            deliveries_per_s: m.counts.deliveries as f64 / m.publish.secs.max(1e-9),
            publish: m.publish,
            counts: m.counts,
            latency_us: Latency::of(&m.latency),
            storm: m.storm,
            storm_rate,
            drain_s: m.drain_s,
            prefilled: m.prefilled,
            other_cpu_s: (w.machine_busy_s - server.cpu_s - w.bench_cpu_s).max(0.0),
            server,
            bench_cpu_s: w.bench_cpu_s,
            bench_connect_cpu_s: m.bench_connect_cpu_s,
            machine_busy_s: w.machine_busy_s,
            window_s: w.window_s,
            ok,
        }
    }
}

/// The readable summary printed on stderr, one line per part of the run.
pub fn summary(r: &Report) -> String {
    [
        headline(r),
        connect_lines(r),
        publish_lines(r),
        delivery_lines(r),
        latency_line(&r.latency_us),
        storm_line(r),
        server_lines(&r.server),
        result_line(r),
    ]
    .concat()
}

/// What ran against what.
fn headline(r: &Report) -> String {
    format!(
        "meteor-bench {:?} {} against {} ({:?}): {} subscribers, {} channels, {} msg/s, {} B, {:.1} s, {} worker(s)\n",
        r.scenario,
        r.label,
        r.target,
        r.mode,
        r.subscribers,
        r.channels,
        r.rate,
        r.bytes,
        r.duration_s,
        r.workers
    )
}

/// The connect phase, and its first error.
fn connect_lines(r: &Report) -> String {
    let mut t = format!(
        "  connect: {} ok, {} failed ({} failed attempts) in {:.3} s = {:.0}/s (server CPU {:.2} s, generator {:.2} s)\n",
        r.connect.connected,
        r.connect.failed,
        r.connect.attempts_failed,
        r.connect.secs,
        r.connect_rate,
        r.server.connect_cpu_s,
        r.bench_connect_cpu_s
    );
    if let Some(e) = &r.connect.first_error {
        t += &format!("  first connect error: {e}\n");
    }
    t
}

/// The publisher, and its first error.
fn publish_lines(r: &Report) -> String {
    let mut t = format!(
        "  publish: {} sent, {} acked, {} errors, {:.0} msg/s\n",
        r.publish.sent, r.publish.acked, r.publish.errors, r.publish.rate
    );
    if let Some(e) = &r.publish.first_error {
        t += &format!("  first publish error: {e}\n");
    }
    t
}

/// What the subscribers saw.
fn delivery_lines(r: &Report) -> String {
    format!(
        "  deliveries: {} ({:.0}/s), expected {}, lost {}, duplicated {}, disconnects {}, reconnects {}\n",
        r.counts.deliveries,
        r.deliveries_per_s,
        r.counts.expected,
        r.counts.lost,
        r.counts.duplicated,
        r.counts.disconnects,
        r.counts.reconnects,
    )
}

/// How late they saw it.
fn latency_line(l: &Latency) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
}

/// The storm's reconnects, when there was one.
fn storm_line(r: &Report) -> String {
    match (&r.storm, r.storm_rate) {
        (Some(st), Some(rate)) => format!(
            "  storm: {} reconnected, {} failed in {:.3} s = {rate:.0}/s\n",
            st.connected, st.failed, st.secs
        ),
        _ => String::new(),
    }
}

/// The server's memory and CPU, when its pid was given.
fn server_lines(sv: &ServerFigures) -> String {
    let mut t = String::new();
    if let Some(pid) = sv.pid {
        t += &format!(
            "  server {pid}: RSS {:.1} -> {:.1} -> {:.1} MiB ({:.0} B/subscriber), CPU {:.2} s ({:.1}% of a core), {:.0} deliveries/CPU-s\n",
            sv.rss_before as f64 / MIB,
            sv.rss_connected as f64 / MIB,
            sv.rss_after as f64 / MIB,
            sv.rss_per_sub,
            sv.cpu_s,
            sv.cpu_pct,
            sv.deliveries_per_cpu_s
        );
    }
    if let (Some(first), Some(last)) = (sv.timeline.first(), sv.timeline.last()) {
        let peak = sv
            .timeline
            .iter()
            .map(|&(_, rss, _)| rss)
            .max()
            .unwrap_or(0);
        t += &format!(
            "  server RSS over the window: {:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s, peak {:.1} MiB\n",
            first.1 as f64 / MIB,
            first.0,
            last.1 as f64 / MIB,
            last.0,
            peak as f64 / MIB
        );
    }
    t
}

/// The generator's own cost, the disturbance, and the verdict.
fn result_line(r: &Report) -> String {
    format!(
        "  generator CPU {:.2} s; other processes {:.2} CPU-s over {:.1} s;  result: {}\n",
        r.bench_cpu_s,
        r.other_cpu_s,
        r.window_s,
        if r.ok { "OK" } else { "FAILED" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(full: bool) -> Report {
        use clap::Parser;
        let args = crate::cli::Args::try_parse_from([
            "meteor-bench",
            "-s",
            "storm",
            "-n",
            "20",
            "--label",
            "x",
        ])
        .unwrap();
        let s = Settings::from_args(args).unwrap();
        let mut s = s;
        if full {
            s.server_pid = Some(4242);
        }
        let phase = |n, e: Option<&str>| Phase {
            connected: n,
            failed: 1,
            attempts_failed: 2,
            secs: 0.123456,
            first_error: e.map(str::to_owned),
        };
        let mut latency = Histogram::new_with_bounds(1, 600_000_000, 3).unwrap();
        for v in [900u64, 1500, 2500, 40_000] {
            latency.record(v).unwrap();
        }
        let m = Measured {
            workers: 2,
            connect: phase(19, full.then_some("refused")),
            before: Sample {
                rss_bytes: 10 << 20,
                cpu_s: 1.0,
            },
            after_connect: Sample {
                rss_bytes: 12 << 20,
                cpu_s: 1.5,
            },
            connected: Sample {
                rss_bytes: 13 << 20,
                cpu_s: 1.6,
            },
            window_base: Sample {
                rss_bytes: 13 << 20,
                cpu_s: 1.7,
            },
            bench_connect_cpu_s: 0.25,
            prefilled: 0,
            publish: PublishResult {
                sent: 100,
                acked: 99,
                errors: 1,
                secs: 2.0,
                rate: 50.0,
                first_error: full.then(|| "controller said \"ERR\"".to_owned()),
                per_channel: vec![100],
            },
            storm: full.then(|| phase(18, None)),
            drain_s: 0.5,
            window: WindowFigures {
                after: Sample {
                    rss_bytes: 14 << 20,
                    cpu_s: 2.9,
                },
                window_s: 2.5,
                bench_cpu_s: 0.75,
                machine_busy_s: 3.0,
                timeline: if full {
                    vec![
                        (0.5, 13 << 20, 0.1),
                        (1.5, 15 << 20, 0.6),
                        (2.4, 14 << 20, 1.1),
                    ]
                } else {
                    vec![]
                },
            },
            counts: Counts {
                deliveries: 1980,
                expected: 2000,
                lost: 20,
                duplicated: 1,
                disconnects: 3,
                reconnects: 4,
                ..Counts::default()
            },
            latency,
        };
        Report::new(&s, m)
    }

    /// The summary's bytes, pinned (checked equal to the single 98-line
    /// function it was split from).
    #[test]
    fn summary_lines() {
        let full = [
            "meteor-bench Storm x against 127.0.0.1:4670 (Xhrinteractive): 20 subscribers, 10 channels, 50 msg/s, 400 B, 20.0 s, 2 worker(s)\n",
            "  connect: 19 ok, 1 failed (2 failed attempts) in 0.123 s = 154/s (server CPU 0.50 s, generator 0.25 s)\n",
            "  first connect error: refused\n",
            "  publish: 100 sent, 99 acked, 1 errors, 50 msg/s\n",
            "  first publish error: controller said \"ERR\"\n",
            "  deliveries: 1980 (990/s), expected 2000, lost 20, duplicated 1, disconnects 3, reconnects 4\n",
            "  latency ms: p50 1.50  p90 40.03  p99 40.03  p99.9 40.03  max 40.03\n",
            "  storm: 18 reconnected, 1 failed in 0.123 s = 146/s\n",
            "  server 4242: RSS 10.0 -> 13.0 -> 14.0 MiB (165565 B/subscriber), CPU 1.20 s (48.0% of a core), 1650 deliveries/CPU-s\n",
            "  server RSS over the window: 13.0 MiB at 0 s, 14.0 MiB at 2 s, peak 15.0 MiB\n",
            "  generator CPU 0.75 s; other processes 1.05 CPU-s over 2.5 s;  result: FAILED\n",
        ];
        assert_eq!(summary(&report(true)), full.concat());
        let short = [
            "meteor-bench Storm x against 127.0.0.1:4670 (Xhrinteractive): 20 subscribers, 10 channels, 50 msg/s, 400 B, 20.0 s, 2 worker(s)\n",
            "  connect: 19 ok, 1 failed (2 failed attempts) in 0.123 s = 154/s (server CPU 0.50 s, generator 0.25 s)\n",
            "  publish: 100 sent, 99 acked, 1 errors, 50 msg/s\n",
            "  deliveries: 1980 (990/s), expected 2000, lost 20, duplicated 1, disconnects 3, reconnects 4\n",
            "  latency ms: p50 1.50  p90 40.03  p99 40.03  p99.9 40.03  max 40.03\n",
            "  generator CPU 0.75 s; other processes 1.05 CPU-s over 2.5 s;  result: FAILED\n",
        ];
        assert_eq!(summary(&report(false)), short.concat());
    }
}
