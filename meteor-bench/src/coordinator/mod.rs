//! The coordinator: starts the subscriber workers, publishes, triggers the
//! storm, samples the server from /proc and merges everything into one
//! [`Report`]. [`run`] reads as the list of its phases (each bounded in
//! time), one function each:
//! 1. `connect`: sample the server; start workers, which connect their
//!    subscribers at the ramp rate and answer `READY`;
//! 2. `settle`, sample the server again (memory per subscriber), then
//!    `prefill` the histories when asked;
//! 3. `publish` for the duration (storm: every subscriber reconnects
//!    halfway), sampling the server all along;
//! 4. `drain`, sample the server (CPU seconds of the publish window);
//! 5. `results`: `STOP` with the per-channel counts; workers answer
//!    `RESULT`.
//!
//! - [`workers`] — the worker processes and their pipes;
//! - [`report`] — the JSON report and the readable summary.

pub mod report;
pub mod workers;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;

use crate::cli::{Scenario, Settings};
use crate::procstat::{self, Sample};
use crate::publisher::{self, PublishResult};
use crate::worker::pipe::{Counts, Phase, ToWorker};
use crate::worker::tally::HIST_MAX_US;
use report::{Measured, WindowFigures};
pub use report::{Report, summary};
use workers::{Fleet, Worker, bench_cpu};

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
/// Bound on a worker exiting after its RESULT.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One run with settings `s`; the workers are `worker_exe --worker` (this
/// binary, or the one an integration test names).
pub async fn run(s: Settings, worker_exe: &Path) -> anyhow::Result<Report> {
    let shares = shares(&s)?;
    let before = sample_opt(s.server_pid)?;
    let (mut fleet, connect_phase, connect_cpu) = connect(&s, worker_exe, &shares).await?;
    let after_connect = sample_opt(s.server_pid)?;
    let connected = settle(&s).await?;
    let (prefilled, window_base) = prefill(&s, connected).await?;
    let meter = WindowMeter::open(&s, &fleet, &window_base);
    let (publish, storm) = publish(&s, &mut fleet).await?;
    let drain_s = drain(&mut fleet.workers, s.drain).await?;
    let window = meter.close(&s, &fleet)?;
    let (counts, latency) = results(&mut fleet.workers, &publish).await?;
    Ok(Report::new(
        &s,
        Measured {
            workers: fleet.workers.len(),
            connect: connect_phase,
            before,
            after_connect,
            connected,
            window_base,
            bench_connect_cpu_s: connect_cpu,
            prefilled,
            publish,
            storm,
            drain_s,
            window,
            counts,
            latency,
        },
    ))
}

/// How many subscribers each worker takes: as few workers as the open-file
/// limit allows (at least `--workers`).
fn shares(s: &Settings) -> anyhow::Result<Vec<usize>> {
    let fd_limit = meteor_proto::fd_limit::raise_fd_limit();
    let cap = fd_limit.saturating_sub(FD_RESERVE).max(1) as usize;
    let shares = workers::split(s.subscribers, s.workers, cap);
    if shares.len() > crate::cli::MAX_WORKERS {
        bail!(
            "{} subscribers need {} workers at {cap} per worker; the limit is {}",
            s.subscribers,
            shares.len(),
            crate::cli::MAX_WORKERS
        );
    }
    Ok(shares)
}

/// Phase 1: start the workers and wait until each has connected its
/// subscribers. Returns them, the merged phase, and the generator's CPU
/// seconds for it (the workers did nothing but start up and connect).
async fn connect(
    s: &Settings,
    worker_exe: &Path,
    shares: &[usize],
) -> anyhow::Result<(Fleet, Phase, f64)> {
    let cpu_before = bench_cpu(&[]);
    let mut fleet = Fleet::start(s, worker_exe, shares).await?;
    let ramp = Duration::from_secs_f64(s.subscribers as f64 / s.connect_rate);
    let mut phase = Phase::default();
    for w in &mut fleet.workers {
        phase.merge(w.ready(ramp + READY_SLACK).await?);
    }
    let cpu = fleet.cpu_s() - cpu_before;
    Ok((fleet, phase, cpu))
}

/// Phase 2: let the connections settle, then the memory figure.
async fn settle(s: &Settings) -> anyhow::Result<Sample> {
    tokio::time::sleep(s.settle).await;
    sample_opt(s.server_pid)
}

/// Phase 2b, when asked: full histories, after the memory figure (so it
/// stays the subscribers' alone) and with the subscribers connected, so
/// the server renders what it stores, as a long-running one has. Returns
/// the messages published and the server sample the window starts from.
async fn prefill(s: &Settings, connected: Sample) -> anyhow::Result<(u64, Sample)> {
    if s.prefill == 0 {
        return Ok((0, connected));
    }
    let n = publisher::prefill(s, s.prefill).await?;
    // Let the prefill's deliveries finish before the window begins.
    tokio::time::sleep(s.settle).await;
    Ok((n, sample_opt(s.server_pid)?))
}

