//! Pings, MaxTime, the header timeout and message ageing on paused time:
//! the whole daemon ([`crate::server::run`] on port 0) in a runtime whose
//! clock only moves when every task waits, so each test covers minutes of
//! daemon time in milliseconds and pins the exact second things happen.
//! Both kinds of time move together: tokio's timers and [`unix_now`]
//! (`~servertime~`, message timestamps, MaxTime deadlines).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{ROUND, now, unix_now, unix_time};
use crate::config::{CommandLine, load_from_text};
use crate::ids::Ids;
use crate::server::{self, Control, Listeners};
use crate::state::State;

/// Longest any one wait may take in daemon time before the test fails
/// (paused time jumps there at once when nothing else is due, so a wait
/// that would hang fails instead).
const GIVE_UP: Duration = Duration::from_secs(3600);

/// Where in its second the daemon starts: not on the second itself, where
/// the nanoseconds between reading the wall and the monotonic clock could
/// put [`unix_now`] on either side.
const PAST_SECOND: Duration = Duration::from_millis(1);

/// tokio's timers fire on whole milliseconds of its clock, which the
/// daemon's start need not be on.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// The daemon on paused time, with its two ports.
struct Daemon {
    subscriber: SocketAddr,
    controller: SocketAddr,
    control: mpsc::Sender<Control>,
    task: JoinHandle<std::io::Result<()>>,
    /// When it started, on tokio's clock ([`PAST_SECOND`] into a second).
    started: Instant,
}

fn listener() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

impl Daemon {
    /// Start with `config` (configuration-file text) [`PAST_SECOND`] after
    /// a whole unix second, so second-granular deadlines fall at known
    /// offsets.
    async fn start(config: &str) -> Daemon {
        let fraction = Duration::from_nanos(u64::from(unix_time().subsec_nanos()));
        tokio::time::advance(Duration::from_secs(1) - fraction + PAST_SECOND).await;
        let fraction = Duration::from_nanos(u64::from(unix_time().subsec_nanos()));
        assert!(
            fraction.abs_diff(PAST_SECOND) < PAST_SECOND / 10,
            "{fraction:?}"
        );
        let config = load_from_text(config, "paused-test", &CommandLine::default()).unwrap();
        let state = Arc::new(State::new(config, Ids::starting_at(1)));
        let listeners = Listeners {
            subscriber: listener(),
            controller: listener(),
            udp: None,
            metrics: None,
        };
        let subscriber = listeners.subscriber.local_addr().unwrap();
        let controller = listeners.controller.local_addr().unwrap();
        let (control, rx) = mpsc::channel(4);
        let started = now();
        let task = tokio::spawn(server::run(listeners, state, rx));
        Daemon {
            subscriber,
            controller,
            control,
            task,
            started,
        }
    }

    /// Daemon time since the start.
    fn elapsed(&self) -> Duration {
        now() - self.started
    }

    /// A subscriber connection that has sent `request`.
    async fn send(&self, request: &str) -> TcpStream {
        let mut stream = TcpStream::connect(self.subscriber).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream
    }

    /// One controller command (one line) and its whole reply.
    async fn command(&self, line: &str) -> String {
        let mut stream = TcpStream::connect(self.controller).await.unwrap();
        stream
            .write_all(format!("{line}\nQUIT\n").as_bytes())
            .await
            .unwrap();
        let mut reply = read_to_close(&mut stream).await;
        // QUIT's own answer ends every exchange.
        assert!(reply.ends_with("OK\r\n"), "{reply:?}");
        reply.truncate(reply.len() - "OK\r\n".len());
        reply
    }

