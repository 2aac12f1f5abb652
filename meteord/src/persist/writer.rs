//! Appending to the history file, and getting it to the disk as
//! `HistoryFsync` says.
//!
//! An append encodes the record into a buffer under the writer lock; a
//! [`HistoryLog::flush`] writes everything buffered with one `write(2)`.
//! The controller flushes before it writes its replies
//! ([`crate::broker::Broker::flush`]), so when a publisher reads `OK` its
//! record is in the page cache (a `SIGKILL` loses nothing), and a
//! publisher pipelining many lines costs one system call per batch, not
//! one per message. A failed or short write is cut back off the file, so
//! it never leaves a half record in front of later ones; the records of
//! that batch are dropped and their replies are not sent.
//!
//! `always` is a group commit: a sync thread waits for appends, takes the
//! newest sequence number, `fdatasync`s once outside the writer lock, and
//! releases every publish up to that number; appends arriving during one
//! sync share the next. `everysec` runs the same thread on a one-second
//! tick and never makes a publish wait. `no` has no thread.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::format::{self, Record};

/// Permissions of a new history file: it holds every message's text, so
/// only the daemon's user (and group) may read it.
pub const FILE_MODE: u32 = 0o640;

/// `HistoryFsync`: when appended records are forced to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before the publisher is answered (group commit).
    Always,
    /// Once a second in the background.
    EverySec,
    /// When the kernel writes its cache back.
    No,
}

impl FsyncPolicy {
    /// The parameter's words (Redis' `appendfsync` ones).
    pub fn parse(word: &str) -> Option<FsyncPolicy> {
        match word {
            "always" => Some(FsyncPolicy::Always),
            "everysec" => Some(FsyncPolicy::EverySec),
            "no" => Some(FsyncPolicy::No),
            _ => None,
        }
    }
}

/// How far the disk has the appends: sequence numbers up to `synced` are
/// durable; those up to `failed` were in a sync that failed (`error`).
#[derive(Debug, Clone, Default)]
struct Durable {
    synced: u64,
    failed: u64,
    error: Option<Arc<str>>,
}

#[derive(Debug)]
struct Inner {
    file: Arc<File>,
    /// Bytes in the file: where the next record starts.
    len: u64,
    /// Sequence number of the last append.
    written: u64,
    /// Bumped by every clear, so a compaction that raced one gives up.
    epoch: u64,
    /// What the histories held at the last compaction, in file bytes (at
    /// the start: the file's length): the base the growth is measured
    /// against. Not the file's length after the compaction, which also
    /// holds what was appended while it ran, mostly soon trimmed.
    compacted_len: u64,
    /// The sync thread should end.
    stopping: bool,
    /// Records appended but not yet written to the file.
    pending: Vec<u8>,
}

/// The open history file.
#[derive(Debug)]
pub struct HistoryLog {
    path: PathBuf,
    policy: FsyncPolicy,
    inner: Mutex<Inner>,
    /// Wakes the sync thread (`always`) and ends it.
    wake: Condvar,
    durable: watch::Sender<Durable>,
    /// Poked by the append that makes the file due for a compaction, so
    /// a fast publisher does not outgrow it between periodic checks.
    compact_due: tokio::sync::Notify,
}

