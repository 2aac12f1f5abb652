//! The coordinator: starts the subscriber workers, publishes, triggers the
//! storm, samples the server from /proc and merges everything into one
//! [`Report`].
//!
//! Phases of a run (each bounded in time):
//! 1. sample the server; start workers, which connect their subscribers at
//!    the ramp rate and answer `READY`;
//! 2. settle, sample the server again (memory per subscriber);
//! 3. publish for the duration (storm: every subscriber reconnects halfway);
//! 4. drain, sample the server (CPU seconds of the publish window);
//! 5. `STOP` with the per-channel counts; workers answer `RESULT`.

use std::cell::RefCell;
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use crate::cli::{Scenario, Settings};
use crate::procstat::{self, Sample};
use crate::publisher::{self, PublishResult};
use crate::worker::{Counts, Phase, Plan, WorkerResult};

/// File descriptors each worker keeps for itself (stdio, runtime, slack).
const FD_RESERVE: u64 = 100;
/// Bound on a worker answering STOP.
const RESULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a worker may take to report READY beyond the ramp.
const READY_SLACK: Duration = Duration::from_secs(90);
/// Upper bound on waiting for late deliveries after the last publish.
const MAX_DRAIN: Duration = Duration::from_secs(60);
/// How often the drain asks the workers for their delivery count.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// Bound on a storm (all reconnects) as seen by the coordinator.
const STORM_SLACK: Duration = Duration::from_secs(150);

struct Worker {
    child: Child,
    stdin: ChildStdin,
    /// Lines from the worker's stdout other than `FLOOR`.
    lines: mpsc::UnboundedReceiver<String>,
    pid: Option<u32>,
}

/// Reads one worker's stdout: `FLOOR` lines update that worker's entry in
/// `floors` and the minimum over all workers in `min_floor`; every other
/// line goes to the coordinator.
async fn read_worker(
    index: usize,
    mut stdout: Lines<BufReader<ChildStdout>>,
    to_coordinator: mpsc::UnboundedSender<String>,
    floors: Rc<RefCell<Vec<u64>>>,
    min_floor: Rc<watch::Sender<u64>>,
) {
    while let Ok(Some(line)) = stdout.next_line().await {
        if let Some(v) = line.strip_prefix("FLOOR ") {
            if let Ok(v) = v.parse::<u64>() {
                let min = {
                    let mut f = floors.borrow_mut();
                    f[index] = v;
                    f.iter().copied().min().unwrap_or(0)
                };
                min_floor.send_if_modified(|old| std::mem::replace(old, min) != min);
            }
        } else if to_coordinator.send(line).is_err() {
            return;
        }
    }
}

impl Worker {
    async fn expect(&mut self, tag: &str, timeout: Duration) -> anyhow::Result<String> {
        let line = tokio::time::timeout(timeout, self.lines.recv())
            .await
            .with_context(|| format!("worker did not answer {tag} within {timeout:?}"))?
            .with_context(|| format!("worker exited before {tag}"))?;
        line.strip_prefix(tag)
            .map(|rest| rest.trim_start().to_owned())
            .with_context(|| format!("worker said {line:?}, expected {tag}"))
    }

    async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await?;
        Ok(())
    }
}

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

fn sample_opt(pid: Option<u32>) -> anyhow::Result<Sample> {
    match pid {
        Some(p) => procstat::sample(p).with_context(|| format!("sampling --server-pid {p}")),
        None => Ok(Sample::default()),
    }
}

fn bench_cpu(workers: &[Worker]) -> f64 {
    let own = procstat::sample(std::process::id()).map_or(0.0, |s| s.cpu_s);
    own + workers
        .iter()
        .filter_map(|w| w.pid.and_then(|p| procstat::sample(p).ok()))
        .map(|s| s.cpu_s)
        .sum::<f64>()
}

/// Splits `n` subscribers over workers of at most `cap` each.
pub fn split(n: usize, min_workers: usize, cap: usize) -> Vec<usize> {
    let k = min_workers.max(n.div_ceil(cap.max(1)));
    (0..k).map(|i| n / k + usize::from(i < n % k)).collect()
}

