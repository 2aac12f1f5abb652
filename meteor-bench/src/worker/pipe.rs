//! The pipe protocol between the coordinator and its workers, one line per
//! message, parsed and formatted here for both sides:
//! - the coordinator writes [`ToWorker`] on the worker's stdin: first the
//!   [`Plan`] as bare JSON, then `STORM` (every subscriber drops its
//!   connection and resumes from its last id), `PROGRESS` (answered with
//!   the deliveries so far) and `STOP <published per channel…>` (report
//!   and exit). End of input makes the worker exit.
//! - the worker writes [`FromWorker`] on its stdout: `READY <json>` when
//!   every subscriber is connected or has failed, `STORMED <json>` after a
//!   storm, `PROGRESS <n>`, `RESULT <json>` at the end, and, with flow
//!   control (rate 0), `FLOOR <n>` lines at any time.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::cli::Settings;

/// What one worker is asked to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    pub settings: Settings,
    pub index: usize,
    pub workers: usize,
    /// Global index of this worker's first subscriber.
    pub first: usize,
    pub count: usize,
}

/// `READY` / `STORMED` payload: result of a connect phase.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Phase {
    pub connected: u64,
    pub failed: u64,
    pub attempts_failed: u64,
    pub secs: f64,
    pub first_error: Option<String>,
}

impl Phase {
    /// Adds another worker's phase (the slowest worker's time counts).
    pub fn merge(&mut self, p: Phase) {
        self.connected += p.connected;
        self.failed += p.failed;
        self.attempts_failed += p.attempts_failed;
        self.secs = self.secs.max(p.secs);
        if self.first_error.is_none() {
            self.first_error = p.first_error;
        }
    }
}

/// What subscribers saw, as totals: one worker's in its `RESULT` line, the
/// whole run's in the report (the same JSON keys in both).
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Counts {
    pub deliveries: u64,
    /// Bytes the subscribers read (headers, pings, framing included).
    pub bytes_read: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub subs_with_loss: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub gave_up: u64,
}

impl Counts {
    /// Adds another worker's totals.
    pub fn add(&mut self, o: &Counts) {
        self.deliveries += o.deliveries;
        self.bytes_read += o.bytes_read;
        self.expected += o.expected;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.subs_with_loss += o.subs_with_loss;
        self.disconnects += o.disconnects;
        self.reconnects += o.reconnects;
        self.gave_up += o.gave_up;
    }
}

/// `RESULT` payload: what this worker's subscribers saw.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    #[serde(flatten)]
    pub counts: Counts,
    /// Latency histogram as (microseconds, count) pairs.
    pub latency: Vec<(u64, u64)>,
}

/// Coordinator → worker.
#[derive(Debug)]
pub enum ToWorker {
    /// The first line, as bare JSON (it starts with `{`).
    Plan(Box<Plan>),
    /// `STORM`.
    Storm,
    /// `PROGRESS`.
    Progress,
    /// `STOP <n> <n> …`: messages published per channel, by number.
    Stop(Vec<u64>),
}

impl ToWorker {
    /// The line, without its newline.
    pub fn format(&self) -> anyhow::Result<String> {
        Ok(match self {
            Self::Plan(plan) => serde_json::to_string(plan)?,
            Self::Storm => "STORM".to_owned(),
            Self::Progress => "PROGRESS".to_owned(),
            Self::Stop(published) => {
                let counts: Vec<String> = published.iter().map(u64::to_string).collect();
                format!("STOP {}", counts.join(" "))
            }
        })
    }

    /// One line, without its newline.
    pub fn parse(line: &str) -> anyhow::Result<Self> {
        if line.starts_with('{') {
            let plan = serde_json::from_str(line).context("worker: bad plan")?;
            return Ok(Self::Plan(Box::new(plan)));
        }
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        Ok(match tag {
            "STORM" if rest.is_empty() => Self::Storm,
            "PROGRESS" if rest.is_empty() => Self::Progress,
            "STOP" => Self::Stop(
                rest.split_ascii_whitespace()
                    .map(str::parse::<u64>)
                    .collect::<Result<_, _>>()
                    .context("worker: bad STOP line")?,
            ),
            _ => bail!("worker: unknown command {line:?}"),
        })
    }
}

/// Worker → coordinator.
#[derive(Debug)]
pub enum FromWorker {
    /// `READY <json>`.
    Ready(Phase),
    /// `STORMED <json>`.
    Stormed(Phase),
    /// `PROGRESS <deliveries so far>`.
    Progress(u64),
    /// `RESULT <json>`.
    Result(WorkerResult),
    /// `FLOOR <n>`: the lowest next sequence number over the worker's live
    /// subscribers (flow control).
    Floor(u64),
}

impl FromWorker {
    /// The line, newline included (the worker queues whole lines).
    pub fn format(&self) -> anyhow::Result<String> {
        Ok(match self {
            Self::Ready(p) => format!("READY {}\n", serde_json::to_string(p)?),
            Self::Stormed(p) => format!("STORMED {}\n", serde_json::to_string(p)?),
            Self::Progress(n) => format!("PROGRESS {n}\n"),
            Self::Result(r) => format!("RESULT {}\n", serde_json::to_string(r)?),
            Self::Floor(n) => format!("FLOOR {n}\n"),
        })
    }

