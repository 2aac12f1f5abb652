//! Process life: detaching into the background, pid files, dropping root
//! privileges, and systemd readiness notification. (The open-files limit
//! is raised by [`meteor_proto::fd_limit::raise_fd_limit`], shared with the
//! other binaries.)
//!
//! Everything here is synchronous and meant to run from `main` *before* the
//! tokio runtime exists: a runtime (or any thread) created before `fork()`
//! is unusable in the child. The order `main` uses:
//! raise the open-files limit → bind the ports → [`daemonize`] (unless
//! foreground) → [`drop_privileges`] → logging → runtime → [`notify_ready`].
//!
//! The limit is raised before binding because binding sizes the daemon by
//! it: [`crate::server::run`] caps the connection limit by the soft limit
//! in force, and a soft limit raised only afterwards would leave the cap
//! at the distribution's default of 1024. Raising needs no privilege, so
//! nothing is lost by doing it first.
//!
//! [`drop_privileges`] comes after [`daemonize`] so the pid file can be
//! written to a root-owned directory such as `/run`; a SysV script then
//! removes it as root on stop.
//!
//! A daemonized process keeps the starting command waiting until
//! [`notify_ready`] (exit 0) or [`report_startup_failure`] / its own exit
//! (exit 1), so errors after detaching (unknown user, unopenable log file)
//! still give the init script a failing status.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, bail};
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, Gid, Group, Uid, User};

/// Permissions of a pid file: readable by everyone (status scripts run as
/// other users), writable by the daemon's user only.
const PID_FILE_MODE: u32 = 0o644;

/// Longest error text the detached child reports back to the waiting
/// parent; longer texts are cut. Far below a pipe's buffer (64 KiB on
/// Linux), so the report is written without blocking even if nobody reads.
const MAX_CHILD_ERROR: usize = 4096;

/// `fork(2)`, the one unsafe call of the daemon.
#[allow(unsafe_code)]
fn fork_process() -> nix::Result<ForkResult> {
    // SAFETY: fork is unsound only when other threads exist (the child could
    // inherit locks held by threads that no longer exist). `daemonize` is
    // documented and used to run from `main` before the tokio runtime or any
    // other thread is created, so the process is single-threaded here; the
    // children only make plain system calls and then return into that same
    // single-threaded `main`.
    unsafe { nix::unistd::fork() }
}

/// First byte of the daemon's start-up report to the waiting original
/// process: success.
const STATUS_READY: u8 = b'+';
/// First byte of the report: failure, followed by the reason.
const STATUS_FAILED: u8 = b'-';

/// The write end of the start-up report pipe, held by a daemonized process
/// until it reports ready ([`notify_ready`]) or failed
/// ([`report_startup_failure`]). `None` in the foreground.
static STARTUP_REPORT: Mutex<Option<File>> = Mutex::new(None);

