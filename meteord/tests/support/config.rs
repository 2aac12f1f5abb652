//! Support for the configuration tests: start the daemon with exactly the
//! arguments given (no `-Debug`, no document root of the harness), in a
//! chosen working directory, and run it on a configuration it must refuse.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub use super::LOOPBACK_ANY_PORT;
use super::{Daemon, WAIT, bin, scratch};

/// A scratch directory holding `config` as `meteord.conf`; returns the
/// directory and the file.
pub fn write_config(name: &str, config: &[u8]) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let path = dir.join("meteord.conf");
    std::fs::write(&path, config).expect("write config");
    (dir, path)
}

/// Start `meteord` with `args` only (plus a state file in `dir`), working
/// directory `cwd`, and wait for its "listening" line on stderr. The
/// daemon must stay in the foreground by itself (Debug, Foreground or
/// `SyslogFacility none`).
pub fn start_exact(dir: PathBuf, cwd: &Path, args: &[&str]) -> Daemon {
    start_reading_log(dir, cwd, args, None)
}

/// [`start_exact`] for a daemon that writes its lines to `log_file` (Debug
/// or `SyslogFacility none` with a LogFilename, as the original does):
/// the "listening" line is read from that file.
pub fn start_exact_logging_to(dir: PathBuf, cwd: &Path, args: &[&str], log_file: &Path) -> Daemon {
    start_reading_log(dir, cwd, args, Some(log_file))
}

fn start_reading_log(dir: PathBuf, cwd: &Path, args: &[&str], log_file: Option<&Path>) -> Daemon {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if log_file.is_none() && !args.iter().any(|a| a == "-SyslogFacility") {
        // Without Debug the lines would go to syslog, and so never reach
        // stderr on a machine whose syslog daemon is running.
        args.push("-SyslogFacility".into());
        args.push("none".into());
    }
    if !args.iter().any(|a| a == "-MetricsPort") {
        // Its default port would be shared by every test daemon.
        args.push("-MetricsPort".into());
        args.push("0".into());
    }
    args.push("-StateFile".into());
    args.push(dir.join("ids.state").display().to_string());
    let mut child = Command::new(bin())
        .args(&args)
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meteord");
    let stderr = child.stderr.take().expect("stderr");
    let source: Box<dyn Read + Send> = match log_file {
        Some(path) => Box::new(TailFile {
            path: path.to_path_buf(),
            offset: 0,
            until: Instant::now() + WAIT,
        }),
        None => Box::new(stderr),
    };
    Daemon::attach(child, source, dir, args)
}

/// Reads a file as it grows (a log the daemon appends to), until `until`.
struct TailFile {
    path: PathBuf,
    offset: u64,
    until: Instant,
}

impl Read for TailFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Ok(mut file) = std::fs::File::open(&self.path) {
                file.seek(SeekFrom::Start(self.offset))?;
                let n = file.read(buf)?;
                if n > 0 {
                    self.offset += n as u64;
                    return Ok(n);
                }
            }
            if Instant::now() > self.until {
                return Ok(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// What a refused start printed: exit code and stderr.
pub struct Refusal {
    pub code: Option<i32>,
    pub stderr: String,
}

/// Run `meteord` with `args` and the configuration `config` (if any) and
/// return how it exited; it must exit on its own within [`WAIT`].
pub fn refuse(name: &str, config: Option<&[u8]>, args: &[&str]) -> (Refusal, PathBuf) {
    let (dir, path) = write_config(name, config.unwrap_or_default());
    let location = match config {
        Some(_) => path.display().to_string(),
        None => "/nonexistent/meteord.conf".to_string(),
    };
    let mut full: Vec<String> = vec!["-ConfigFileLocation".into(), location];
    full.extend(LOOPBACK_ANY_PORT.iter().map(|s| s.to_string()));
    full.extend(["-MetricsPort".to_string(), "0".to_string()]);
    // Should it start after all, it stays in the foreground, where the
    // deadline below finds and kills it, instead of detaching.
    full.extend(["-Foreground".to_string(), "1".to_string()]);
    full.push("-StateFile".into());
    full.push(dir.join("ids.state").display().to_string());
    full.extend(args.iter().map(|s| s.to_string()));
    let mut child = Command::new(bin())
        .args(&full)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meteord");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("meteord {full:?} did not exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    let refusal = Refusal {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    (refusal, path)
}