    /// One line, without its newline.
    pub fn parse(line: &str) -> anyhow::Result<Self> {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        let json = || format!("bad {tag} line from a worker: {line:?}");
        Ok(match tag {
            "READY" => Self::Ready(serde_json::from_str(rest).with_context(json)?),
            "STORMED" => Self::Stormed(serde_json::from_str(rest).with_context(json)?),
            "PROGRESS" => Self::Progress(rest.parse().with_context(json)?),
            "RESULT" => Self::Result(serde_json::from_str(rest).with_context(json)?),
            "FLOOR" => Self::Floor(rest.parse().with_context(json)?),
            _ => bail!("worker said {line:?}"),
        })
    }

    /// The tag, for messages about an unexpected line.
    pub fn tag(&self) -> &'static str {
        match self {
            Self::Ready(_) => "READY",
            Self::Stormed(_) => "STORMED",
            Self::Progress(_) => "PROGRESS",
            Self::Result(_) => "RESULT",
            Self::Floor(_) => "FLOOR",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_worker_round_trip(msg: ToWorker) -> ToWorker {
        let line = msg.format().unwrap();
        assert!(!line.contains('\n'), "{line:?}");
        ToWorker::parse(&line).unwrap()
    }

    fn from_worker_round_trip(msg: FromWorker) -> FromWorker {
        let line = msg.format().unwrap();
        let body = line.strip_suffix('\n').expect("one whole line");
        assert!(!body.contains('\n'), "{line:?}");
        FromWorker::parse(body).unwrap()
    }

    #[test]
    fn commands_keep_their_wire_form() {
        assert_eq!(ToWorker::Storm.format().unwrap(), "STORM");
        assert_eq!(ToWorker::Progress.format().unwrap(), "PROGRESS");
        assert_eq!(
            ToWorker::Stop(vec![3, 0, 12]).format().unwrap(),
            "STOP 3 0 12"
        );
        assert!(matches!(
            to_worker_round_trip(ToWorker::Storm),
            ToWorker::Storm
        ));
        assert!(matches!(
            to_worker_round_trip(ToWorker::Stop(vec![3, 0, 12])),
            ToWorker::Stop(v) if v == [3, 0, 12]
        ));
        assert!(ToWorker::parse("STOP 1 x").is_err());
        assert!(ToWorker::parse("STORMY").is_err());
        assert!(ToWorker::parse("").is_err());
    }

    #[test]
    fn the_plan_goes_as_bare_json() {
        use clap::Parser;
        let args =
            crate::cli::Args::try_parse_from(["meteor-bench", "-s", "idle", "-n", "3"]).unwrap();
        let plan = Plan {
            settings: Settings::from_args(args).unwrap(),
            index: 1,
            workers: 2,
            first: 2,
            count: 1,
        };
        let line = ToWorker::Plan(Box::new(plan)).format().unwrap();
        assert!(line.starts_with("{\"settings\":"), "{line}");
        match ToWorker::parse(&line).unwrap() {
            ToWorker::Plan(p) => assert_eq!(
                (p.index, p.first, p.count, p.settings.subscribers),
                (1, 2, 1, 3)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_keep_their_wire_form() {
        assert_eq!(FromWorker::Floor(7).format().unwrap(), "FLOOR 7\n");
        assert_eq!(FromWorker::Progress(42).format().unwrap(), "PROGRESS 42\n");
        let ready = FromWorker::Ready(Phase {
            connected: 5,
            ..Phase::default()
        });
        assert_eq!(
            ready.format().unwrap(),
            "READY {\"connected\":5,\"failed\":0,\"attempts_failed\":0,\"secs\":0.0,\"first_error\":null}\n"
        );
        match from_worker_round_trip(ready) {
            FromWorker::Ready(p) => assert_eq!(p.connected, 5),
            other => panic!("{other:?}"),
        }
        let result = FromWorker::Result(WorkerResult {
            counts: Counts {
                deliveries: 9,
                ..Counts::default()
            },
            latency: vec![(10, 9)],
        });
        match from_worker_round_trip(result) {
            FromWorker::Result(r) => {
                assert_eq!((r.counts.deliveries, r.latency), (9, vec![(10, 9)]))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_worker_round_trip(FromWorker::Floor(u64::MAX)),
            FromWorker::Floor(u64::MAX)
        ));
        assert!(FromWorker::parse("FLOOR x").is_err());
        assert!(FromWorker::parse("READY {").is_err());
        assert!(FromWorker::parse("hello").is_err());
    }

    #[test]
    fn phases_merge_with_the_slowest_time() {
        let mut a = Phase {
            connected: 2,
            secs: 1.0,
            ..Phase::default()
        };
        a.merge(Phase {
            connected: 1,
            failed: 1,
            secs: 3.0,
            first_error: Some("refused".into()),
            ..Phase::default()
        });
        assert_eq!((a.connected, a.failed, a.secs), (3, 1, 3.0));
        assert_eq!(a.first_error.as_deref(), Some("refused"));
    }
}
