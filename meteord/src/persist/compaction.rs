//! Keeping the history file near the size of what the histories hold.
//!
//! The file is due once it is past [`GROWTH_FACTOR`] times its length
//! after the last compaction and past [`MIN_COMPACT_BYTES`]; the append that makes it due
//! wakes this task (which also checks once a second). It is then
//! rewritten: the messages the histories hold now go to a temporary file
//! beside it, with no lock held but each channel's for an instant; then,
//! under the writer lock, the records appended meanwhile are copied after
//! them and the temporary file is renamed over the old one. A publish
//! waits only for that copy of the last moments' records. A record both in
//! the snapshot and in the copied tail is stored once on restore.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::format::{self, Record};
use super::writer::{FsyncPolicy, HistoryLog};
use crate::channel::Channels;
use crate::state::State;

/// Below this the file is never rewritten: not worth a rewrite.
pub const MIN_COMPACT_BYTES: u64 = 256 << 10;
/// How often the file's length is checked besides the appends' wake-up.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How many times its size after the last compaction the file may grow
/// to. A rewrite costs what the histories hold, once per (factor − 1)
/// times that appended: 4 keeps the extra writing to a third of the
/// appends (2 doubled it: measured 28 rewrites a second at 90,000
/// publishes a second into 8 full channels).
pub const GROWTH_FACTOR: u64 = 4;

/// Whether a file of `len` bytes, `compacted` right after the last
/// compaction, is due for one.
pub fn due(len: u64, compacted: u64) -> bool {
    len > MIN_COMPACT_BYTES.max(compacted.saturating_mul(GROWTH_FACTOR))
}

/// Rewrite the file to hold what `channels` hold. Returns the bytes of
/// what they held (header included) and the file's new length (with the
/// records appended meanwhile), or `None` when a clear came between.
pub fn compact(log: &HistoryLog, channels: &Channels) -> io::Result<Option<(u64, u64)>> {
    let mark = log.mark()?;
    let messages = channels.stored();
    let mut name = log.path().file_name().unwrap_or_default().to_os_string();
    name.push(".compacting");
    let tmp_path: PathBuf = log.path().with_file_name(name);
    let mut live = format::HEADER_LEN as u64;
    let mut write = || -> io::Result<File> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(super::writer::FILE_MODE)
            .open(&tmp_path)?;
        let mut out = BufWriter::new(file);
        out.write_all(&format::header())?;
        let mut buf = Vec::new();
        for m in &messages {
            buf.clear();
            let text = m.text();
            let record = Record {
                id: m.id,
                timestamp: m.timestamp,
                channel: &m.channel,
                text: &text,
            };
            format::encode(&record, &mut buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            out.write_all(&buf)?;
            live += buf.len() as u64;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        // The bulk reaches the disk here, outside the writer lock (with
        // `HistoryFsync no` meteord never syncs).
        if log.policy() != FsyncPolicy::No {
            file.sync_data()?;
        }
        Ok(file)
    };
    let tmp = match write() {
        Ok(file) => file,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e);
        }
    };
    match log.swap_in(mark, tmp, &tmp_path, live) {
        Ok(after) => Ok(after.map(|after| (live, after))),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            Err(e)
        }
    }
}

/// The background task: check, compact when due, until the runtime ends.
pub async fn run(state: Arc<State>, log: Arc<HistoryLog>) {
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (len, base) = log.lengths();
        if !due(len, base) {
            tokio::select! {
                _ = tick.tick() => {}
                () = log.compaction_due() => {}
            }
            continue;
        }
        // Still due right after a compaction (much was appended while it
        // ran): the next one starts at once and has less to copy.
        let (state, log) = (state.clone(), log.clone());
        let result = tokio::task::spawn_blocking(move || compact(&log, &state.channels)).await;
        match result {
            Ok(Ok(Some((live, after)))) => {
                tracing::info!(before = len, live, after, "history file compacted");
            }
            Ok(Ok(None)) => tracing::debug!("history file compaction gave way to a clear"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot compact the history file; it keeps growing");
                // Not again at once: a full disk stays full for a while.
                tokio::time::sleep(CHECK_INTERVAL * 30).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "history file compaction failed");
                tokio::time::sleep(CHECK_INTERVAL * 30).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Limits, PublishContext};
    use crate::ids::Ids;
    use bytes::Bytes;

    fn ids_in(path: &std::path::Path) -> Vec<u64> {
        let bytes = std::fs::read(path).unwrap();
        let decoded = format::decode(&bytes).unwrap();
        assert_eq!(decoded.torn, None);
        decoded.records.iter().map(|r| r.id).collect()
    }

    fn publish(channels: &Channels, ids: &Ids, log: &HistoryLog, text: &str) {
        let ctx = PublishContext {
            now: 1_000,
            generation: 1,
        };
        let m = channels.publish("c", Bytes::from(text.to_owned()), ids, ctx);
        let text = m.text();
        let record = Record {
            id: m.id,
            timestamp: m.timestamp,
            channel: b"c",
            text: &text,
        };
        log.append(&record).unwrap();
    }

    #[test]
    fn appends_wait_for_a_flush_and_a_compaction_keeps_what_the_histories_hold() {
        let dir = std::env::temp_dir().join(format!("meteord-compact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h");
        let log = HistoryLog::open(&path, FsyncPolicy::No, 0).unwrap();
        let channels = Channels::new(Limits {
            replay_limit: 2,
            max_age: 3_600,
        });
        let ids = Ids::starting_at(1);
        for n in 0..5 {
            publish(&channels, &ids, &log, &format!("m{n}"));
        }
        assert_eq!(ids_in(&path), [0u64; 0], "buffered until a flush");
        log.flush().unwrap();
        assert_eq!(ids_in(&path), [1, 2, 3, 4, 5]);

        let (live, after) = compact(&log, &channels).unwrap().unwrap();
        assert_eq!(live, after, "nothing was appended meanwhile");
        assert_eq!(ids_in(&path), [4, 5], "what MaxMessagesPerChannel left");
        assert_eq!(log.lengths(), (after, live));
        publish(&channels, &ids, &log, "m5");
        log.flush().unwrap();
        assert_eq!(ids_in(&path), [4, 5, 6], "appends go on in the new file");
        assert!(!dir.join("h.compacting").exists());

        publish(&channels, &ids, &log, "m6");
        log.clear(|| channels.clear_all()).unwrap();
        log.flush().unwrap();
        assert_eq!(
            ids_in(&path),
            [0u64; 0],
            "a clear empties the file and the buffer"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            format::HEADER_LEN as u64
        );
        log.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn due_past_four_times_the_compacted_size_and_the_floor() {
        assert!(!due(MIN_COMPACT_BYTES, 10));
        assert!(due(MIN_COMPACT_BYTES + 1, 10));
        assert!(!due(8 << 20, 2 << 20));
        assert!(due((8 << 20) + 1, 2 << 20));
    }
}
