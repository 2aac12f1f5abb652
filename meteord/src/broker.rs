//! The one seam every publish passes through: the controller's ADDMESSAGE,
//! UDP datagrams, and (later) a cluster link all call [`publish`], so ids,
//! validation, history and counters behave the same whatever the source.

use bytes::Bytes;

use crate::state::State;
use crate::stats::Stats;

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Subscribers can only name `[A-Za-z0-9_\-%]+`, so a message to any
    /// other name could never be delivered.
    #[error("Invalid channel name")]
    InvalidChannel,
}

/// Whether `name` is a channel name a subscriber can ask for.
pub fn valid_channel_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%'))
}

/// Publish `text` on `channel`; returns the message id.
pub fn publish(state: &State, channel: &[u8], text: Bytes) -> Result<u64, PublishError> {
    if !valid_channel_name(channel) {
        return Err(PublishError::InvalidChannel);
    }
    // Checked above: ASCII only.
    let channel = std::str::from_utf8(channel).map_err(|_| PublishError::InvalidChannel)?;
    let message = state
        .channels
        .publish(channel, text, &state.ids, state.publish_context());
    Stats::add(&state.stats.unique_messages, 1);
    Ok(message.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert!(valid_channel_name(b"chat"));
        assert!(valid_channel_name(b"a_b-c%20"));
        assert!(!valid_channel_name(b""));
        assert!(!valid_channel_name(b"a.b"));
        assert!(!valid_channel_name(b"a b"));
        assert!(!valid_channel_name("ch\u{e9}".as_bytes()));
    }
}
