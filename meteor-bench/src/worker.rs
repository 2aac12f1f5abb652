//! A subscriber worker process: holds a share of the subscribers, parses
//! their deliveries and reports to the coordinator.
//!
//! The coordinator re-executes this binary as `meteor-bench --worker` and
//! talks to it over pipes, one line per message:
//! - stdin, first line: the [`Plan`] as JSON; then `STORM` (every
//!   subscriber drops its connection and resumes from its last id) and
//!   `STOP <published per channel…>` (report and exit), `PROGRESS`
//!   (answered with the deliveries so far). End of input exits.
//! - stdout: `READY <json>` when every subscriber is connected or has
//!   failed, `STORMED <json>` after a storm, `PROGRESS <n>`, and
//!   `RESULT <json>` at the end; with flow control (rate 0) also
//!   `FLOOR <n>` lines at any time.
//!
//! One current-thread runtime; subscriber tasks share one [`Shared`] state
//! through `Rc<RefCell<…>>` (borrowed once per read, never across an await).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::cli::{Mode, Settings};
use crate::payload;

/// Attempts to (re)connect one subscriber before it gives up for good.
const CONNECT_ATTEMPTS: u32 = 20;
/// Pause after a failed attempt, multiplied by the attempt number.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// Bound on one connect + response-header exchange.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest response head accepted from the server.
const MAX_HEAD: usize = 8 * 1024;
/// Extra time the connect phase may take beyond the ramp itself.
const CONNECT_PHASE_SLACK: Duration = Duration::from_secs(60);
/// Bound on waiting for every subscriber to reconnect after a storm.
const STORM_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a flow-controlled worker reports its delivery floor.
const FLOOR_INTERVAL: Duration = Duration::from_millis(2);
/// Latency histogram range: 1 µs to 10 minutes, 3 significant digits.
const HIST_MAX_US: u64 = 600_000_000;

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

/// `READY` / `STORMED` line: result of a connect phase.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Phase {
    pub connected: u64,
    pub failed: u64,
    pub attempts_failed: u64,
    pub secs: f64,
    pub first_error: Option<String>,
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

/// `RESULT` line: what this worker's subscribers saw.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    #[serde(flatten)]
    pub counts: Counts,
    /// Latency histogram as (microseconds, count) pairs.
    pub latency: Vec<(u64, u64)>,
}

/// Per-subscriber bookkeeping, O(1) in the number of messages: servers
/// deliver a channel in order, so a sequence number above the next
/// expected one is a gap (loss) and one below it is a duplicate.
#[derive(Debug, Default)]
struct SubState {
    channel: usize,
    connected: bool,
    gave_up: bool,
    next_seq: u64,
    gaps: u64,
    dups: u64,
    last_meteor_id: Option<u64>,
    last_event_id: Vec<u8>,
}

struct Shared {
    subs: Vec<SubState>,
    hist: Histogram<u64>,
    deliveries: u64,
    bytes_read: u64,
    disconnects: u64,
    reconnects: u64,
}

struct Outcome {
    ok: bool,
    attempts_failed: u64,
    at: Instant,
    error: Option<String>,
}

