//! The daemon-wide message-id sequence: one counter for every channel and
//! every publish path, consecutive while the daemon runs, and never going
//! back across a restart.
//!
//! The original started at 0 on every start, so a client resuming with
//! `.r500` after a restart skipped the next 500 messages. Here the state file
//! (`StateFile`) holds a *reservation*: before an id at or past the reserved
//! mark is handed out, the mark moves [`RESERVE_BLOCK`] ahead and is written
//! durably. A crash therefore restarts at most one block ahead — never
//! behind — and a clean stop records the exact next id, so ordinary restarts
//! continue the sequence without a gap. Without a state file ids start from
//! the clock (microseconds since the epoch), which only goes back if the
//! clock does.
//!
//! [`IdSource`] is what the local broker asks for ids ([`Ids`] is the
//! daemon's); an id decided elsewhere and stored locally (a restore from
//! disk) is reported with [`IdSource::observe`], so the sequence never
//! hands out an id at or below it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the local broker takes message ids from.
pub trait IdSource: std::fmt::Debug + Send + Sync {
    /// Take the next id: above every id taken or observed before.
    fn next(&self) -> u64;
    /// The id the next [`IdSource::next`] returns.
    fn peek(&self) -> u64;
    /// An id decided elsewhere was stored: never hand out `id` or below.
    fn observe(&self, id: u64);
    /// Clean stop: record the exact next id, so a restart continues
    /// without a gap.
    fn save(&self) -> std::io::Result<()>;
}

/// How far ahead the state file reserves ids: one durable write per million
/// messages keeps fsync off the publish path.
pub const RESERVE_BLOCK: u64 = 1_000_000;

#[derive(Debug)]
pub struct Ids {
    next: AtomicU64,
    /// Ids below this are covered by the state file.
    reserved: AtomicU64,
    state_file: Option<Mutex<PathBuf>>,
}

impl Ids {
    /// A sequence that starts at `first` and persists nothing (tests).
    pub fn starting_at(first: u64) -> Ids {
        Ids {
            next: AtomicU64::new(first),
            reserved: AtomicU64::new(u64::MAX),
            state_file: None,
        }
    }

    /// The sequence for the daemon: from the state file when there is one
    /// (first run: 1), else from the clock.
    pub fn open(state_file: Option<&Path>) -> std::io::Result<Ids> {
        let Some(path) = state_file else {
            return Ok(Ids::starting_at(clock_micros().max(1)));
        };
        let first = match fs::read_to_string(path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a message id ({e})", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(e),
        };
        let reserved = first.saturating_add(RESERVE_BLOCK);
        write_durably(path, reserved)?;
        Ok(Ids {
            next: AtomicU64::new(first),
            reserved: AtomicU64::new(reserved),
            state_file: Some(Mutex::new(path.to_path_buf())),
        })
    }

    /// Take the next id.
    pub fn next(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        if id >= self.reserved.load(Ordering::Acquire) {
            self.reserve_past(id);
        }
        id
    }

    /// The id the next publish will get.
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Never hand out `id` or below from now on.
    pub fn observe(&self, id: u64) {
        self.next.fetch_max(id.saturating_add(1), Ordering::SeqCst);
        if id >= self.reserved.load(Ordering::Acquire) {
            // A crash now must restart above `id`, as after handing it out.
            self.reserve_past(id);
        }
    }

    fn reserve_past(&self, id: u64) {
        let Some(state) = &self.state_file else {
            return;
        };
        let path = state.lock().unwrap_or_else(|e| e.into_inner());
        if id < self.reserved.load(Ordering::Acquire) {
            return; // another thread moved the mark while we waited
        }
        let mark = id.saturating_add(RESERVE_BLOCK);
        if let Err(e) = write_durably(&path, mark) {
            tracing::error!(file = %path.display(), error = %e,
                "cannot save the message-id reservation; ids may repeat after a crash");
        }
        self.reserved.store(mark, Ordering::Release);
    }