impl HistoryLog {
    /// Open (or create) the file at `path` for appending; `good_len` is
    /// what the restore found good ([`super::restore::Loaded`]): a longer
    /// file has a torn tail, which is cut off here. Starts the sync thread
    /// (call after any `fork`).
    pub fn open(path: &Path, policy: FsyncPolicy, good_len: u64) -> io::Result<Arc<HistoryLog>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(path)?;
        let mut len = file.metadata()?.len();
        if len > good_len {
            file.set_len(good_len)?;
            len = good_len;
        }
        if len == 0 {
            (&file).write_all(&format::header())?;
            len = format::HEADER_LEN as u64;
        }
        if policy != FsyncPolicy::No {
            file.sync_all()?;
            sync_dir(path)?;
        }
        let log = Arc::new(HistoryLog {
            path: path.to_path_buf(),
            policy,
            inner: Mutex::new(Inner {
                file: Arc::new(file),
                len,
                written: 0,
                epoch: 0,
                compacted_len: len,
                stopping: false,
                pending: Vec::new(),
            }),
            wake: Condvar::new(),
            durable: watch::Sender::new(Durable::default()),
            compact_due: tokio::sync::Notify::new(),
        });
        if policy != FsyncPolicy::No {
            let syncer = log.clone();
            std::thread::Builder::new()
                .name("meteord-fsync".into())
                .spawn(move || syncer.sync_loop())?;
        }
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The fields are updated only after the file operation they
        // describe succeeded, so a poisoned lock still holds the truth.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append one record to the buffer (no system call); returns its
    /// sequence number for [`HistoryLog::durable`]. It reaches the file
    /// with the next [`HistoryLog::flush`] (or sync, or compaction).
    pub fn append(&self, record: &Record<'_>) -> io::Result<u64> {
        let mut inner = self.lock();
        format::encode(record, &mut inner.pending)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        inner.written += 1;
        if self.policy == FsyncPolicy::Always {
            self.wake.notify_one();
        }
        Ok(inner.written)
    }

    /// Write every buffered record to the file (one `write(2)`): after
    /// this they are in the page cache. On an error nothing of them stays
    /// in the file, and they are dropped.
    pub fn flush(&self) -> io::Result<()> {
        self.flush_locked(&mut self.lock())
    }

    fn flush_locked(&self, inner: &mut Inner) -> io::Result<()> {
        if inner.pending.is_empty() {
            return Ok(());
        }
        let result = (&*inner.file).write_all(&inner.pending);
        if result.is_ok() {
            let was_due = super::compaction::due(inner.len, inner.compacted_len);
            inner.len += inner.pending.len() as u64;
            if !was_due && super::compaction::due(inner.len, inner.compacted_len) {
                self.compact_due.notify_one();
            }
        } else {
            // Whatever part got in must not stay in front of the next
            // records.
            let _ = inner.file.set_len(inner.len);
            tracing::error!(file = %self.path.display(), error = ?result.as_ref().err(),
                "cannot write to the history file; the publishes of this batch are not acknowledged");
        }
        inner.pending.clear();
        if inner.pending.capacity() > 1 << 20 {
            inner.pending = Vec::new();
        }
        result
    }

