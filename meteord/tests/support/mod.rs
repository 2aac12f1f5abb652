//! Process-level test support: start the real `meteord` binary on ephemeral
//! ports (it reports them in its "listening" log line), talk to its
//! controller and subscriber ports with plain blocking sockets, and stop it.
//! Every wait is bounded.

#![allow(dead_code)]

pub mod controller;
pub mod eventsource;
pub mod history;
pub mod http;
pub mod metrics;
pub mod process;
pub mod redis;
pub mod tokens;
pub mod websocket;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod config;

/// The built-in configuration: no file at that path; no metrics listener
/// (its default port, 4672, would be every test daemon's at once;
/// support/metrics.rs starts one with metrics on a reserved port).
pub const BUILTIN: &[&str] = &[
    "-ConfigFileLocation",
    "/nonexistent/meteord.conf",
    "-MetricsPort",
    "0",
];

/// Both TCP ports on loopback, numbers of the system's choosing (the
/// daemon reports them in its "listening" line). Arguments after these win.
pub const LOOPBACK_ANY_PORT: &[&str] = &[
    "-SubscriberIP",
    "127.0.0.1",
    "-SubscriberPort",
    "0",
    "-ControllerIP",
    "127.0.0.1",
    "-ControllerPort",
    "0",
];

/// Foreground, logging to stderr (the tests read the "listening" line).
pub const DEBUG_ARGS: &[&str] = &["-Debug", "1"];

/// Longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Daemon {
    child: Option<Child>,
    pub sub: SocketAddr,
    pub ctl: SocketAddr,
    pub udp: Option<SocketAddr>,
    pub dir: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
    args: Vec<String>,
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meteord-it-{}-{}-{}",
        std::process::id(),
        name,
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_meteord")
}

impl Daemon {
    /// Start with the built-in configuration plus `extra` arguments.
    pub fn start(name: &str, extra: &[&str]) -> Daemon {
        let dir = scratch(name);
        Daemon::start_in(dir, extra)
    }

