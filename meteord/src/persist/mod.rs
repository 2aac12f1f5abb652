//! Durable history (`HistoryFile`, `HistoryFsync`; docs/history.md): every
//! acknowledged publish is appended to one file, which refills the
//! histories at the next start.
//!
//! Split by job:
//! - [`format`]: the file's bytes (header, checksummed records) and the
//!   reader that tells a torn tail from damage; pure, fuzzed.
//! - [`writer`]: the open file: appends, the fsync policy (group commit
//!   for `always`), clearing.
//! - [`broker`]: [`DurableBroker`], the publish seam's wrapper around the
//!   local broker that appends before the reply.
//! - [`restore`]: reading the file at start (before the ports are bound)
//!   and refilling the histories (before the first accept).
//! - [`compaction`]: the background rewrite that keeps the file small.
//!
//! The order `main` uses: [`load`] before binding → (fork, privileges,
//! log) → [`start`], which repairs a torn tail, opens the file for
//! appending, builds the [`State`] around a [`DurableBroker`] and refills
//! the histories → in the runtime, [`compaction::run`].

pub mod broker;
pub mod compaction;
pub mod format;
pub mod restore;
pub mod writer;

use std::sync::Arc;

pub use broker::DurableBroker;
pub use restore::{LoadError, Loaded};
pub use writer::{FsyncPolicy, HistoryLog};

use crate::broker::LocalBroker;
use crate::config::Config;
use crate::ids::Ids;
use crate::state::State;

/// Exit status when the history file stops the start (EX_DATAERR).
pub const EXIT_HISTORY_FILE: u8 = 65;

/// Read the configured history file, if any (before binding).
pub fn load(config: &Config) -> Result<Option<Loaded>, LoadError> {
    config
        .history_file
        .as_deref()
        .map(restore::load)
        .transpose()
}

/// Build the daemon's state: with a history file loaded, publishes go
/// through a [`DurableBroker`], the id sequence continues above every
/// restored id and the histories are refilled. Returns the open file for
/// [`compaction::run`].
pub fn start(
    config: Config,
    ids: Ids,
    loaded: Option<Loaded>,
) -> anyhow::Result<(Arc<State>, Option<Arc<HistoryLog>>)> {
    let Some(loaded) = loaded else {
        return Ok((Arc::new(State::new(config, ids)), None));
    };
    let path = loaded.path.clone();
    if let Some(torn) = loaded.torn {
        tracing::warn!(file = %path.display(), offset = torn.offset, dropped = torn.dropped,
            "history file ended in a record cut short (a crash while writing it): \
             cut off at that offset");
    }
    let log = HistoryLog::open(&path, config.history_fsync, loaded.good_len).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the history file {} for writing: {e}",
            path.display()
        )
    })?;
    if loaded.max_id > 0 {
        ids.observe(loaded.max_id);
    }
    let broker = DurableBroker::new(LocalBroker::new(ids), log.clone());
    let state = Arc::new(State::with_broker(config, Arc::new(broker)));
    let read = loaded.messages.len();
    let applied = restore::apply(loaded, &state);
    tracing::info!(file = %path.display(), read, kept = applied.kept,
        channels = applied.channels, "history restored");
    Ok((state, Some(log)))
}