    /// Resolves once append `seq` is as durable as the policy promises
    /// before an answer: on the disk for `always`, at once otherwise.
    pub fn durable(&self, seq: u64) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let mut rx = (self.policy == FsyncPolicy::Always).then(|| self.durable.subscribe());
        async move {
            let Some(rx) = rx.as_mut() else {
                return Ok(());
            };
            let state = rx
                .wait_for(|d| d.synced >= seq || d.failed >= seq)
                .await
                .map_err(|_| "the history file was closed".to_owned())?;
            if state.synced >= seq {
                Ok(())
            } else {
                Err(state.error.as_deref().unwrap_or("fsync failed").to_owned())
            }
        }
    }

    fn sync_loop(&self) {
        let mut synced = 0;
        loop {
            let mut inner = self.lock();
            match self.policy {
                FsyncPolicy::Always => {
                    while inner.written <= synced && !inner.stopping {
                        inner = self.wake.wait(inner).unwrap_or_else(|e| e.into_inner());
                    }
                }
                _ => {
                    if !inner.stopping {
                        inner = self
                            .wake
                            .wait_timeout(inner, Duration::from_secs(1))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
            if inner.stopping {
                return;
            }
            if inner.written <= synced {
                continue;
            }
            let target = inner.written;
            let flushed = self.flush_locked(&mut inner);
            let file = inner.file.clone();
            drop(inner);
            match flushed.and_then(|()| file.sync_data()) {
                Ok(()) => {
                    synced = target;
                    self.durable.send_modify(|d| d.synced = target);
                }
                Err(e) => {
                    tracing::error!(file = %self.path.display(), error = %e,
                        "cannot write or sync the history file");
                    synced = target;
                    let error: Arc<str> =
                        Arc::from(format!("history file {}: {e}", self.path.display()));
                    self.durable.send_modify(|d| {
                        d.failed = target;
                        d.error = Some(error);
                    });
                }
            }
        }
    }

    /// Clean stop: everything appended onto the disk (whatever the
    /// policy), and the sync thread ended.
    pub fn close(&self) -> io::Result<()> {
        let mut inner = self.lock();
        inner.stopping = true;
        self.wake.notify_all();
        self.flush_locked(&mut inner)?;
        inner.file.sync_data()?;
        let written = inner.written;
        self.durable
            .send_modify(|d| d.synced = d.synced.max(written));
        Ok(())
    }

    /// SIGUSR1: run `clear` (which empties the histories) and empty the
    /// file, both under the writer lock so no append falls between them.
    pub fn clear(&self, clear: impl FnOnce()) -> io::Result<()> {
        let mut inner = self.lock();
        clear();
        // Published before the clear: cleared with the histories.
        inner.pending.clear();
        inner.epoch += 1;
        inner.file.set_len(format::HEADER_LEN as u64)?;
        inner.len = format::HEADER_LEN as u64;
        inner.compacted_len = inner.len;
        if self.policy != FsyncPolicy::No {
            inner.file.sync_data()?;
        }
        Ok(())
    }

    /// Resolves when an append made the file due for a compaction.
    pub async fn compaction_due(&self) {
        self.compact_due.notified().await;
    }

    /// Current length, and the base of [`super::compaction::due`].
    pub fn lengths(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.len + inner.pending.len() as u64, inner.compacted_len)
    }

    /// Where the compaction starts: the file's length now and the clear
    /// epoch.
    pub(super) fn mark(&self) -> io::Result<(u64, u64)> {
        let mut inner = self.lock();
        self.flush_locked(&mut inner)?;
        Ok((inner.len, inner.epoch))
    }

    /// Finish a compaction: `tmp` (at `tmp_path`, already synced) holds
    /// every record the histories held after `mark` (`live` bytes); the
    /// records appended since `mark` are copied after them, then it
    /// replaces the file.
    /// Returns the new length, or `None` when a clear came between (the
    /// temporary file is then removed).
    pub(super) fn swap_in(
        &self,
        mark: (u64, u64),
        mut tmp: File,
        tmp_path: &Path,
        live: u64,
    ) -> io::Result<Option<u64>> {
        use std::os::unix::fs::FileExt;
        let mut inner = self.lock();
        self.flush_locked(&mut inner)?;
        if inner.epoch != mark.1 || inner.len < mark.0 {
            drop(inner);
            let _ = std::fs::remove_file(tmp_path);
            return Ok(None);
        }
        let mut tail = vec![0u8; (inner.len - mark.0) as usize];
        inner.file.read_exact_at(&mut tail, mark.0)?;
        tmp.write_all(&tail)?;
        if self.policy == FsyncPolicy::Always {
            // Records of the tail may have been acknowledged as on the
            // disk already: they must be there in the new file before it
            // replaces the old one. With the other policies the sync
            // thread (or nobody) syncs them, as any recent append.
            tmp.sync_data()?;
        }
        std::fs::rename(tmp_path, &self.path)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        let len = file.metadata()?.len();
        inner.file = Arc::new(file);
        inner.len = len;
        inner.compacted_len = live;
        drop(inner);
        if self.policy != FsyncPolicy::No {
            sync_dir(&self.path)?;
        }
        Ok(Some(len))
    }
}

/// Make a create or rename in `path`'s directory durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