    async fn stop(self) {
        self.control.send(Control::Shutdown).await.unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// Read into `buf` until `needle` occurs at or after `from`; returns the
/// offset just past it.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, from: usize, needle: &str) -> usize {
    let needle = needle.as_bytes();
    loop {
        if let Some(at) = buf
            .get(from..)
            .and_then(|rest| rest.windows(needle.len()).position(|w| w == needle))
        {
            return from + at + needle.len();
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(GIVE_UP, stream.read(&mut chunk))
            .await
            .expect("the daemon went quiet")
            .unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(GIVE_UP, stream.read_to_end(&mut buf))
        .await
        .expect("the daemon never closed")
        .unwrap();
    String::from_utf8(buf).unwrap()
}

/// The seconds of a `<ping ~servertime~>` ending at `end` in `buf`.
fn servertime_before(buf: &[u8], end: usize) -> u64 {
    let text = std::str::from_utf8(&buf[..end]).unwrap();
    let digits = text.trim_end_matches('>');
    let start = digits.rfind(' ').unwrap() + 1;
    digits[start..].parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn pings_come_every_ping_interval_in_server_time() {
    let daemon =
        Daemon::start("PingInterval 3\nPingMessage <ping ~servertime~>\nPersist 1\n").await;
    let mut stream = daemon
        .send("GET /push/p/anymode/chat HTTP/1.1\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let first = read_until(&mut stream, &mut buf, 0, "<ping ").await;
    let first = read_until(&mut stream, &mut buf, first, ">").await;
    let at_first = now();
    // The first ping comes within one interval (its phase depends on the
    // connection), on the clock's one-second rounds.
    assert!(
        daemon.elapsed() <= Duration::from_secs(4),
        "{:?}",
        daemon.elapsed()
    );
    let second = read_until(&mut stream, &mut buf, first, "<ping ").await;
    let second = read_until(&mut stream, &mut buf, second, ">").await;
    assert_eq!(now() - at_first, Duration::from_secs(3));
    assert_eq!(
        servertime_before(&buf, second),
        servertime_before(&buf, first) + 3,
        "~servertime~ moves with the clock"
    );
    assert_eq!(servertime_before(&buf, second), unix_now());
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn max_time_ends_the_stream_with_the_footer_in_its_round() {
    let daemon = Daemon::start("Persist 1\nFooterTemplate <end>\n[brief]\nMaxTime 3\n").await;
    let mut stream = daemon.send("GET /push/b/brief/chat HTTP/1.1\r\n\r\n").await;
    let text = read_to_close(&mut stream).await;
    assert!(text.ends_with("<end>"), "{text:?}");
    // Connected just past a whole second: the deadline is that second plus
    // 3, and the clock's round that visits this connection ends it within
    // one round after.
    let elapsed = daemon.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) - PAST_SECOND,
        "{elapsed:?}"
    );
    assert!(elapsed <= Duration::from_secs(3) + ROUND, "{elapsed:?}");
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_head_gets_the_default_footer_at_the_header_timeout() {
    let daemon = Daemon::start("HeaderTimeout 7\nFooterTemplate <bye>\n").await;
    let mut stream = daemon.send("GET /push/h/anymode/chat HTTP/1.1\r\n").await;
    assert_eq!(read_to_close(&mut stream).await, "<bye>");
    let elapsed = daemon.elapsed();
    assert!(elapsed >= Duration::from_secs(7), "{elapsed:?}");
    assert!(
        elapsed <= Duration::from_secs(7) + TIMER_RESOLUTION,
        "{elapsed:?}"
    );
    daemon.stop().await;
}

#[tokio::test(start_paused = true)]
async fn messages_age_out_at_the_first_sweep_after_max_message_age() {
    // Sweeps run every 60 s from the start; a message goes at the first
    // sweep at which it is more than MaxMessageAge (90 s) old.
    let daemon = Daemon::start("MaxMessageAge 90\n").await;
    assert_eq!(daemon.command("ADDMESSAGE chat old").await, "OK\t1\r\n");
    tokio::time::sleep_until(daemon.started + Duration::from_secs(61)).await;
    assert_eq!(daemon.command("ADDMESSAGE chat new").await, "OK\t2\r\n");
    let list = |n| format!("OK\r\nchat({n}/0)\r\n--EOT--\r\n");
    assert_eq!(
        daemon.command("LISTCHANNELS").await,
        list(2),
        "60 s: both kept"
    );
    tokio::time::sleep_until(daemon.started + Duration::from_secs(121)).await;
    assert_eq!(
        daemon.command("LISTCHANNELS").await,
        list(1),
        "120 s: 'old' is 120 s old"
    );
    tokio::time::sleep_until(daemon.started + Duration::from_secs(181)).await;
    assert_eq!(
        daemon.command("LISTCHANNELS").await,
        "OK\r\n--EOT--\r\n",
        "180 s: 'new' is 119 s old, and the empty channel is freed"
    );
    daemon.stop().await;
}