/// Phase 3: publish (or hold, for idle) for the duration; a storm
/// scenario reconnects every subscriber halfway.
async fn publish(
    s: &Settings,
    fleet: &mut Fleet,
) -> anyhow::Result<(PublishResult, Option<Phase>)> {
    if s.scenario == Scenario::Idle {
        tokio::time::sleep(s.duration).await;
        let held = PublishResult {
            per_channel: vec![0; s.channels],
            ..PublishResult::default()
        };
        return Ok((held, None));
    }
    let floor = s.flow_control().then(|| fleet.floor.clone());
    let publishing = publisher::run(s, floor);
    if s.scenario != Scenario::Storm {
        return Ok((publishing.await?, None));
    }
    let (published, stormed) = tokio::join!(publishing, storm(s, &mut fleet.workers));
    Ok((published?, Some(stormed?)))
}

/// Halfway through the publish window, every worker's subscribers drop
/// their connections and resume; returns the merged reconnect phase.
async fn storm(s: &Settings, workers: &mut [Worker]) -> anyhow::Result<Phase> {
    tokio::time::sleep(s.duration / 2).await;
    for w in workers.iter_mut() {
        w.send(&ToWorker::Storm).await?;
    }
    let mut phase = Phase::default();
    for w in workers.iter_mut() {
        phase.merge(w.stormed(STORM_SLACK).await?);
    }
    Ok(phase)
}

/// Phase 4: waits until no worker has seen a new delivery for `quiet`,
/// bounded by [`MAX_DRAIN`]; a server (or generator) that is behind keeps
/// delivering after the last publish, and those messages are not lost.
/// Returns the seconds waited.
async fn drain(workers: &mut [Worker], quiet: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut last_total = u64::MAX;
    let mut last_change = start;
    while start.elapsed() < MAX_DRAIN {
        let mut total = 0u64;
        for w in workers.iter_mut() {
            total += w.progress(RESULT_TIMEOUT).await?;
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

/// Phase 5: `STOP` with what was published per channel; sums the workers'
/// `RESULT`s and merges their latency histograms, then lets them exit.
async fn results(
    workers: &mut [Worker],
    publish: &PublishResult,
) -> anyhow::Result<(Counts, Histogram<u64>)> {
    let stop = ToWorker::Stop(publish.per_channel.clone());
    let mut hist = Histogram::<u64>::new_with_bounds(1, HIST_MAX_US, 3)?;
    let mut total = Counts::default();
    for w in workers.iter_mut() {
        w.send(&stop).await?;
        let r = w.result(RESULT_TIMEOUT).await?;
        for &(v, c) in &r.latency {
            hist.record_n(v, c).context("merging latency histograms")?;
        }
        total.add(&r.counts);
    }
    for w in workers.iter_mut() {
        let _ = tokio::time::timeout(EXIT_TIMEOUT, w.child.wait()).await;
    }
    Ok((total, hist))
}

/// The publish window's measurements, from its start (phase 3) to the end
/// of the drain (phase 4): the server's timeline, and the CPU of the
/// generator and of the whole machine.
struct WindowMeter {
    start: Instant,
    timeline: Rc<RefCell<Vec<(f64, u64, f64)>>>,
    sampler: Option<JoinHandle<()>>,
    bench_before: f64,
    machine_before: f64,
}

impl WindowMeter {
    fn open(s: &Settings, fleet: &Fleet, base: &Sample) -> Self {
        let start = Instant::now();
        let timeline = Rc::new(RefCell::new(Vec::new()));
        let sampler = s.server_pid.map(|pid| {
            tokio::task::spawn_local(sample_timeline(
                pid,
                start,
                base.cpu_s,
                s.sample_every,
                timeline.clone(),
            ))
        });
        Self {
            start,
            timeline,
            sampler,
            bench_before: fleet.cpu_s(),
            machine_before: procstat::machine_busy_s().unwrap_or(0.0),
        }
    }

    fn close(self, s: &Settings, fleet: &Fleet) -> anyhow::Result<WindowFigures> {
        if let Some(task) = self.sampler {
            task.abort();
        }
        let after = sample_opt(s.server_pid)?;
        Ok(WindowFigures {
            after,
            window_s: self.start.elapsed().as_secs_f64(),
            bench_cpu_s: fleet.cpu_s() - self.bench_before,
            machine_busy_s: procstat::machine_busy_s().unwrap_or(0.0) - self.machine_before,
            timeline: self.timeline.take(),
        })
    }
}

fn sample_opt(pid: Option<u32>) -> anyhow::Result<Sample> {
    match pid {
        Some(p) => procstat::sample(p).with_context(|| format!("sampling --server-pid {p}")),
        None => Ok(Sample::default()),
    }
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