pub async fn run(s: Settings) -> anyhow::Result<Report> {
    let fd_limit = crate::raise_fd_limit()?;
    let cap = fd_limit.saturating_sub(FD_RESERVE).max(1) as usize;
    let shares = split(s.subscribers, s.workers, cap);
    if shares.len() > crate::cli::MAX_WORKERS {
        bail!(
            "{} subscribers need {} workers at {cap} per worker; the limit is {}",
            s.subscribers,
            shares.len(),
            crate::cli::MAX_WORKERS
        );
    }
    let exe = std::env::current_exe().context("finding my own executable to start workers")?;
    let before = sample_opt(s.server_pid)?;
    let coordinator_cpu_before = bench_cpu(&[]);

    // 1. Workers connect their subscribers.
    let mut workers = Vec::with_capacity(shares.len());
    // Until a worker reports, its floor is 0: the publisher may run
    // `max_lag` ahead of a worker it has not heard from.
    let floors = Rc::new(RefCell::new(vec![0u64; shares.len()]));
    let (floor_tx, floor_rx) = watch::channel(0u64);
    let floor_tx = Rc::new(floor_tx);
    let mut first = 0;
    for (index, &count) in shares.iter().enumerate() {
        let mut child = tokio::process::Command::new(&exe)
            .arg("--worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting worker {}", exe.display()))?;
        let pid = child.id();
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::task::spawn_local(read_worker(
            index,
            stdout,
            tx,
            floors.clone(),
            floor_tx.clone(),
        ));
        let mut w = Worker {
            child,
            stdin,
            lines,
            pid,
        };
        let plan = Plan {
            settings: s.clone(),
            index,
            workers: shares.len(),
            first,
            count,
        };
        w.send(&serde_json::to_string(&plan)?).await?;
        workers.push(w);
        first += count;
    }
    let ramp = Duration::from_secs_f64(s.subscribers as f64 / s.connect_rate);
    let mut connect = Phase::default();
    for w in &mut workers {
        let p: Phase = serde_json::from_str(&w.expect("READY", ramp + READY_SLACK).await?)?;
        merge_phase(&mut connect, p);
    }
    let connect_rate = connect.connected as f64 / connect.secs.max(1e-9);
    let after_connect_cpu = sample_opt(s.server_pid)?;
    // The workers did nothing but start up and connect so far.
    let bench_connect_cpu_s = bench_cpu(&workers) - coordinator_cpu_before;

    // 2. Settle, then the memory figure.
    tokio::time::sleep(s.settle).await;
    let connected = sample_opt(s.server_pid)?;

    // 2b. Full histories, when asked: after the memory figure (so it stays
    //     the subscribers' alone) and with the subscribers connected, so the
    //     server renders what it stores, as a long-running one has.
    let (prefilled, window_base) = if s.prefill > 0 {
        let n = publisher::prefill(&s, s.prefill).await?;
        // Let the prefill's deliveries finish before the window begins.
        tokio::time::sleep(s.settle).await;
        (n, sample_opt(s.server_pid)?)
    } else {
        (0, connected)
    };

    // 3. Publish (or hold), sampling the server all along.
    let window_start = Instant::now();
    let timeline = Rc::new(RefCell::new(Vec::new()));
    let sampler = s.server_pid.map(|pid| {
        tokio::task::spawn_local(sample_timeline(
            pid,
            window_start,
            window_base.cpu_s,
            s.sample_every,
            timeline.clone(),
        ))
    });
    let bench_before = bench_cpu(&workers);
    let machine_before = procstat::machine_busy_s().unwrap_or(0.0);
    let mut storm = None;
    let publish = if s.scenario == Scenario::Idle {
        tokio::time::sleep(s.duration).await;
        PublishResult {
            per_channel: vec![0; s.channels],
            ..PublishResult::default()
        }
    } else {
        let publishing = publisher::run(&s, s.flow_control().then_some(floor_rx));
        if s.scenario == Scenario::Storm {
            let storming = async {
                tokio::time::sleep(s.duration / 2).await;
                for w in &mut workers {
                    w.send("STORM").await?;
                }
                let mut phase = Phase::default();
                for w in &mut workers {
                    let p: Phase = serde_json::from_str(&w.expect("STORMED", STORM_SLACK).await?)?;
                    merge_phase(&mut phase, p);
                }
                anyhow::Ok(phase)
            };
            let (published, stormed) = tokio::join!(publishing, storming);
            storm = Some(stormed?);
            published?
        } else {
            publishing.await?
        }
    };

    // 4. Drain until deliveries stop arriving, then CPU of the window.
    let drained = drain(&mut workers, s.drain).await?;
    if let Some(task) = sampler {
        task.abort();
    }
    let after = sample_opt(s.server_pid)?;
    let window_s = window_start.elapsed().as_secs_f64();
    let bench_cpu_s = bench_cpu(&workers) - bench_before;
    let machine_busy_s = procstat::machine_busy_s().unwrap_or(0.0) - machine_before;

    // 5. Results.
    let counts: Vec<String> = publish.per_channel.iter().map(u64::to_string).collect();
    let stop = format!("STOP {}", counts.join(" "));
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut total = Counts::default();
    for w in &mut workers {
        w.send(&stop).await?;
        let r: WorkerResult = serde_json::from_str(&w.expect("RESULT", RESULT_TIMEOUT).await?)?;
        for &(v, c) in &r.latency {
            hist.record_n(v, c).context("merging latency histograms")?;
        }
        total.add(&r.counts);
    }
    for w in &mut workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w.child.wait()).await;
    }

    let server_cpu = after.cpu_s - window_base.cpu_s;
    let server = ServerFigures {
        pid: s.server_pid,
        rss_before: before.rss_bytes,
        rss_connected: connected.rss_bytes,
        rss_after: after.rss_bytes,
        rss_per_sub: if connect.connected > 0 {
            (connected.rss_bytes as f64 - before.rss_bytes as f64) / connect.connected as f64
        } else {
            0.0
        },
        cpu_s: server_cpu,
        connect_cpu_s: after_connect_cpu.cpu_s - before.cpu_s,
        cpu_pct: 100.0 * server_cpu / window_s.max(1e-9),
        deliveries_per_cpu_s: if server_cpu > 0.0 {
            total.deliveries as f64 / server_cpu
        } else {
            0.0
        },
        timeline: timeline.take(),
    };
    let latency = Latency {
        count: hist.len(),
        p50: hist.value_at_quantile(0.50),
        p90: hist.value_at_quantile(0.90),
        p99: hist.value_at_quantile(0.99),
        p999: hist.value_at_quantile(0.999),
        max: hist.max(),
        mean: hist.mean(),
    };
    let storm_rate = storm
        .as_ref()
        .map(|p| p.connected as f64 / p.secs.max(1e-9));
    let storm_failed = storm.as_ref().map_or(0, |p| p.failed);
    let ok = connect.failed == 0
        && total.lost == 0
        && total.duplicated == 0
        && publish.errors == 0
        && storm_failed == 0
        && total.gave_up == 0;
    Ok(Report {
        scenario: s.scenario,
        label: s.label.clone(),
        mode: s.mode,
        target: s.target.to_string(),
        subscribers: s.subscribers,
        channels: s.channels,
        rate: s.rate,
        bytes: s.bytes,
        duration_s: s.duration.as_secs_f64(),
        workers: workers.len(),
        connect,
        connect_rate,
        deliveries_per_s: total.deliveries as f64 / publish.secs.max(1e-9),
        publish,
        counts: total,
        latency_us: latency,
        storm,
        storm_rate,
        drain_s: drained,
        prefilled,
        server,
        bench_cpu_s,
        bench_connect_cpu_s,
        machine_busy_s,
        other_cpu_s: (machine_busy_s - server_cpu - bench_cpu_s).max(0.0),
        window_s,
        ok,
    })
}

