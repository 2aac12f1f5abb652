//! The coordinator's side of its worker processes: splitting the
//! subscribers over them, starting them (this binary re-executed as
//! `--worker`), sending [`ToWorker`] commands and awaiting the
//! [`FromWorker`] answers, and folding their `FLOOR` reports into one
//! flow-control floor for the publisher.

use std::cell::RefCell;
use std::path::Path;
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use crate::cli::Settings;
use crate::procstat;
use crate::worker::pipe::{FromWorker, Phase, Plan, ToWorker, WorkerResult};

/// Splits `n` subscribers over workers of at most `cap` each.
pub fn split(n: usize, min_workers: usize, cap: usize) -> Vec<usize> {
    let k = min_workers.max(n.div_ceil(cap.max(1)));
    (0..k).map(|i| n / k + usize::from(i < n % k)).collect()
}

/// One running worker process.
pub struct Worker {
    pub child: Child,
    stdin: ChildStdin,
    /// What the worker said, `FLOOR` excepted (see [`read_worker`]).
    reports: mpsc::UnboundedReceiver<anyhow::Result<FromWorker>>,
    pub pid: Option<u32>,
}

/// Every worker of a run, and the floor over all of them.
pub struct Fleet {
    pub workers: Vec<Worker>,
    /// The lowest `FLOOR` over all workers (0 until each has reported: the
    /// publisher may run `max_lag` ahead of a worker it has not heard from).
    pub floor: watch::Receiver<u64>,
}

impl Fleet {
    /// Starts one `worker_exe --worker` per share and sends each its plan.
    pub async fn start(s: &Settings, worker_exe: &Path, shares: &[usize]) -> anyhow::Result<Self> {
        let mut workers = Vec::with_capacity(shares.len());
        let floors = Rc::new(RefCell::new(vec![0u64; shares.len()]));
        let (floor_tx, floor) = watch::channel(0u64);
        let floor_tx = Rc::new(floor_tx);
        let mut first = 0;
        for (index, &count) in shares.iter().enumerate() {
            let mut child = tokio::process::Command::new(worker_exe)
                .arg("--worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker {}", worker_exe.display()))?;
            let pid = child.id();
            let stdin = child.stdin.take().context("worker stdin")?;
            let stdout = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
            let (tx, reports) = mpsc::unbounded_channel();
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
                reports,
                pid,
            };
            let plan = Plan {
                settings: s.clone(),
                index,
                workers: shares.len(),
                first,
                count,
            };
            w.send(&ToWorker::Plan(Box::new(plan))).await?;
            workers.push(w);
            first += count;
        }
        Ok(Self { workers, floor })
    }

    /// CPU seconds of the generator: this process and every worker.
    pub fn cpu_s(&self) -> f64 {
        bench_cpu(&self.workers)
    }
}

/// CPU seconds of this process plus those of `workers`.
pub fn bench_cpu(workers: &[Worker]) -> f64 {
    let own = procstat::sample(std::process::id()).map_or(0.0, |s| s.cpu_s);
    own + workers
        .iter()
        .filter_map(|w| w.pid.and_then(|p| procstat::sample(p).ok()))
        .map(|s| s.cpu_s)
        .sum::<f64>()
}

/// Reads one worker's stdout: `FLOOR` lines update that worker's entry in
/// `floors` and the minimum over all workers in `min_floor`; every other
/// report (or a line that is none) goes to the coordinator.
async fn read_worker(
    index: usize,
    mut stdout: Lines<BufReader<ChildStdout>>,
    to_coordinator: mpsc::UnboundedSender<anyhow::Result<FromWorker>>,
    floors: Rc<RefCell<Vec<u64>>>,
    min_floor: Rc<watch::Sender<u64>>,
) {
    while let Ok(Some(line)) = stdout.next_line().await {
        match FromWorker::parse(&line) {
            Ok(FromWorker::Floor(v)) => {
                let min = {
                    let mut f = floors.borrow_mut();
                    f[index] = v;
                    f.iter().copied().min().unwrap_or(0)
                };
                min_floor.send_if_modified(|old| std::mem::replace(old, min) != min);
            }
            other => {
                if to_coordinator.send(other).is_err() {
                    return;
                }
            }
        }
    }
}

impl Worker {
    pub async fn send(&mut self, msg: &ToWorker) -> anyhow::Result<()> {
        self.stdin.write_all(msg.format()?.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// The next report, waiting at most `timeout` for an answer to `tag`.
    async fn next(&mut self, tag: &str, timeout: Duration) -> anyhow::Result<FromWorker> {
        tokio::time::timeout(timeout, self.reports.recv())
            .await
            .with_context(|| format!("worker did not answer {tag} within {timeout:?}"))?
            .with_context(|| format!("worker exited before {tag}"))?
            .with_context(|| format!("expected {tag}"))
    }

    pub async fn ready(&mut self, timeout: Duration) -> anyhow::Result<Phase> {
        match self.next("READY", timeout).await? {
            FromWorker::Ready(p) => Ok(p),
            other => unexpected(&other, "READY"),
        }
    }

    pub async fn stormed(&mut self, timeout: Duration) -> anyhow::Result<Phase> {
        match self.next("STORMED", timeout).await? {
            FromWorker::Stormed(p) => Ok(p),
            other => unexpected(&other, "STORMED"),
        }
    }

    pub async fn progress(&mut self, timeout: Duration) -> anyhow::Result<u64> {
        self.send(&ToWorker::Progress).await?;
        match self.next("PROGRESS", timeout).await? {
            FromWorker::Progress(n) => Ok(n),
            other => unexpected(&other, "PROGRESS"),
        }
    }

    pub async fn result(&mut self, timeout: Duration) -> anyhow::Result<WorkerResult> {
        match self.next("RESULT", timeout).await? {
            FromWorker::Result(r) => Ok(r),
            other => unexpected(&other, "RESULT"),
        }
    }
}

fn unexpected<T>(got: &FromWorker, wanted: &str) -> anyhow::Result<T> {
    bail!("worker said {}, expected {wanted}", got.tag())
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
