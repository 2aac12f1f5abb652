//! What one stream has sent against its mode's limits (MaxMessages,
//! CloseOnEvent, Persist) and how a batch of messages becomes the bytes
//! of one write.

use std::sync::Arc;

use bytes::Bytes;

use super::MAX_WRITE;
use crate::channel::Message;
use crate::subscriber::framing::{Ending, Framing};
use crate::subscriber::mode::CompiledMode;

/// Bytes for one write: a single message's shared rendering (no copy), or
/// several messages concatenated.
pub(super) enum Output {
    Shared(Bytes),
    Owned(Vec<u8>),
}

impl Output {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Output::Shared(bytes) => bytes,
            Output::Owned(out) => out,
        }
    }
}

/// Progress of one stream against its mode's limits.
pub(super) struct Progress {
    /// Replaced when SIGHUP brings new templates (see `refresh`).
    pub(super) mode: Arc<CompiledMode>,
    pub(super) sent: u64,
}

impl Progress {
    pub(super) fn framing(&self) -> &Framing {
        &self.mode.framing
    }

    pub(super) fn max_reached(&self) -> bool {
        let max = self.mode.settings.max_messages;
        max > 0 && self.sent >= max
    }

    /// Whether the response ends after what has been sent so far.
    pub(super) fn finished(&self) -> Option<Ending> {
        let settings = &self.mode.settings;
        let done =
            !settings.persist || (settings.close_on_event && self.sent > 0) || self.max_reached();
        done.then_some(Ending::Complete)
    }

    /// Whether the response ends after the backlog, `replayed` messages
    /// long. The original ends it there only for a mode named `longpoll`
    /// (whatever its CloseOnEvent), as `longpoll_by_name` says; CloseOnEvent
    /// itself acts on live messages.
    pub(super) fn finished_after_backlog(
        &self,
        replayed: usize,
        longpoll_by_name: bool,
    ) -> Option<Ending> {
        let done =
            !self.mode.settings.persist || self.max_reached() || (longpoll_by_name && replayed > 0);
        done.then_some(Ending::Complete)
    }

    /// Render the head of `messages` for one write, bounded by
    /// [`MAX_WRITE`] and the mode's limits; returns the bytes and how many
    /// messages they hold.
    pub(super) fn render_batch(&mut self, messages: &[Arc<Message>]) -> (Output, usize) {
        if messages.len() == 1 && !self.max_reached() {
            self.sent += 1;
            return (Output::Shared(self.mode.message_bytes(&messages[0])), 1);
        }
        let mut out = Vec::new();
        let taken = self.append(&mut out, messages, MAX_WRITE);
        (Output::Owned(out), taken)
    }

    /// Append messages (in order) while the mode allows more and `out` is
    /// under `max_bytes` (at least one is always taken); returns how many.
    pub(super) fn append(
        &mut self,
        out: &mut Vec<u8>,
        messages: &[Arc<Message>],
        max_bytes: usize,
    ) -> usize {
        let mut taken = 0;
        for message in messages {
            if self.max_reached() || (taken > 0 && out.len() >= max_bytes) {
                break;
            }
            out.extend_from_slice(&self.mode.message_bytes(message));
            self.sent += 1;
            taken += 1;
        }
        taken
    }
}