/// Detach from the terminal: fork, `setsid`, fork again (so the daemon can
/// never reacquire a controlling terminal), `chdir("/")`, point stdin,
/// stdout and stderr at `/dev/null`, and write the pid file (if any) with
/// the final pid. Returns only in the daemon process. Must be called before
/// any thread exists.
///
/// The original process does not exit at once: it waits for the daemon's
/// start-up report and exits 0 once the daemon calls [`notify_ready`]
/// (ports bound, log open, runtime running — so an init script that starts
/// us finds the pid file and a working daemon when the command returns). If
/// the daemon calls [`report_startup_failure`], the original process prints
/// that reason on the operator's terminal and exits 1; if the daemon exits
/// without reporting (any error after detaching), it says so and exits 1.
pub fn daemonize(pid_file: Option<&Path>) -> anyhow::Result<()> {
    // Whatever is still buffered would otherwise be written by every
    // process that inherits the buffer.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();

    // Close-on-exec: nothing the daemon might run should hold the pipe
    // open and keep the starting command waiting.
    let (status_read, status_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    match fork_process().context("cannot fork")? {
        ForkResult::Parent { .. } => {
            drop(status_write);
            let code = match wait_for_daemon(File::from(status_read)) {
                Ok(()) => 0,
                Err(message) => {
                    eprintln!("meteord: {message}");
                    1
                }
            };
            std::process::exit(code);
        }
        ForkResult::Child => {}
    }
    drop(status_read);
    let mut status = File::from(status_write);

    if let Err(err) = nix::unistd::setsid() {
        report_and_exit(&mut status, &format!("setsid failed: {err}"));
    }
    match fork_process() {
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {}
        Err(err) => report_and_exit(&mut status, &format!("second fork failed: {err}")),
    }

    if let Err(err) = finish_detach(pid_file) {
        report_and_exit(&mut status, &format!("{err:#}"));
    }
    *startup_report() = Some(status);
    Ok(())
}

/// Tell the process that started a daemonized meteord why start-up failed
/// (it prints `message` and exits 1). No-op in the foreground or once
/// reported. The caller then exits.
pub fn report_startup_failure(message: &str) {
    if let Some(mut status) = startup_report().take() {
        write_failure(&mut status, message);
    }
}

fn startup_report() -> MutexGuard<'static, Option<File>> {
    // Holds only a file handle; a panic elsewhere cannot leave it torn.
    STARTUP_REPORT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The daemon's part after the second fork.
fn finish_detach(pid_file: Option<&Path>) -> anyhow::Result<()> {
    nix::unistd::chdir("/").context("cannot chdir to /")?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null")?;
    nix::unistd::dup2_stdin(&null).context("cannot redirect stdin")?;
    nix::unistd::dup2_stdout(&null).context("cannot redirect stdout")?;
    nix::unistd::dup2_stderr(&null).context("cannot redirect stderr")?;
    if let Some(path) = pid_file {
        write_pid_file(path)?;
    }
    Ok(())
}

/// In the original process: read the daemon's start-up report.
fn wait_for_daemon(status: impl Read) -> Result<(), String> {
    let mut report = Vec::new();
    // The status byte plus the longest message.
    let limit = 1 + MAX_CHILD_ERROR as u64;
    if let Err(err) = status.take(limit).read_to_end(&mut report) {
        return Err(format!("lost contact with the background process: {err}"));
    }
    match report.split_first() {
        Some((&STATUS_READY, _)) => Ok(()),
        Some((&STATUS_FAILED, message)) => Err(format!(
            "cannot start in the background: {}",
            String::from_utf8_lossy(message)
        )),
        _ => Err("the background process exited during start-up (see its log)".to_owned()),
    }
}

/// Send a failure report (status byte and the reason, cut to
/// [`MAX_CHILD_ERROR`] bytes on a character boundary).
fn write_failure(status: &mut File, message: &str) {
    let cut = message.len().min(MAX_CHILD_ERROR);
    let cut = (0..=cut)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    let mut report = Vec::with_capacity(cut + 1);
    report.push(STATUS_FAILED);
    report.extend_from_slice(&message.as_bytes()[..cut]);
    let _ = status.write_all(&report);
}

/// In a child: tell the waiting parent what went wrong, then exit 1.
fn report_and_exit(status: &mut File, message: &str) -> ! {
    write_failure(status, message);
    std::process::exit(1);
}

/// Write a pid file for the current process (`<pid>\n`). Written to a
/// temporary file in the same directory and renamed into place, so a reader
/// never sees a half-written pid.
pub fn write_pid_file(path: &Path) -> anyhow::Result<()> {
    let pid = std::process::id();
    let file_name = path
        .file_name()
        .with_context(|| format!("pid file {} has no file name", path.display()))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".{pid}.tmp"));
    let tmp = path.with_file_name(tmp_name);
    let write = || -> io::Result<()> {
        let mut file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(PID_FILE_MODE)
            .open(&tmp)?;
        writeln!(file, "{pid}")?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|err| {
        let _ = fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write pid file {}: {err}", path.display())
    })
}

/// Remove the pid file if it still names this process (a newer instance
/// may have replaced it). Errors are logged, never fatal.
pub fn remove_pid_file(path: &Path) {
    let ours = fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        == Some(std::process::id());
    if !ours {
        tracing::debug!(path = %path.display(), "pid file not ours or gone, left alone");
        return;
    }
    if let Err(err) = fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %err, "cannot remove pid file");
    }
}

