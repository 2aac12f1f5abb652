//! The real meteord for the end-to-end tests: started on ports of the
//! kernel's choosing (0), read back from its `meteord listening
//! subscriber=… controller=…` log line, stopped when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Proc, TempDir, wait_for};

/// The meteord binary: METEORD_BIN, or the one cargo built beside the tests.
pub fn meteord_bin() -> PathBuf {
    let path = std::env::var_os("METEORD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/debug/deps/<test>-HASH → target/debug/meteord
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("meteord")
        });
    assert!(
        path.is_file(),
        "meteord binary not found at {} — build it first (cargo build -p meteord) or set METEORD_BIN",
        path.display()
    );
    path
}

/// A running meteord and the addresses it listens on.
pub struct Meteord {
    pub subscriber: String,
    pub controller: String,
    _proc: Proc,
}

/// meteord in `dir` (log, state, an empty document root) with `extra`
/// arguments after the loopback, free-port ones.
pub fn start_meteord(dir: &TempDir, extra: &[&str]) -> Meteord {
    let log_path = dir.path().join("meteord.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let docroot = dir.path().join("public");
    std::fs::create_dir_all(&docroot).unwrap();
    let child = Command::new(meteord_bin())
        .args(["-Foreground", "1", "-ConfigFileLocation", "/nonexistent"])
        .args(["-SubscriberIP", "127.0.0.1", "-SubscriberPort", "0"])
        .args(["-ControllerIP", "127.0.0.1", "-ControllerPort", "0"])
        // Its default port (4672) would be shared by parallel tests.
        .args(["-MetricsPort", "0"])
        .arg("-SubscriberDocumentRoot")
        .arg(&docroot)
        .arg("-StateFile")
        .arg(dir.path().join("meteord.state"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawning meteord");
    let mut proc = Proc {
        child,
        name: "meteord",
    };
    let field = |line: &str, key: &str| {
        let (_, rest) = line.split_once(key)?;
        rest.split_whitespace().next().map(str::to_string)
    };
    let (subscriber, controller) = wait_for("meteord to report its ports", || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(status) = proc.exited() {
            panic!("meteord exited early ({status}):\n{log}");
        }
        // Only whole lines: the daemon may be writing this one right now.
        let line = log
            .split_inclusive('\n')
            .find(|l| l.ends_with('\n') && l.contains("meteord listening"))?;
        Some((field(line, " subscriber=")?, field(line, " controller=")?))
    });
    Meteord {
        subscriber,
        controller,
        _proc: proc,
    }
}