/// Appends a (time, RSS, CPU) sample of `pid` every `every` until aborted
/// or the process is gone.
async fn sample_timeline(
    pid: u32,
    start: Instant,
    cpu_at_start: f64,
    every: Duration,
    out: Rc<RefCell<Vec<(f64, u64, f64)>>>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate: the window just began
    loop {
        tick.tick().await;
        let Ok(s) = procstat::sample(pid) else { return };
        out.borrow_mut().push((
            start.elapsed().as_secs_f64(),
            s.rss_bytes,
            s.cpu_s - cpu_at_start,
        ));
    }
}

/// Waits until no worker has seen a new delivery for `quiet`, bounded by
/// [`MAX_DRAIN`]; a server (or generator) that is behind keeps delivering
/// after the last publish, and those messages are not lost. Returns the
/// seconds waited.
async fn drain(workers: &mut [Worker], quiet: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut last_total = u64::MAX;
    let mut last_change = start;
    while start.elapsed() < MAX_DRAIN {
        let mut total = 0u64;
        for w in workers.iter_mut() {
            w.send("PROGRESS").await?;
            total += w.expect("PROGRESS", RESULT_TIMEOUT).await?.parse::<u64>()?;
        }
        if total != last_total {
            last_total = total;
            last_change = Instant::now();
        } else if last_change.elapsed() >= quiet {
            break;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn merge_phase(into: &mut Phase, p: Phase) {
    into.connected += p.connected;
    into.failed += p.failed;
    into.attempts_failed += p.attempts_failed;
    into.secs = into.secs.max(p.secs);
    if into.first_error.is_none() {
        into.first_error = p.first_error;
    }
}

/// The readable summary printed on stderr.
pub fn summary(r: &Report) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut t = format!(
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
    );
    t += &format!(
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
    t += &format!(
        "  publish: {} sent, {} acked, {} errors, {:.0} msg/s\n",
        r.publish.sent, r.publish.acked, r.publish.errors, r.publish.rate
    );
    if let Some(e) = &r.publish.first_error {
        t += &format!("  first publish error: {e}\n");
    }
    t += &format!(
        "  deliveries: {} ({:.0}/s), expected {}, lost {}, duplicated {}, disconnects {}, reconnects {}\n",
        r.counts.deliveries,
        r.deliveries_per_s,
        r.counts.expected,
        r.counts.lost,
        r.counts.duplicated,
        r.counts.disconnects,
        r.counts.reconnects,
    );
    let l = &r.latency_us;
    t += &format!(
        "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    );
    if let (Some(st), Some(rate)) = (&r.storm, r.storm_rate) {
        t += &format!(
            "  storm: {} reconnected, {} failed in {:.3} s = {rate:.0}/s\n",
            st.connected, st.failed, st.secs
        );
    }
    let sv = &r.server;
    if let Some(pid) = sv.pid {
        t += &format!(
            "  server {pid}: RSS {:.1} -> {:.1} -> {:.1} MiB ({:.0} B/subscriber), CPU {:.2} s ({:.1}% of a core), {:.0} deliveries/CPU-s\n",
            sv.rss_before as f64 / 1048576.0,
            sv.rss_connected as f64 / 1048576.0,
            sv.rss_after as f64 / 1048576.0,
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
            first.1 as f64 / 1048576.0,
            first.0,
            last.1 as f64 / 1048576.0,
            last.0,
            peak as f64 / 1048576.0
        );
    }
    t += &format!(
        "  generator CPU {:.2} s; other processes {:.2} CPU-s over {:.1} s;  result: {}\n",
        r.bench_cpu_s,
        r.other_cpu_s,
        r.window_s,
        if r.ok { "OK" } else { "FAILED" }
    );
    t
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_evenly_within_the_cap() {
        assert_eq!(split(10, 1, 100), vec![10]);
        assert_eq!(split(10, 3, 100), vec![4, 3, 3]);
        assert_eq!(split(45_000, 1, 19_900), vec![15_000, 15_000, 15_000]);
        assert_eq!(split(19_900, 1, 19_900), vec![19_900]);
    }
}
