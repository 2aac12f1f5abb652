//! A subscriber worker process (`meteor-bench --worker`): holds a share of
//! the subscribers, and reports to the coordinator over the [`pipe`]
//! protocol: the plan comes in, the subscribers ramp up at the planned
//! rate, `READY` goes out, and then it answers commands until `STOP`.
//!
//! One current-thread runtime; subscriber tasks share one
//! [`tally::Shared`] state through `Rc<RefCell<…>>` (borrowed once per
//! read, never across an await).
//!
//! - [`pipe`] — the line protocol with the coordinator, both directions;
//! - [`subscriber`] — one subscriber's connection lifecycle;
//! - [`tally`] — what the subscribers saw: gaps, duplicates, latency.

pub mod pipe;
pub mod subscriber;
pub mod tally;
pub mod websocket;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc, watch};

use pipe::{FromWorker, Phase, Plan, ToWorker};
use subscriber::Outcome;
use tally::Shared;

/// Extra time the connect phase may take beyond the ramp itself.
const CONNECT_PHASE_SLACK: Duration = Duration::from_secs(60);
/// Bound on waiting for every subscriber to reconnect after a storm.
const STORM_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a flow-controlled worker reports its delivery floor.
const FLOOR_INTERVAL: Duration = Duration::from_millis(2);

/// Entry point of `meteor-bench --worker`.
pub fn main() -> anyhow::Result<()> {
    meteor_proto::fd_limit::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the worker runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run())
}

/// Queues one report for the stdout writer.
fn send(out: &mpsc::UnboundedSender<String>, msg: &FromWorker) -> anyhow::Result<()> {
    out.send(msg.format()?)
        .context("worker: stdout writer gone")
}

async fn run() -> anyhow::Result<()> {
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    // One writer owns stdout, so the FLOOR reports and the answers to
    // commands never interleave inside a line.
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::task::spawn_local(write_lines(out_rx));
    let first = stdin
        .next_line()
        .await?
        .context("worker: no plan on stdin")?;
    let ToWorker::Plan(plan) = ToWorker::parse(&first)? else {
        bail!("worker: expected the plan first, got {first:?}");
    };
    let plan: Rc<Plan> = Rc::new(*plan);
    let s = &plan.settings;
    let shared = Rc::new(RefCell::new(Shared::new(plan.count, |i| {
        (plan.first + i) % s.channels
    })?));
    let (outcome_tx, mut outcome_rx) = mpsc::unbounded_channel();
    let (storm_tx, storm_rx) = watch::channel(0u64);

    let ready = ramp_up(&plan, &shared, storm_rx, outcome_tx, &mut outcome_rx).await?;
    send(&out_tx, &FromWorker::Ready(ready))?;
    if s.flow_control() {
        tokio::task::spawn_local(report_floor(shared.clone(), out_tx.clone()));
    }

    let mut storms = 0u64;
    while let Some(line) = stdin.next_line().await? {
        match ToWorker::parse(&line)? {
            ToWorker::Storm => {
                let alive = shared.borrow().subs.iter().filter(|s| s.connected).count();
                storms += 1;
                let t0 = Instant::now();
                storm_tx.send_replace(storms);
                let phase = collect(&mut outcome_rx, alive, t0, STORM_TIMEOUT).await;
                send(&out_tx, &FromWorker::Stormed(phase))?;
            }
            ToWorker::Progress => {
                let deliveries = shared.borrow().deliveries;
                send(&out_tx, &FromWorker::Progress(deliveries))?;
            }
            ToWorker::Stop(published) => {
                if published.len() != s.channels {
                    bail!(
                        "worker: STOP names {} channels, plan has {}",
                        published.len(),
                        s.channels
                    );
                }
                let result = tally::finish(&shared.borrow(), &published);
                send(&out_tx, &FromWorker::Result(result))?;
                drop(out_tx);
                return writer.await?;
            }
            ToWorker::Plan(_) => bail!("worker: a second plan"),
        }
    }
    Ok(())
}

/// Starts every subscriber of the plan on the ramp (subscriber i of this
/// worker at i / (rate / workers), at most `connect_concurrency`
/// connecting at once) and waits until each has connected or failed.
async fn ramp_up(
    plan: &Rc<Plan>,
    shared: &Rc<RefCell<Shared>>,
    storm_rx: watch::Receiver<u64>,
    outcome_tx: mpsc::UnboundedSender<Outcome>,
    outcome_rx: &mut mpsc::UnboundedReceiver<Outcome>,
) -> anyhow::Result<Phase> {
    let s = &plan.settings;
    let connecting = std::sync::Arc::new(Semaphore::new(s.connect_concurrency));
    let per_worker_rate = s.connect_rate / plan.workers as f64;
    let start = Instant::now();
    for i in 0..plan.count {
        let due = start + Duration::from_secs_f64(i as f64 / per_worker_rate);
        if due > Instant::now() + Duration::from_millis(1) {
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = connecting.clone().acquire_owned().await?;
        tokio::task::spawn_local(subscriber::run(
            i,
            plan.clone(),
            shared.clone(),
            storm_rx.clone(),
            outcome_tx.clone(),
            permit,
        ));
    }
    drop(outcome_tx);
    let ramp = Duration::from_secs_f64(plan.count as f64 / per_worker_rate);
    Ok(collect(outcome_rx, plan.count, start, ramp + CONNECT_PHASE_SLACK).await)
}

/// Writes queued lines to stdout until every sender is gone.
async fn write_lines(mut rx: mpsc::UnboundedReceiver<String>) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    while let Some(line) = rx.recv().await {
        stdout.write_all(line.as_bytes()).await?;
        stdout.flush().await?;
    }
    Ok(())
}

/// Flow control for "as fast as possible" runs: reports `FLOOR <n>`, the
/// lowest next sequence number over this worker's live subscribers,
/// whenever it moves, so the publisher never gets more than `--max-lag`
/// messages ahead of the slowest subscriber (which would otherwise fall
/// out of the server's history and lose messages).
async fn report_floor(shared: Rc<RefCell<Shared>>, out: mpsc::UnboundedSender<String>) {
    let mut last = None;
    let mut tick = tokio::time::interval(FLOOR_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let floor = shared.borrow().floor();
        if last != Some(floor) {
            last = Some(floor);
            if send(&out, &FromWorker::Floor(floor)).is_err() {
                return;
            }
        }
    }
}

/// Waits for `count` outcomes (or the timeout) and sums them up.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Outcome>,
    count: usize,
    start: Instant,
    timeout: Duration,
) -> Phase {
    let mut phase = Phase::default();
    let deadline = tokio::time::Instant::from_std(start + timeout);
    let mut last = start;
    for _ in 0..count {
        let Ok(Some(o)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        if o.ok {
            phase.connected += 1;
        } else {
            phase.failed += 1;
        }
        phase.attempts_failed += o.attempts_failed;
        if phase.first_error.is_none() {
            phase.first_error = o.error;
        }
        last = last.max(o.at);
    }
    let missing = count as u64 - phase.connected - phase.failed;
    if missing > 0 {
        phase.failed += missing;
        phase.first_error.get_or_insert_with(|| {
            format!("{missing} subscribers still connecting at the timeout")
        });
    }
    phase.secs = (last - start).as_secs_f64();
    phase
}
