//! A private `redis-server` for the cluster tests: started by the test on
//! a free loopback port with its data in a scratch directory (append-only
//! file, fsync on every write, so a stop and start keeps everything), and
//! stopped, paused, restarted or wiped on demand. No redis-server is a
//! failure with the way to fix it, never a skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Daemon, WAIT, scratch};

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// TLS only (`rediss://`), with this password; its CA is `ca.pem`.
    tls_password: Option<String>,
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
    probe.local_addr().unwrap().port()
}

impl Redis {
    pub fn start(name: &str) -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir: scratch(&format!("redis-{name}")),
            tls_password: None,
        };
        redis.spawn();
        redis
    }

    /// A server that speaks TLS only and wants `password`, with a
    /// certificate for 127.0.0.1 from a CA made here by openssl
    /// ([`Redis::ca_file`]).
    pub fn start_tls(name: &str, password: &str) -> Redis {
        let dir = scratch(&format!("redis-{name}"));
        let openssl = |args: &str| {
            let status = Command::new("openssl")
                .args(args.split(' '))
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl (Debian package openssl) is needed for the TLS test");
            assert!(status.success(), "openssl {args}");
        };
        openssl(
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
             -subj /CN=meteord-test-ca",
        );
        openssl(
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
        );
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
             -days 2 -extfile san.ext",
        );
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir,
            tls_password: Some(password.to_owned()),
        };
        redis.spawn();
        redis
    }

    /// The CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `ClusterRedis` for this server.
    pub fn url(&self) -> String {
        match &self.tls_password {
            Some(password) => format!("rediss://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        match &self.tls_password {
            None => command.args(["--port", &port]),
            Some(password) => command
                .args(["--port", "0", "--tls-port", &port])
                .args([
                    "--tls-cert-file",
                    "server.pem",
                    "--tls-key-file",
                    "server.key",
                ])
                .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
                .args(["--requirepass", password]),
        };
        let child = command
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): the cluster tests need it; \
                     tests/install-deps.sh installs the Debian package redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        // A TLS server is ready when its port accepts (the test speaks no
        // TLS); a plain one when it answers PING.
        let ready = |r: &Redis| match r.tls_password {
            Some(_) => TcpStream::connect(("127.0.0.1", r.port)).is_ok(),
            None => r.try_command(&["PING"]).as_deref() == Some("+PONG\r\n"),
        };
        while !ready(self) {
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait: Redis has written everything (appendfsync always).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Start again on the same port, with the data it had.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Restart with no data at all (a Redis that lost its disk).
    pub fn restart_empty(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).unwrap();
        self.spawn();
    }

    /// SIGSTOP / SIGCONT: connections stay open and nothing answers, as a
    /// half-open or stalled server.
    pub fn pause(&self, paused: bool) {
        let child = self.child.as_ref().expect("redis running");
        let signal = if paused { "-STOP" } else { "-CONT" };
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
    }

    fn try_command(&self, args: &[&str]) -> Option<String> {
        let mut stream =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), WAIT).ok()?;
        stream.set_read_timeout(Some(WAIT)).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 65536];
        // One reply: the tests ask only for simple, integer and bulk
        // replies; read until a bulk is complete.
        loop {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&chunk[..n]);
            if reply_complete(&reply) {
                break;
            }
        }
        Some(String::from_utf8_lossy(&reply).into_owned())
    }

    /// One command, its raw reply.
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|| panic!("redis {args:?} failed"))
    }

    /// A field of INFO (`used_memory`, ...).
    pub fn info_number(&self, section: &str, field: &str) -> u64 {
        let info = self.command(&["INFO", section]);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in INFO {section}: {info}"))
    }
}

fn reply_complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match reply.first() {
        Some(b'$') => {
            let len: i64 = std::str::from_utf8(&reply[1..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            len < 0 || reply.len() >= end + 2 + len as usize + 2
        }
        _ => true,
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused server ignores SIGTERM until continued.
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cluster node on the TLS `redis`, trusting its CA (rustls reads
/// SSL_CERT_FILE), with the harness's usual arguments.
pub fn tls_node(name: &str, redis: &Redis) -> Daemon {
    let dir = scratch(name);
    let mut args: Vec<String> = super::DEBUG_ARGS
        .iter()
        .chain(super::BUILTIN)
        .chain(super::LOOPBACK_ANY_PORT)
        .map(|s| s.to_string())
        .collect();
    args.extend(["-ClusterRedis".to_owned(), redis.url()]);
    let mut child = Command::new(super::bin())
        .args(&args)
        .env("RUST_LOG", "info")
        .env("SSL_CERT_FILE", redis.ca_file())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meteord");
    let stderr = child.stderr.take().expect("stderr");
    Daemon::attach(child, Box::new(stderr), dir, args)
}

/// A cluster node on `redis`: the test defaults plus `extra`.
pub fn node(name: &str, redis: &Redis, extra: &[&str]) -> Daemon {
    let url = redis.url();
    let mut args = vec!["-ClusterRedis", url.as_str()];
    args.extend_from_slice(extra);
    Daemon::start(name, &args)
}

/// The message lines (`<script>p(id,"channel","text");</script>`) in a
/// subscriber's bytes, pings left out, in order.
pub fn message_lines(received: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(received)
        .split_inclusive("\r\n")
        .filter(|l| l.starts_with("<script>p(") && !l.starts_with("<script>p(-1,"))
        .map(str::to_owned)
        .collect()
}

/// The id in one message line.
pub fn line_id(line: &str) -> u64 {
    line.trim_start_matches("<script>p(")
        .split(',')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {line:?}"))
}

/// The line a built-in streaming mode writes for one message.
pub fn script_p(id: u64, channel: &str, text: &str) -> String {
    format!("<script>p({id},\"{channel}\",\"{text}\");</script>\r\n")
}
