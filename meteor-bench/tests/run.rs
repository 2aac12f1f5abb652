//! A whole run through the library against the real binary's roles: the
//! bare server (`meteor-bench --bare-server`) as the target, the run driven
//! by `coordinator::run` in this process, its workers the real
//! `meteor-bench --worker` processes. Pins that the pipe protocol, both
//! sides, carries a run end to end: everyone connects, every message is
//! delivered once, and the report adds up.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use meteor_bench::cli::{Args, Settings};
use meteor_bench::coordinator;

/// The bare server, killed on drop.
struct Bare {
    child: Child,
    subscriber: String,
    controller: String,
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_meteor-bench"))
}

/// Starts the bare server on ports of the kernel's choosing and reads them
/// from its `bare server listening <sub> <ctl>` line.
fn bare_server() -> Bare {
    let mut child = Command::new(bench_bin())
        .arg("--bare-server")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning the bare server");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the bare server's first line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let ["bare", "server", "listening", subscriber, controller] = words[..] else {
        let _ = child.kill();
        panic!("unexpected first line {line:?}");
    };
    Bare {
        subscriber: subscriber.to_owned(),
        controller: controller.to_owned(),
        child,
    }
}

fn settings(bare: &Bare, extra: &[&str]) -> Settings {
    let mut argv = vec![
        "meteor-bench",
        "--target",
        &bare.subscriber,
        "--controller",
        &bare.controller,
        "--drain-ms",
        "300",
        "--settle-ms",
        "100",
    ];
    argv.extend_from_slice(extra);
    Settings::from_args(Args::try_parse_from(argv).expect("arguments")).expect("settings")
}

fn run(s: Settings) -> coordinator::Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let run = async {
        tokio::time::timeout(Duration::from_secs(60), coordinator::run(s, bench_bin())).await
    };
    local
        .block_on(&rt, run)
        .expect("the run took over a minute")
        .expect("the run failed")
}

#[test]
fn fanout_over_two_workers_delivers_everything_once() {
    let bare = bare_server();
    let r = run(settings(
        &bare,
        &[
            "-s",
            "fanout",
            "-n",
            "20",
            "-d",
            "1",
            "-r",
            "10",
            "--workers",
            "2",
        ],
    ));
    assert_eq!(r.workers, 2);
    assert_eq!(r.connect.connected, 20, "{:?}", r.connect);
    assert_eq!(r.connect.failed, 0);
    assert!(r.publish.sent >= 5, "{:?}", r.publish);
    assert_eq!(r.publish.acked, r.publish.sent);
    assert_eq!(r.counts.expected, 20 * r.publish.sent);
    assert_eq!(r.counts.deliveries, r.counts.expected);
    assert_eq!((r.counts.lost, r.counts.duplicated), (0, 0));
    assert_eq!(r.latency_us.count, r.counts.deliveries);
    assert!(r.ok);
    // The summary names the verdict the JSON carries.
    assert!(coordinator::summary(&r).ends_with("result: OK\n"));
}

#[test]
fn idle_holds_everyone_and_publishes_nothing() {
    let bare = bare_server();
    let r = run(settings(&bare, &["-s", "idle", "-n", "10", "-d", "0.5"]));
    assert_eq!(r.connect.connected, 10);
    assert_eq!(
        (r.publish.sent, r.counts.deliveries, r.counts.expected),
        (0, 0, 0)
    );
    assert!(r.ok);
}
