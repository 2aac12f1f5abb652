//! Helpers for the history-file tests (meteord/tests/history_file.rs):
//! the arguments that turn it on, a channel's stored history as a poll
//! reads it, a crash, a start with other arguments in the same directory,
//! and many publishes on one pipelined controller connection.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Daemon, WAIT};

/// The history file of a daemon started in `dir`.
pub fn history_path(dir: &Path) -> PathBuf {
    dir.join("meteord.history")
}

/// `-HistoryFile <dir>/meteord.history -HistoryFsync <policy>`.
pub fn history_args(dir: &Path, policy: &str) -> Vec<String> {
    vec![
        "-HistoryFile".into(),
        history_path(dir).display().to_string(),
        "-HistoryFsync".into(),
        policy.into(),
    ]
}

/// Start in `dir` (kept across starts) with the history file on and
/// `extra` arguments.
pub fn start(dir: PathBuf, policy: &str, extra: &[&str]) -> Daemon {
    let mut args = history_args(&dir, policy);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start_in(dir, &args)
}

/// The body of a simple poll for `request` (e.g. `c.h`, `c.r12`): the
/// stored messages as `Meteor.process(...)` lines and the footer.
pub fn poll(daemon: &Daemon, request: &str) -> String {
    let mut client = daemon.get(&format!("/push/hist/simplepoll/{request}"));
    client.read_to_close();
    client.body()
}

/// What [`poll`] answers for `messages` (id, channel, text), in order.
pub fn expected(messages: &[(u64, &str, &str)]) -> String {
    let mut out = String::new();
    for (id, channel, text) in messages {
        out.push_str(&format!(
            "Meteor.process({id},\"{channel}\",\"{text}\");\r\n"
        ));
    }
    out.push_str("Meteor.clearpoll();\r\n");
    out
}

/// SIGKILL, wait until the process is gone, and take its directory so it
/// survives for the next start.
pub fn crash(mut daemon: Daemon) -> PathBuf {
    daemon.signal("KILL");
    daemon.stop();
    std::mem::take(&mut daemon.dir)
}

/// SIGTERM, wait, and take the directory.
pub fn stop(mut daemon: Daemon) -> PathBuf {
    assert_eq!(daemon.stop(), Some(0), "clean stop");
    std::mem::take(&mut daemon.dir)
}

/// Publish `count` messages `text-<n>` round-robin on `channels` over one
/// controller connection, writing every line before reading the replies;
/// returns the ids in order.
pub fn publish_many(daemon: &Daemon, channels: &[&str], count: usize, text: &str) -> Vec<u64> {
    let stream = TcpStream::connect_timeout(&daemon.ctl, WAIT).expect("connect controller");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let lines: Vec<String> = (0..count)
        .map(|n| format!("ADDMESSAGE {} {text}-{n}\n", channels[n % channels.len()]))
        .collect();
    let sender = std::thread::spawn(move || {
        for chunk in lines.chunks(256) {
            writer.write_all(chunk.concat().as_bytes()).unwrap();
        }
    });
    let mut reader = BufReader::new(stream);
    let mut ids = Vec::with_capacity(count);
    let mut line = String::new();
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).expect("reply");
        let id = line
            .strip_prefix("OK\t")
            .and_then(|r| r.strip_suffix("\r\n"))
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("bad reply {line:?}"));
        ids.push(id);
    }
    sender.join().unwrap();
    ids
}

/// Wait, bounded, until `check` holds.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The file's length (0 if missing).
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
