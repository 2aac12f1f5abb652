//! The one seam every publish passes through: the controller's ADDMESSAGE,
//! UDP datagrams, and (later) a cluster link all call [`publish`], so ids,
//! history and counters behave the same whatever the source.
//!
//! A channel name is whatever bytes the publisher sent (the command grammar
//! already made sure it is non-empty and has no white space); the original
//! stores messages on any such name, and so do we.

use bytes::Bytes;

use crate::state::State;
use crate::stats::Stats;

/// Publish `text` on `channel`; returns the message id.
pub fn publish(state: &State, channel: &[u8], text: Bytes) -> u64 {
    let message = state
        .channels
        .publish(channel, text, &state.ids, state.publish_context());
    Stats::add(&state.stats.unique_messages, 1);
    message.id
}