    /// Start with `config` written to a file in the scratch dir.
    pub fn start_with_config(name: &str, config: &str, extra: &[&str]) -> Daemon {
        let dir = scratch(name);
        let path = dir.join("meteord.conf");
        std::fs::write(&path, config).expect("write config");
        let mut args = vec![
            "-ConfigFileLocation".to_string(),
            path.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Daemon::start_in(dir, &args)
    }

    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Daemon {
        let mut args: Vec<String> = DEBUG_ARGS
            .iter()
            .chain(BUILTIN)
            .chain(LOOPBACK_ANY_PORT)
            .map(|s| s.to_string())
            .collect();
        args.push("-StateFile".into());
        args.push(dir.join("ids.state").display().to_string());
        args.push("-SubscriberDocumentRoot".into());
        args.push(dir.join("docs").display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        Daemon::spawn(dir, args)
    }

    fn spawn(dir: PathBuf, args: Vec<String>) -> Daemon {
        let _ = std::fs::create_dir_all(dir.join("docs"));
        let mut child = Command::new(bin())
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meteord");
        let stderr = child.stderr.take().expect("stderr");
        Daemon::attach(child, Box::new(stderr), dir, args)
    }

    /// Collect the daemon's log lines from `source` (its stderr, or a log
    /// file it appends to) and wait, bounded, until it has reported its
    /// ports (and its UDP port when `args` ask for one).
    pub fn attach(
        mut child: Child,
        source: Box<dyn Read + Send>,
        dir: PathBuf,
        args: Vec<String>,
    ) -> Daemon {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(source).lines().map_while(Result::ok) {
                // Logged before it is reported, so a test that read the
                // ports finds the line in the log too.
                let report =
                    line.contains("meteord listening") || line.contains("UDP publish enabled");
                sink.lock().unwrap().push(line.clone());
                if report {
                    let _ = tx.send(line);
                }
            }
        });
        let mut sub = None;
        let mut ctl = None;
        let mut udp = None;
        let deadline = Instant::now() + WAIT;
        let wants_udp = args.iter().any(|a| a.eq_ignore_ascii_case("-UDPPort"));
        while sub.is_none() || (wants_udp && udp.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "meteord did not report its ports; log: {:?}",
                        log.lock().unwrap()
                    );
                }
            };
            sub = sub.or_else(|| field(&line, "subscriber="));
            ctl = ctl.or_else(|| field(&line, "controller="));
            udp = udp.or_else(|| field(&line, "udp="));
        }
        Daemon {
            child: Some(child),
            sub: sub.unwrap(),
            ctl: ctl.unwrap(),
            udp,
            dir,
            log,
            args,
        }
    }

    /// Stop (SIGTERM) and start again with the same arguments and ports'
    /// configuration (new ephemeral ports).
    pub fn restart(mut self) -> Daemon {
        self.stop();
        // The new process keeps the scratch dir (state file, documents).
        let dir = std::mem::take(&mut self.dir);
        let args = self.args.clone();
        Daemon::spawn(dir, args)
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM and wait for exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("meteord did not stop within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn controller(&self) -> Controller {
        Controller::connect(self.ctl)
    }

    /// ADDMESSAGE on a fresh controller connection; returns the id.
    pub fn publish(&self, channel: &str, text: &str) -> u64 {
        self.controller().publish(channel, text)
    }

    /// Open a subscriber connection and send `GET path`.
    pub fn get(&self, path: &str) -> Client {
        Client::get(self.sub, path)
    }

    /// Wait until `channel` has `n` subscribers.
    pub fn wait_subscribers(&self, channel: &str, n: u64) {
        let mut ctl = self.controller();
        let deadline = Instant::now() + WAIT;
        loop {
            let reply = ctl.command(&format!("COUNTSUBSCRIBERS {channel}"));
            if reply == format!("OK {n}\r\n") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{channel} never had {n} subscribers: {reply:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A controller connection.
pub struct Controller {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Controller {
    pub fn connect(addr: SocketAddr) -> Controller {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect controller");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Controller {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write controller");
    }

    /// Read until `reply` ends with a complete single-line or list reply.
    pub fn read_reply(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(len) = reply_len(&self.buf) {
                let reply: Vec<u8> = self.buf.drain(..len).collect();
                return String::from_utf8_lossy(&reply).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no complete reply in {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("read controller");
            if n == 0 {
                let rest: Vec<u8> = self.buf.drain(..).collect();
                return String::from_utf8_lossy(&rest).into_owned();
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.read_reply()
    }

    pub fn publish(&mut self, channel: &str, text: &str) -> u64 {
        let reply = self.command(&format!("ADDMESSAGE {channel} {text}"));
        reply
            .strip_suffix("\r\n")
            .and_then(|line| meteor_proto::reply::parse_ok_reply(line.as_bytes()))
            .unwrap_or_else(|| panic!("bad ADDMESSAGE reply {reply:?}"))
    }
}

/// Length of the first complete reply in `buf`: one line, or for a reply that
/// is exactly `OK\r\n` followed by list lines, up to `--EOT--\r\n`.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let first = buf.windows(2).position(|w| w == b"\r\n")? + 2;
    if &buf[..first] != b"OK\r\n" {
        return Some(first);
    }
    // "OK\r\n" alone is QUIT's reply; list replies follow with lines and --EOT--.
    let text = &buf[first..];
    if text.is_empty() {
        return None;
    }
    let end = text.windows(9).position(|w| w == b"--EOT--\r\n");
    end.map(|pos| first + pos + 9)
}

/// A subscriber-port client.
pub struct Client {
    pub stream: TcpStream,
    pub received: Vec<u8>,
    pub closed: bool,
}

impl Client {
    pub fn get(addr: SocketAddr, path: &str) -> Client {
        Client::raw(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: it-test\r\n\r\n").as_bytes(),
        )
    }

    pub fn raw(addr: SocketAddr, request: &[u8]) -> Client {
        let mut stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect subscriber port");
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        stream.write_all(request).expect("send request");
        Client {
            stream,
            received: Vec::new(),
            closed: false,
        }
    }

    fn read_some(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.received.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(_) => {
                self.closed = true;
                false
            }
        }
    }

    /// Read until the received bytes contain `needle`.
    pub fn wait_for(&mut self, needle: &str) -> &mut Client {
        self.wait_for_bytes(needle.as_bytes())
    }

    pub fn wait_for_bytes(&mut self, needle: &[u8]) -> &mut Client {
        let deadline = Instant::now() + WAIT;
        // Only search what arrived since the last look (plus an overlap),
        // so waiting on megabytes of stream stays linear.
        let mut from = 0;
        loop {
            if contains(&self.received[from..], needle) {
                break;
            }
            from = self.received.len().saturating_sub(needle.len());
            assert!(
                !self.closed && Instant::now() < deadline,
                "never saw {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.received)
            );
            self.read_some();
        }
        self
    }

    /// Read until the server closes; returns everything received.
    pub fn read_to_close(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        while !self.closed {
            assert!(
                Instant::now() < deadline,
                "connection stayed open; got {:?}",
                self.text()
            );
            self.read_some();
        }
        self.text()
    }

    /// Read for `d`, returning whether the connection is still open.
    pub fn idle_for(&mut self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline && !self.closed {
            self.read_some();
        }
        !self.closed
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// The body: everything after the first blank line.
    pub fn body(&self) -> String {
        let text = self.text();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or(text)
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

pub fn write_file(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, text).unwrap();
}