/// Entry point of `meteor-bench --worker`.
pub fn main() -> anyhow::Result<()> {
    crate::raise_fd_limit()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the worker runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run())
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
    let plan: Plan = serde_json::from_str(&first).context("worker: bad plan")?;
    let plan = Rc::new(plan);
    let s = &plan.settings;

    let shared = Rc::new(RefCell::new(Shared {
        subs: (0..plan.count)
            .map(|i| SubState {
                channel: (plan.first + i) % s.channels,
                ..SubState::default()
            })
            .collect(),
        hist: Histogram::new_with_bounds(1, HIST_MAX_US, 3)?,
        deliveries: 0,
        bytes_read: 0,
        disconnects: 0,
        reconnects: 0,
    }));
    let (outcome_tx, mut outcome_rx) = mpsc::unbounded_channel();
    let (storm_tx, storm_rx) = watch::channel(0u64);
    let connecting = std::sync::Arc::new(Semaphore::new(s.connect_concurrency));

    // Ramp: subscriber i of this worker starts at i / (rate / workers).
    let per_worker_rate = s.connect_rate / plan.workers as f64;
    let start = Instant::now();
    for i in 0..plan.count {
        let due = start + Duration::from_secs_f64(i as f64 / per_worker_rate);
        if due > Instant::now() + Duration::from_millis(1) {
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = connecting.clone().acquire_owned().await?;
        tokio::task::spawn_local(subscriber(
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
    let ready = collect(
        &mut outcome_rx,
        plan.count,
        start,
        ramp + CONNECT_PHASE_SLACK,
    )
    .await;
    send(&out_tx, "READY", &ready)?;
    if s.flow_control() {
        tokio::task::spawn_local(report_floor(shared.clone(), out_tx.clone()));
    }

    let mut storms = 0u64;
    while let Some(cmd) = stdin.next_line().await? {
        if cmd == "STORM" {
            let alive = shared.borrow().subs.iter().filter(|s| s.connected).count();
            storms += 1;
            let t0 = Instant::now();
            storm_tx.send_replace(storms);
            let phase = collect(&mut outcome_rx, alive, t0, STORM_TIMEOUT).await;
            send(&out_tx, "STORMED", &phase)?;
        } else if cmd == "PROGRESS" {
            let deliveries = shared.borrow().deliveries;
            out_tx.send(format!("PROGRESS {deliveries}\n"))?;
        } else if let Some(rest) = cmd.strip_prefix("STOP") {
            let published = rest
                .split_ascii_whitespace()
                .map(str::parse::<u64>)
                .collect::<Result<Vec<_>, _>>()
                .context("worker: bad STOP line")?;
            if published.len() != s.channels {
                bail!(
                    "worker: STOP names {} channels, plan has {}",
                    published.len(),
                    s.channels
                );
            }
            let result = finish(&shared.borrow(), &published);
            send(&out_tx, "RESULT", &result)?;
            drop(out_tx);
            return writer.await?;
        } else {
            bail!("worker: unknown command {cmd:?}");
        }
    }
    Ok(())
}

fn send<T: Serialize>(out: &mpsc::UnboundedSender<String>, tag: &str, v: &T) -> anyhow::Result<()> {
    out.send(format!("{tag} {}\n", serde_json::to_string(v)?))
        .context("worker: stdout writer gone")
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
        let floor = shared
            .borrow()
            .subs
            .iter()
            .filter(|s| s.connected && !s.gave_up)
            .map(|s| s.next_seq)
            .min()
            .unwrap_or(u64::MAX);
        if last != Some(floor) {
            last = Some(floor);
            if out.send(format!("FLOOR {floor}\n")).is_err() {
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

fn finish(sh: &Shared, published: &[u64]) -> WorkerResult {
    let mut c = Counts {
        deliveries: sh.deliveries,
        bytes_read: sh.bytes_read,
        disconnects: sh.disconnects,
        reconnects: sh.reconnects,
        ..Counts::default()
    };
    for st in &sh.subs {
        if st.gave_up {
            c.gave_up += 1;
        }
        // A subscriber that never connected is a setup failure, not loss.
        if !st.connected && st.next_seq == 0 {
            continue;
        }
        let p = published[st.channel];
        let lost = p.saturating_sub(st.next_seq) + st.gaps;
        c.expected += p;
        c.lost += lost;
        c.duplicated += st.dups;
        if lost > 0 {
            c.subs_with_loss += 1;
        }
    }
    WorkerResult {
        counts: c,
        latency: sh
            .hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Loopback source address for subscriber `global`: 127.0.1.1, 127.0.1.2, …
/// so that each address has its own ~28,000 ephemeral ports.
fn source_ip(global: usize, spread: usize) -> Ipv4Addr {
    let k = global % spread;
    Ipv4Addr::new(127, 0, (1 + k / 250) as u8, (1 + k % 250) as u8)
}

async fn connect(target: SocketAddr, src: Ipv4Addr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if target.is_ipv4() {
        sock.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
    }
    let std_stream: std::net::TcpStream = sock.into();
    tokio::net::TcpSocket::from_std_stream(std_stream)
        .connect(target)
        .await
}

fn request(plan: &Plan, local: usize, st: &SubState, resume: bool) -> String {
    let s = &plan.settings;
    let chan = s.channel_name(st.channel);
    let global = plan.first + local;
    if s.mode.is_nchan() {
        let mut extra = String::new();
        if s.mode == Mode::NchanEventsource {
            extra.push_str("Accept: text/event-stream\r\n");
            if resume && !st.last_event_id.is_empty() {
                extra.push_str("Last-Event-ID: ");
                extra.push_str(&String::from_utf8_lossy(&st.last_event_id));
                extra.push_str("\r\n");
            }
        } else {
            extra.push_str("TE: chunked\r\n");
        }
        format!(
            "GET {}{chan} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: meteor-bench\r\n{extra}\r\n",
            s.nchan_sub
        )
    } else {
        // Resume from the next id; with no id seen yet, the whole history
        // of this run's (fresh) channel is exactly what is still expected.
        let marker = match (resume, st.last_meteor_id) {
            (false, _) => String::new(),
            (true, Some(id)) => format!(".r{}", id + 1),
            (true, None) => ".h".to_owned(),
        };
        format!(
            "GET {}/h{}x{global}/{}/{chan}{marker} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: meteor-bench\r\n\r\n",
            s.push_prefix,
            s.run_tag,
            s.mode.meteor_word()
        )
    }
}

/// Connects, sends the request and reads the response head; the bytes after
/// the head stay in `buf`.
async fn open(
    plan: &Plan,
    local: usize,
    req: &str,
    buf: &mut BytesMut,
) -> anyhow::Result<TcpStream> {
    let s = &plan.settings;
    let global = plan.first + local;
    let exchange = async {
        let mut stream = connect(s.target, source_ip(global, s.source_ips))
            .await
            .with_context(|| format!("connect to {}", s.target))?;
        stream.write_all(req.as_bytes()).await?;
        buf.clear();
        loop {
            if stream.read_buf(buf).await? == 0 {
                bail!("server closed the connection before the response head");
            }
            if let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") {
                let head = &buf[..end];
                if !(head.starts_with(b"HTTP/1.") && head.get(9..12) == Some(b"200")) {
                    let first = head.split(|&b| b == b'\r').next().unwrap_or(b"");
                    bail!("server answered {:?}", String::from_utf8_lossy(first));
                }
                buf.advance(end + 4);
                return Ok(stream);
            }
            if buf.len() > MAX_HEAD {
                bail!("response head longer than {MAX_HEAD} bytes");
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, exchange)
        .await
        .context("connect/response timed out")?
}

/// Opens with retries; returns the stream and the number of failed attempts.
async fn open_retrying(
    plan: &Plan,
    local: usize,
    shared: &RefCell<Shared>,
    resume: bool,
    buf: &mut BytesMut,
) -> (Option<TcpStream>, u64, Option<String>) {
    let mut failures = 0;
    let mut first_error = None;
    for attempt in 1..=CONNECT_ATTEMPTS {
        let req = request(plan, local, &shared.borrow().subs[local], resume);
        match open(plan, local, &req, buf).await {
            Ok(stream) => return (Some(stream), failures, first_error),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
                tokio::time::sleep(RETRY_BACKOFF * attempt).await;
            }
        }
    }
    (None, failures, first_error)
}

/// Consumes complete deliveries from `buf`, updating the shared state.
fn absorb(shared: &RefCell<Shared>, local: usize, buf: &mut BytesMut, fresh: usize) {
    let now = now_us();
    let mut sh = shared.borrow_mut();
    let sh = &mut *sh;
    sh.bytes_read += fresh as u64;
    let st = &mut sh.subs[local];
    let hist = &mut sh.hist;
    let mut count = 0u64;
    let keep = payload::scan(buf, |d| {
        count += 1;
        if d.seq == st.next_seq {
            st.next_seq += 1;
        } else if d.seq > st.next_seq {
            st.gaps += d.seq - st.next_seq;
            st.next_seq = d.seq + 1;
        } else {
            st.dups += 1;
        }
        if let Some(id) = d.meteor_id {
            st.last_meteor_id = Some(st.last_meteor_id.map_or(id, |old| old.max(id)));
        }
        if let Some((a, b)) = d.event_id {
            st.last_event_id.clear();
            st.last_event_id.extend_from_slice(&buf[a..b]);
        }
        let _ = hist.record(now.saturating_sub(d.sent_us).clamp(1, HIST_MAX_US));
    });
    sh.deliveries += count;
    buf.advance(keep);
}

async fn subscriber(
    local: usize,
    plan: Rc<Plan>,
    shared: Rc<RefCell<Shared>>,
    mut storm: watch::Receiver<u64>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let s = &plan.settings;
    let mut buf = BytesMut::with_capacity(s.read_buf);
    let (stream, failures, error) = open_retrying(&plan, local, &shared, false, &mut buf).await;
    drop(permit);
    let ok = stream.is_some();
    let _ = outcomes.send(Outcome {
        ok,
        attempts_failed: failures,
        at: Instant::now(),
        error,
    });
    let Some(mut stream) = stream else {
        shared.borrow_mut().subs[local].gave_up = true;
        return;
    };
    shared.borrow_mut().subs[local].connected = true;
    storm.mark_unchanged();
    if !buf.is_empty() {
        let n = buf.len();
        absorb(&shared, local, &mut buf, n);
    }
    loop {
        if buf.capacity() - buf.len() < payload::PREFIX_MAX {
            buf.reserve(s.read_buf);
        }
        let storming;
        tokio::select! {
            r = stream.read_buf(&mut buf) => {
                match r {
                    Ok(n) if n > 0 => {
                        absorb(&shared, local, &mut buf, n);
                        continue;
                    }
                    // End of response: normal for long-poll, a disconnect otherwise.
                    _ => storming = false,
                }
            }
            changed = storm.changed() => {
                if changed.is_err() {
                    return; // the worker is finishing
                }
                storming = true;
            }
        }
        drop(stream);
        {
            let mut sh = shared.borrow_mut();
            if s.mode == Mode::Longpoll && !storming {
                sh.reconnects += 1;
            } else if !storming {
                sh.disconnects += 1;
            }
        }
        let (next, failures, error) = open_retrying(&plan, local, &shared, true, &mut buf).await;
        if storming {
            let _ = outcomes.send(Outcome {
                ok: next.is_some(),
                attempts_failed: failures,
                at: Instant::now(),
                error,
            });
        }
        match next {
            Some(n) => stream = n,
            None => {
                let mut sh = shared.borrow_mut();
                sh.subs[local].gave_up = true;
                sh.subs[local].connected = false;
                return;
            }
        }
        if !storming {
            shared.borrow_mut().reconnects += u64::from(s.mode != Mode::Longpoll);
        }
        if !buf.is_empty() {
            let n = buf.len();
            absorb(&shared, local, &mut buf, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(channels: &[usize]) -> RefCell<Shared> {
        RefCell::new(Shared {
            subs: channels
                .iter()
                .map(|&channel| SubState {
                    channel,
                    connected: true,
                    ..SubState::default()
                })
                .collect(),
            hist: Histogram::new_with_bounds(1, HIST_MAX_US, 3).unwrap(),
            deliveries: 0,
            bytes_read: 0,
            disconnects: 0,
            reconnects: 0,
        })
    }

    fn stream(seqs: &[u64]) -> BytesMut {
        let mut v = Vec::new();
        for &seq in seqs {
            v.extend_from_slice(format!("<script>p({},\"c\",\"", 100 + seq).as_bytes());
            payload::encode(seq, now_us(), 60, &mut v);
            v.extend_from_slice(b"\");</script>\r\n");
        }
        BytesMut::from(&v[..])
    }

    #[test]
    fn counts_gaps_duplicates_and_resume_ids() {
        let sh = shared(&[0, 0]);
        // Subscriber 0 misses seq 2 and sees seq 3 twice.
        let mut buf = stream(&[0, 1, 3, 3, 4]);
        let n = buf.len();
        absorb(&sh, 0, &mut buf, n);
        // Subscriber 1 gets everything.
        let mut buf = stream(&[0, 1, 2, 3, 4]);
        let n = buf.len();
        absorb(&sh, 1, &mut buf, n);
        {
            let b = sh.borrow();
            assert_eq!(b.deliveries, 10);
            assert_eq!(b.subs[0].last_meteor_id, Some(104));
            assert_eq!((b.subs[0].gaps, b.subs[0].dups), (1, 1));
        }
        // Five were published; one more (seq 5) reached nobody.
        let result = finish(&sh.borrow(), &[6]);
        let r = result.counts;
        assert_eq!(r.expected, 12);
        assert_eq!(r.lost, 1 + 1 + 1);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.subs_with_loss, 2);
        assert_eq!(result.latency.iter().map(|&(_, c)| c).sum::<u64>(), 10);
    }

    #[test]
    fn never_connected_subscribers_are_not_loss() {
        let sh = shared(&[0, 1]);
        sh.borrow_mut().subs[1].connected = false;
        let r = finish(&sh.borrow(), &[0, 7]).counts;
        assert_eq!((r.expected, r.lost), (0, 0));
    }

    #[test]
    fn source_ips_stay_in_loopback_and_spread() {
        assert_eq!(source_ip(0, 16), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(source_ip(17, 16), Ipv4Addr::new(127, 0, 1, 2));
        assert_eq!(source_ip(251, 1000), Ipv4Addr::new(127, 0, 2, 2));
        assert!(source_ip(62_499, 62_500).is_loopback());
    }
}
