//! Test support shared by the process-level tests and the controller
//! client's tests: a minimal FastCGI client (records are simple enough to
//! write by hand), the one fake meteord controller, ports held without a
//! race, and helpers to run the real `fcgi-chat` binary (on port 0, reading
//! the address it reports) and clean up after it. Everything listens on
//! 127.0.0.1 or in a private temp directory; every wait is bounded.

#![allow(dead_code)] // each test file uses a different subset

pub mod meteord;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use meteor_proto::reply::OkReply;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// Path of the binary under test.
pub fn fcgi_chat_bin() -> PathBuf {
    std::env::var_os("FCGI_CHAT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_fcgi-chat")))
}

/// A private directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fcgi-chat-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    /// Whether the process has exited; returns its status if so.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port held by a socket that is bound but not listening:
/// connecting to it is refused, and no other process can take it, so a
/// test can point a client at "a daemon that is down" and later start the
/// daemon on the very same port ([`ReservedPort::listen`]) without the race
/// of "bind port 0, drop it, hope nobody else binds it".
pub struct ReservedPort {
    socket: socket2::Socket,
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

impl ReservedPort {
    pub fn new() -> Self {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("bind 127.0.0.1:0");
        let local = socket.local_addr().expect("local address");
        let port = local.as_socket().expect("an IP address").port();
        Self {
            socket,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// Starts listening on the reserved port.
    pub fn listen(self) -> TcpListener {
        self.socket.listen(128).expect("listen");
        self.socket.into()
    }
}

/// Retries `f` every 20 ms until it returns Some, for at most [`WAIT`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- fake meteord

/// What the fake controller does with each line.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// `OK\t<n>`, ids counting from 1 across connections.
    Ok,
    /// `OK\t<n>` once, then closes the connection.
    OkThenClose,
    /// Reads the line, then closes without answering.
    CloseAfterLine,
    /// `ERR <reason>`.
    Err,
    /// Never answers (keeps the connection open).
    Silent,
    /// Answers `OK` after the given delay.
    Slow(Duration),
    /// Answers something that is not a controller reply.
    Garbage,
}

/// A fake meteord controller on 127.0.0.1: the one used by every test of
/// this crate, the controller client's own and the process-level ones.
pub struct FakeController {
    pub addr: String,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeController {
    /// On a port of the kernel's choosing.
    pub fn start(behaviour: Behaviour) -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").unwrap(), behaviour)
    }

    /// On a port reserved earlier (the daemon "comes back").
    pub fn start_on(port: ReservedPort, behaviour: Behaviour) -> Self {
        Self::serve(port.listen(), behaviour)
    }