/// The identity to switch to, resolved from names.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    user: Option<(String, Uid)>,
    gid: Option<Gid>,
}

/// Resolve `user` and `group` names (or numeric ids) to ids. Without a
/// group, the user's primary group is used.
fn resolve_identity(user: Option<&str>, group: Option<&str>) -> anyhow::Result<Target> {
    let user = match user {
        None => None,
        Some(name) => Some(lookup_user(name)?),
    };
    let gid = match group {
        Some(name) => Some(lookup_group(name)?),
        None => user.as_ref().map(|user| user.gid),
    };
    Ok(Target {
        user: user.map(|user| (user.name, user.uid)),
        gid,
    })
}

fn lookup_user(name: &str) -> anyhow::Result<User> {
    let found = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(user)) => Ok(user),
        Ok(None) => bail!("unknown user '{name}' (not in the user database)"),
        Err(err) => bail!("cannot look up user '{name}': {err}"),
    }
}

fn lookup_group(name: &str) -> anyhow::Result<Gid> {
    let found = match name.parse::<u32>() {
        Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
        Err(_) => Group::from_name(name),
    };
    match found {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => bail!("unknown group '{name}' (not in the group database)"),
        Err(err) => bail!("cannot look up group '{name}': {err}"),
    }
}

/// When running as root and a user and/or group is given, switch to them:
/// supplementary groups (the user's, via `initgroups`, or just the group),
/// then the group id, then the user id — in that order, because after
/// `setuid` the others are no longer allowed. Names are resolved first, so
/// an unknown name is a clear error naming it, whether or not we are root.
/// When not root there is nothing to switch (a warning is logged if the
/// current identity differs from the requested one).
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> anyhow::Result<()> {
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let target = resolve_identity(user, group)?;
    if !nix::unistd::geteuid().is_root() {
        let wrong_user = target
            .user
            .as_ref()
            .is_some_and(|(_, uid)| *uid != nix::unistd::geteuid());
        let wrong_group = target.gid.is_some_and(|gid| gid != nix::unistd::getegid());
        if wrong_user || wrong_group {
            tracing::warn!(
                user = user.unwrap_or(""),
                group = group.unwrap_or(""),
                "not started as root: keeping the current user and group"
            );
        }
        return Ok(());
    }
    if let Some(gid) = target.gid {
        match &target.user {
            Some((name, _)) => {
                let cname = CString::new(name.as_str())
                    .with_context(|| format!("user name '{name}' contains a NUL byte"))?;
                nix::unistd::initgroups(&cname, gid)
                    .with_context(|| format!("cannot set the groups of user '{name}'"))?;
            }
            None => nix::unistd::setgroups(&[gid]).context("cannot set supplementary groups")?,
        }
        nix::unistd::setgid(gid).with_context(|| format!("cannot switch to group id {gid}"))?;
    }
    if let Some((name, uid)) = &target.user {
        nix::unistd::setuid(*uid).with_context(|| format!("cannot switch to user '{name}'"))?;
        // Belt and braces: if root could be regained, the drop did not work.
        if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            bail!("privileges were not dropped: could switch back to root after becoming '{name}'");
        }
    }
    tracing::info!(
        user = user.unwrap_or(""),
        group = group.unwrap_or(""),
        "dropped root privileges"
    );
    Ok(())
}

/// Send `state` to systemd; a no-op without `NOTIFY_SOCKET`. Failures are
/// logged: readiness is best effort, the daemon works either way.
fn notify(state: &[sd_notify::NotifyState]) {
    // A manager that waits only for READY (start-stop-daemon --notify-await)
    // removes its socket afterwards while NOTIFY_SOCKET stays set: warn
    // once, then stop trying instead of warning on every reload and stop.
    static GAVE_UP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if GAVE_UP.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if let Err(err) = sd_notify::notify(state) {
        GAVE_UP.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(error = %err, "service manager notification failed; not notifying any more");
    }
}

/// Tell systemd the daemon is ready (call after the ports are bound and the
/// runtime runs, and again after a reload completes), with a status line.
/// The first call also lets the command that started a daemonized meteord
/// exit 0 (see [`daemonize`]).
pub fn notify_ready(status: &str) {
    if let Some(mut report) = startup_report().take() {
        let _ = report.write_all(&[STATUS_READY]);
    }
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Tell systemd a reload (SIGHUP) has begun; follow with [`notify_ready`]
/// when it is done. Carries the monotonic timestamp `Type=notify-reload`
/// requires.
pub fn notify_reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
        Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
    }
}

