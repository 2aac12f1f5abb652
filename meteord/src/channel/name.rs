//! Channel names. Publishers (controller, UDP) may name a channel with any
//! bytes that are not white space, as the original allows: `kanäle`,
//! `~tilde`, even control bytes are stored and listed as sent. Subscribers
//! can only ask for the narrower set [`meteor_proto::channel`] accepts, so
//! a message on any other name is kept but never delivered (as in the
//! original).

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// A channel's name: raw bytes, shared by the channel and its messages.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<[u8]>);

impl ChannelName {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&[u8]> for ChannelName {
    fn from(name: &[u8]) -> ChannelName {
        ChannelName(Arc::from(name))
    }
}

impl From<&str> for ChannelName {
    fn from(name: &str) -> ChannelName {
        ChannelName::from(name.as_bytes())
    }
}

/// The shared bytes: a message and its channel hold the same allocation,
/// so `Arc::ptr_eq` on names tells a channel's messages apart cheaply.
impl std::ops::Deref for ChannelName {
    type Target = Arc<[u8]>;

    fn deref(&self) -> &Arc<[u8]> {
        &self.0
    }
}

impl Borrow<[u8]> for ChannelName {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bytes_ordered_bytewise() {
        let mut names: Vec<ChannelName> = ["~tilde", "kan\u{e4}le", "Z", "a"]
            .into_iter()
            .map(ChannelName::from)
            .collect();
        names.sort();
        let sorted: Vec<&[u8]> = names.iter().map(ChannelName::as_bytes).collect();
        assert_eq!(
            sorted,
            [&b"Z"[..], b"a", "kan\u{e4}le".as_bytes(), b"~tilde"]
        );
    }
}