    fn serve(listener: TcpListener, behaviour: Behaviour) -> Self {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ids = Arc::new(AtomicU64::new(1));
        let (l, c, s) = (lines.clone(), connections.clone(), stop.clone());
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        let (l, ids, s) = (l.clone(), ids.clone(), s.clone());
                        thread::spawn(move || serve_controller(stream, behaviour, l, ids, s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            lines,
            connections,
            stop,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeController {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_controller(
    stream: TcpStream,
    behaviour: Behaviour,
    lines: Arc<Mutex<Vec<String>>>,
    ids: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let ok = |ids: &AtomicU64| OkReply(ids.fetch_add(1, Ordering::SeqCst)).to_string();
    while !stop.load(Ordering::SeqCst) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with('\n') => {}
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        lines.lock().unwrap().push(std::mem::take(&mut line));
        let reply = match behaviour {
            Behaviour::Ok | Behaviour::OkThenClose => ok(&ids),
            Behaviour::CloseAfterLine => return,
            Behaviour::Err => "ERR Invalid command syntax\r\n".to_string(),
            Behaviour::Silent => continue,
            Behaviour::Slow(d) => {
                thread::sleep(d);
                ok(&ids)
            }
            Behaviour::Garbage => "HTTP/1.1 400 Bad\r\n".to_string(),
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
        if let Behaviour::OkThenClose = behaviour {
            return;
        }
    }
}

// ---------------------------------------------------------------- FastCGI client

const FCGI_VERSION: u8 = 1;
pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;
const RESPONDER: u16 = 1;
const KEEP_CONN: u8 = 1;
/// Largest record body.
const MAX_CONTENT: usize = 65535;

/// One FastCGI record.
pub fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    assert!(content.len() <= MAX_CONTENT);
    let padding = (8 - content.len() % 8) % 8;
    let mut r = vec![FCGI_VERSION, kind];
    r.extend_from_slice(&id.to_be_bytes());
    r.extend_from_slice(&(content.len() as u16).to_be_bytes());
    r.push(padding as u8);
    r.push(0);
    r.extend_from_slice(content);
    r.extend(std::iter::repeat_n(0, padding));
    r
}

fn nv_len(out: &mut Vec<u8>, len: usize) {
    if len < 128 {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// Encodes name-value pairs for a PARAMS stream.
pub fn encode_params(params: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in params {
        nv_len(&mut out, name.len());
        nv_len(&mut out, value.len());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Splits a stream into records of at most `MAX_CONTENT` bytes, then the
/// empty terminator.
fn stream_records(kind: u8, id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(MAX_CONTENT) {
        out.extend(record(kind, id, chunk));
    }
    out.extend(record(kind, id, b""));
    out
}

/// A whole responder request, as a web server would send it.
pub fn encode_request(
    id: u16,
    keep_conn: bool,
    method: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let len = body.len().to_string();
    let mut params: Vec<(&str, &[u8])> = vec![
        ("GATEWAY_INTERFACE", b"CGI/1.1"),
        ("REQUEST_METHOD", method.as_bytes()),
        ("SCRIPT_NAME", b"/chat.php"),
        ("REQUEST_URI", b"/chat.php"),
        ("QUERY_STRING", b"x=\xff"),
        ("SERVER_PROTOCOL", b"HTTP/1.1"),
        ("CONTENT_LENGTH", len.as_bytes()),
    ];
    if let Some(ct) = content_type {
        params.push(("CONTENT_TYPE", ct.as_bytes()));
    }
    let mut out = record(
        BEGIN_REQUEST,
        id,
        &[
            (RESPONDER >> 8) as u8,
            RESPONDER as u8,
            if keep_conn { KEEP_CONN } else { 0 },
            0,
            0,
            0,
            0,
            0,
        ],
    );
    out.extend(stream_records(PARAMS, id, &encode_params(&params)));
    out.extend(stream_records(STDIN, id, body));
    out
}

/// A parsed FastCGI answer.
#[derive(Debug)]
pub struct FcgiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub app_status: u32,
    pub protocol_status: u8,
}

impl FcgiResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }
}

/// Reads one record header + content.
pub fn read_record(r: &mut impl Read) -> std::io::Result<(u8, u16, Vec<u8>)> {
    let mut h = [0u8; 8];
    r.read_exact(&mut h)?;
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut content = vec![0u8; len + usize::from(h[6])];
    r.read_exact(&mut content)?;
    content.truncate(len);
    Ok((h[1], u16::from_be_bytes([h[2], h[3]]), content))
}

/// Reads records until END_REQUEST for `id`; parses the CGI answer.
pub fn read_response(r: &mut impl Read, id: u16) -> FcgiResponse {
    let mut stdout = Vec::new();
    loop {
        let (kind, rid, content) = read_record(r).expect("reading FastCGI record");
        assert_eq!(rid, id, "record for another request");
        match kind {
            STDOUT => stdout.extend_from_slice(&content),
            STDERR => {}
            END_REQUEST => {
                let app_status =
                    u32::from_be_bytes([content[0], content[1], content[2], content[3]]);
                return parse_cgi(&stdout, app_status, content[4]);
            }
            other => panic!("unexpected record type {other}"),
        }
    }
}

fn parse_cgi(stdout: &[u8], app_status: u32, protocol_status: u8) -> FcgiResponse {
    let text = String::from_utf8(stdout.to_vec()).expect("answer is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (n, v) = line.split_once(':').expect("header line");
        let v = v.trim().to_string();
        if n.eq_ignore_ascii_case("status") {
            status = v[..3].parse().unwrap();
        }
        headers.push((n.to_string(), v));
    }
    FcgiResponse {
        status,
        headers,
        body: body.to_string(),
        app_status,
        protocol_status,
    }
}

/// Something to talk FastCGI over.
pub trait Conn: Read + Write {}
impl Conn for TcpStream {}
impl Conn for std::os::unix::net::UnixStream {}

/// Where a FastCGI server listens.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(String),
    Unix(PathBuf),
}

impl Endpoint {
    pub fn try_connect(&self) -> std::io::Result<Box<dyn Conn>> {
        Ok(match self {
            Endpoint::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_read_timeout(Some(WAIT))?;
                s.set_write_timeout(Some(WAIT))?;
                Box::new(s)
            }
            Endpoint::Unix(p) => {
                let s = std::os::unix::net::UnixStream::connect(p)?;
                s.set_read_timeout(Some(WAIT))?;
                s.set_write_timeout(Some(WAIT))?;
                Box::new(s)
            }
        })
    }

    pub fn connect(&self) -> Box<dyn Conn> {
        self.try_connect()
            .unwrap_or_else(|e| panic!("connecting to {self:?}: {e}"))
    }

    /// One request on a fresh connection (no keep-alive).
    pub fn post(&self, content_type: Option<&str>, body: &[u8]) -> FcgiResponse {
        self.request("POST", content_type, body)
    }

    pub fn request(&self, method: &str, content_type: Option<&str>, body: &[u8]) -> FcgiResponse {
        let mut c = self.connect();
        c.write_all(&encode_request(1, false, method, content_type, body))
            .unwrap();
        read_response(&mut c, 1)
    }

    /// URL-encoded form POST.
    pub fn post_form(&self, body: &str) -> FcgiResponse {
        self.post(Some(FORM), body.as_bytes())
    }
}

/// The form content type.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Percent-encodes every byte that is not unreserved (what browsers do).
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs fcgi-chat with `args` (+ env), waiting until `endpoint` accepts.
pub fn spawn_fcgi_chat(args: &[&str], env: &[(&str, &str)], endpoint: &Endpoint) -> Proc {
    let mut cmd = Command::new(fcgi_chat_bin());
    cmd.args(args)
        .env_remove("METEOR_CONTROLLER")
        .env_remove("CHAT_CHANNEL")
        .env_remove("CHAT_TZ")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut proc = Proc {
        child: cmd.spawn().expect("spawning fcgi-chat"),
        name: "fcgi-chat",
    };
    wait_for("fcgi-chat to listen", || {
        if let Some(status) = proc.exited() {
            panic!("fcgi-chat exited early: {status}");
        }
        endpoint.try_connect().ok()
    });
    proc
}

/// Runs fcgi-chat with `args` (+ env) on an address it binds itself (port
/// 0), and returns it with the address it reported in its ready line
/// (`listen=HOST:PORT`). Its log still reaches the test's stderr.
pub fn spawn_fcgi_chat_on_port_0(args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let mut cmd = Command::new(fcgi_chat_bin());
    cmd.args(args)
        .env_remove("METEOR_CONTROLLER")
        .env_remove("CHAT_CHANNEL")
        .env_remove("CHAT_TZ")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning fcgi-chat");
    let stderr = child.stderr.take().expect("stderr");
    let proc = Proc {
        child,
        name: "fcgi-chat",
    };
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(addr) = line.split_once(" listen=").map(|(_, rest)| rest) {
                let addr = addr.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(WAIT)
        .expect("fcgi-chat did not report its address (exited early?)");
    (proc, addr)
}
