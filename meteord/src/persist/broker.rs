//! The broker that writes every publish to the history file: the local
//! broker's store (id, history, wake-ups), then an append to the file's
//! buffer, then — for `HistoryFsync always` — a wait for the group commit
//! (which writes the buffer first). Controller and UDP publishes both pass
//! through [`crate::broker::publish`], and both call [`Broker::flush`]
//! before anything is acknowledged, which writes the buffer: the
//! controller before it writes its replies, so one `write(2)` serves all
//! the lines of a pipelined batch.
//!
//! Subscribers may see a message before it is in the file (the store comes
//! first, because the id is taken there under the channel lock); the
//! promise is about the acknowledgement. When the write fails (disk full),
//! no `OK` goes out for the batch: the controller closes the connection
//! instead (with `always`, each publish is answered `ERR history file …`),
//! so a message is never acknowledged without being written.

use std::sync::Arc;

use bytes::Bytes;

use super::format::Record;
use super::writer::{FsyncPolicy, HistoryLog};
use crate::broker::{Broker, BrokerError, LocalBroker, Publish};
use crate::state::State;

#[derive(Debug)]
pub struct DurableBroker {
    local: LocalBroker,
    log: Arc<HistoryLog>,
}

impl DurableBroker {
    pub fn new(local: LocalBroker, log: Arc<HistoryLog>) -> DurableBroker {
        DurableBroker { local, log }
    }
}

impl Broker for DurableBroker {
    fn publish<'a>(&'a self, state: &'a State, channel: &'a [u8], text: Bytes) -> Publish<'a> {
        let message = self.local.store(state, channel, text);
        let text = message.text();
        let record = Record {
            id: message.id,
            timestamp: message.timestamp,
            channel,
            text: &text,
        };
        match self.log.append(&record) {
            Ok(_) if self.log.policy() != FsyncPolicy::Always => Publish::done(Ok(message.id)),
            Ok(seq) => {
                let id = message.id;
                let durable = self.log.durable(seq);
                Publish::waiting(async move {
                    durable.await.map_err(BrokerError::Unavailable)?;
                    Ok(id)
                })
            }
            Err(e) => {
                tracing::error!(file = %self.log.path().display(), error = %e,
                    "cannot append to the history file; publish refused");
                Publish::done(Err(BrokerError::Unavailable(format!(
                    "history file {}: {e}",
                    self.log.path().display()
                ))))
            }
        }
    }

    fn flush(&self) -> std::io::Result<()> {
        self.log.flush()
    }

    fn next_id(&self) -> u64 {
        self.local.next_id()
    }

    fn save(&self) -> std::io::Result<()> {
        let ids = self.local.save();
        self.log.close()?;
        ids
    }

    fn clear(&self, state: &State) {
        if let Err(e) = self.log.clear(|| state.channels.clear_all()) {
            tracing::error!(file = %self.log.path().display(), error = %e,
                "cannot empty the history file; its messages come back at the next start");
        }
    }
}