    /// Record the exact next id (clean shutdown), so a restart continues
    /// without a gap.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(state) = &self.state_file else {
            return Ok(());
        };
        let path = state.lock().unwrap_or_else(|e| e.into_inner());
        write_durably(&path, self.peek())
    }
}

impl IdSource for Ids {
    fn next(&self) -> u64 {
        Ids::next(self)
    }

    fn peek(&self) -> u64 {
        Ids::peek(self)
    }

    fn observe(&self, id: u64) {
        Ids::observe(self, id)
    }

    fn save(&self) -> std::io::Result<()> {
        Ids::save(self)
    }
}

fn clock_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Write `value` to `path` through a temporary file and rename, with fsync,
/// so the file is always either the old or the new value.
fn write_durably(path: &Path, value: u64) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = fs::File::create(&tmp)?;
        writeln!(file, "{value}")?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable; not every filesystem allows it.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::TempDir;

    /// A state-file path in a fresh directory (kept while the guard lives).
    fn temp_path(name: &str) -> (TempDir, PathBuf) {
        let dir = TempDir::new(&format!("ids-{name}"));
        let path = dir.path().join("state");
        (dir, path)
    }

    #[test]
    fn consecutive() {
        let ids = Ids::starting_at(5);
        assert_eq!((ids.next(), ids.next(), ids.next()), (5, 6, 7));
        assert_eq!(ids.peek(), 8);
    }

    #[test]
    fn first_run_starts_at_one_and_clean_restart_continues() {
        let (_dir, path) = temp_path("clean");
        let ids = Ids::open(Some(&path)).unwrap();
        assert_eq!(ids.next(), 1);
        assert_eq!(ids.next(), 2);
        ids.save().unwrap();
        drop(ids);
        let ids = Ids::open(Some(&path)).unwrap();
        assert_eq!(ids.next(), 3);
    }

    #[test]
    fn crash_restart_never_goes_back() {
        let (_dir, path) = temp_path("crash");
        let ids = Ids::open(Some(&path)).unwrap();
        let mut last = 0;
        for _ in 0..10 {
            last = ids.next();
        }
        drop(ids); // no save(): as after a crash
        let ids = Ids::open(Some(&path)).unwrap();
        assert!(ids.next() > last);
    }

    #[test]
    fn reservation_moves_when_reached() {
        let (_dir, path) = temp_path("move");
        let ids = Ids::open(Some(&path)).unwrap();
        ids.next.store(RESERVE_BLOCK + 1, Ordering::SeqCst);
        let id = ids.next();
        let mark: u64 = fs::read_to_string(&path).unwrap().trim().parse().unwrap();
        assert!(mark > id);
    }

    #[test]
    fn an_observed_id_is_never_handed_out_again() {
        let ids = Ids::starting_at(5);
        ids.observe(9);
        assert_eq!(ids.next(), 10);
        ids.observe(3);
        assert_eq!(ids.next(), 11, "an older id moves nothing");
    }

    #[test]
    fn observing_past_the_reservation_moves_it() {
        let (_dir, path) = temp_path("observe");
        let ids = Ids::open(Some(&path)).unwrap();
        ids.observe(5 * RESERVE_BLOCK);
        let mark: u64 = fs::read_to_string(&path).unwrap().trim().parse().unwrap();
        assert!(mark > 5 * RESERVE_BLOCK);
        drop(ids); // as after a crash
        let ids = Ids::open(Some(&path)).unwrap();
        assert!(ids.next() > 5 * RESERVE_BLOCK);
    }

    #[test]
    fn garbage_state_file_is_an_error() {
        let (_dir, path) = temp_path("garbage");
        fs::write(&path, "not a number").unwrap();
        assert!(Ids::open(Some(&path)).is_err());
    }

    #[test]
    fn clock_start_without_state_file() {
        let ids = Ids::open(None).unwrap();
        assert!(ids.next() > 1_600_000_000_000_000);
    }
}
