//! Reading the history file at start and refilling the histories from it.
//!
//! [`load`] runs before the ports are bound: a damaged or foreign file
//! stops the start there, with nothing bound and the message on the
//! operator's terminal. [`apply`] runs once the state exists and before the
//! first connection is accepted, so no subscriber ever sees a history
//! still being refilled.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::format::{self, Corrupt, Torn};
use crate::channel::Stamped;
use crate::state::State;

/// One message read back.
#[derive(Debug, Clone)]
pub struct Restored {
    pub id: u64,
    pub timestamp: u64,
    pub channel: Bytes,
    pub text: Bytes,
}

/// A history file read through at start.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    /// In the file's order (ids increase per channel but may interleave
    /// across a compaction; [`apply`] sorts).
    pub messages: Vec<Restored>,
    /// The length of the good part: where appends continue.
    pub good_len: u64,
    /// A tail cut short by a crash, cut off when the file is opened.
    pub torn: Option<Torn>,
    /// Highest id in the file (0 when empty).
    pub max_id: u64,
}

/// Why the start stops.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the history file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "history file {path} is damaged or not a meteord history file, {corrupt}; \
         not starting over it (docs/history.md: move it aside to start empty, or \
         truncate it to the offset to keep the records before it)"
    )]
    Corrupt { path: PathBuf, corrupt: Corrupt },
}

/// Read the file at `path`; a missing file is an empty history.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let corrupt = |corrupt| LoadError::Corrupt {
        path: path.to_path_buf(),
        corrupt,
    };
    let bytes = read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = match bytes {
        Ok(bytes) => bytes,
        // Not ours: refused on its first bytes, not read through.
        Err(head) => {
            return Err(corrupt(format::decode(&head).err().unwrap_or(Corrupt {
                offset: 0,
                reason: "not a meteord history file".to_owned(),
            })));
        }
    };
    let decoded = format::decode(&bytes).map_err(corrupt)?;
    let messages: Vec<Restored> = decoded
        .records
        .iter()
        .map(|r| Restored {
            id: r.id,
            timestamp: r.timestamp,
            channel: Bytes::copy_from_slice(r.channel),
            text: Bytes::copy_from_slice(r.text),
        })
        .collect();
    Ok(Loaded {
        path: path.to_path_buf(),
        max_id: messages.iter().map(|m| m.id).max().unwrap_or(0),
        messages,
        good_len: decoded.good_len,
        torn: decoded.torn,
    })
}

/// The whole file (empty if missing), or `Err` with its first bytes when
/// they are not a history file's header (a foreign file, perhaps a huge
/// one, is not read into memory).
fn read(path: &Path) -> std::io::Result<Result<Vec<u8>, Vec<u8>>> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(Vec::new())),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    (&mut file)
        .take(format::HEADER_LEN as u64)
        .read_to_end(&mut bytes)?;
    if format::decode(&bytes).is_err() {
        return Ok(Err(bytes));
    }
    file.read_to_end(&mut bytes)?;
    Ok(Ok(bytes))
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Messages the histories hold afterwards.
    pub kept: usize,
    pub channels: usize,
}

/// Refill the histories: every message in id order through the same path a
/// publish takes (so a record written twice, before and after a compaction,
/// is stored once), then MaxMessagesPerChannel (applied by every store)
/// and MaxMessageAge (the housekeeping's own rule) as for a running daemon.
pub fn apply(mut loaded: Loaded, state: &State) -> Applied {
    loaded.messages.sort_by_key(|m| m.id);
    // The file holds what the histories held (compaction drops the rest):
    // a resume from before a channel's first record is a gap, since what
    // came before may have been trimmed.
    let mut firsts: std::collections::HashMap<&[u8], u64> = std::collections::HashMap::new();
    for m in &loaded.messages {
        firsts.entry(&m.channel[..]).or_insert(m.id);
    }
    for (channel, first) in firsts {
        state.channels.history_begins_at(channel, first);
    }
    let ctx = state.publish_context();
    for m in loaded.messages {
        let stamped = Stamped {
            id: m.id,
            timestamp: m.timestamp,
            text: m.text,
        };
        // Stale: the same record a second time.
        let _ = state.channels.append(&m.channel[..], stamped, ctx);
    }
    state.channels.housekeep(ctx.now);
    let list = state.channels.list();
    Applied {
        kept: list.iter().map(|c| c.messages).sum(),
        channels: list.len(),
    }
}
