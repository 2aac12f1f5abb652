//! The single-process broker: ids from an [`IdSource`], taken under the
//! channel lock so every channel's ids increase; the message is stored,
//! written by the publisher to the subscribers caught up on the channel
//! and the others woken, synchronously, so the publish is over before its
//! future is first polled.

use std::sync::Arc;

use bytes::Bytes;

use super::{Broker, Publish};
use crate::channel::{Direct, Message};
use crate::ids::IdSource;
use crate::state::State;
use crate::stats::Stats;
use crate::subscriber::stream::write_direct;

#[derive(Debug)]
pub struct LocalBroker {
    ids: Box<dyn IdSource>,
}

impl LocalBroker {
    pub fn new(ids: impl IdSource + 'static) -> LocalBroker {
        LocalBroker { ids: Box::new(ids) }
    }
}

impl LocalBroker {
    /// The whole local publish: id, history, deliveries, counter. A broker
    /// wrapped around this one (the history file's) writes the message
    /// down afterwards.
    pub fn store(&self, state: &State, channel: &[u8], text: Bytes) -> Arc<Message> {
        let mut direct = Direct::default();
        let message = state.channels.publish_direct(
            channel,
            text,
            &*self.ids,
            state.publish_context(),
            &mut direct,
        );
        Stats::add(&state.stats.unique_messages, 1);
        write_direct(state, &message, &mut direct);
        message
    }
}

impl Broker for LocalBroker {
    fn publish<'a>(&'a self, state: &'a State, channel: &'a [u8], text: Bytes) -> Publish<'a> {
        Publish::done(Ok(self.store(state, channel, text).id))
    }

    fn next_id(&self) -> u64 {
        self.ids.peek()
    }

    fn save(&self) -> std::io::Result<()> {
        self.ids.save()
    }
}