/// Tell systemd the daemon is shutting down.
pub fn notify_stopping() {
    notify(&[sd_notify::NotifyState::Stopping]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_path(tag: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("meteord-daemon-{tag}-{}-{n}", std::process::id()))
    }

    #[test]
    fn start_up_report_is_decoded() {
        assert_eq!(wait_for_daemon(&[STATUS_READY][..]), Ok(()));
        let failed = wait_for_daemon(&b"-cannot open log file /x: denied"[..]).unwrap_err();
        assert_eq!(
            failed,
            "cannot start in the background: cannot open log file /x: denied"
        );
        // The daemon died without a word (killed, panicked).
        let silent = wait_for_daemon(&b""[..]).unwrap_err();
        assert!(silent.contains("exited during start-up"), "{silent}");
    }

    #[test]
    fn failure_report_is_bounded_and_cut_on_a_char_boundary() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let mut write = File::from(write);
        let long = "é".repeat(MAX_CHILD_ERROR);
        write_failure(&mut write, &long);
        drop(write);
        let message = wait_for_daemon(File::from(read)).unwrap_err();
        let text = message.trim_start_matches("cannot start in the background: ");
        assert!(text.len() <= MAX_CHILD_ERROR && text.len() >= MAX_CHILD_ERROR - 1);
        assert!(text.chars().all(|c| c == 'é'), "no replacement characters");
    }

    #[test]
    fn pid_file_is_written_and_removed() {
        let path = temp_path("pid");
        write_pid_file(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        let mode = fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777 & !0o022,
            PID_FILE_MODE & !0o022
        );
        // Overwriting a stale pid file works.
        fs::write(&path, "999999\n").unwrap();
        write_pid_file(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        remove_pid_file(&path);
        assert!(!path.exists());
        // Removing a missing pid file is harmless.
        remove_pid_file(&path);
    }

    #[test]
    fn foreign_pid_file_is_left_alone() {
        let path = temp_path("foreign");
        fs::write(&path, "1\n").unwrap();
        remove_pid_file(&path);
        assert!(path.exists());
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn pid_file_in_missing_directory_is_a_clear_error() {
        let path = temp_path("nodir").join("meteord.pid");
        let err = write_pid_file(&path).unwrap_err().to_string();
        assert!(err.contains("cannot write pid file"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn no_user_and_no_group_is_a_no_op() {
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        drop_privileges(None, None).unwrap();
        assert_eq!((nix::unistd::getuid(), nix::unistd::getgid()), (uid, gid));
    }

    #[test]
    fn unknown_user_and_group_are_named_in_the_error() {
        let err = drop_privileges(Some("no-such-user-meteord-test"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown user 'no-such-user-meteord-test'"),
            "{err}"
        );
        let err = drop_privileges(None, Some("no-such-group-meteord-test"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown group 'no-such-group-meteord-test'"),
            "{err}"
        );
    }

    #[test]
    fn names_and_numbers_resolve() {
        let root = resolve_identity(Some("root"), None).unwrap();
        assert_eq!(root.user, Some(("root".to_owned(), Uid::from_raw(0))));
        assert_eq!(root.gid, Some(Gid::from_raw(0)));
        let by_number = resolve_identity(Some("0"), Some("0")).unwrap();
        assert_eq!(by_number.gid, Some(Gid::from_raw(0)));
        let group_only = resolve_identity(None, Some("root")).unwrap();
        assert_eq!(group_only.user, None);
        assert_eq!(group_only.gid, Some(Gid::from_raw(0)));
    }

    #[test]
    fn switching_to_the_current_identity_keeps_it() {
        // As root this switches to root (a no-op); otherwise nothing happens.
        let me = nix::unistd::geteuid().as_raw().to_string();
        drop_privileges(Some(&me), None).unwrap();
        assert_eq!(nix::unistd::geteuid().as_raw().to_string(), me);
    }
}
