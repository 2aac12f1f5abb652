//! The single-process broker: ids from an [`IdSource`], taken under the
//! channel lock so every channel's ids increase; the message is stored and
//! its subscribers woken synchronously, so the publish is over before its
//! future is first polled.

use bytes::Bytes;

use super::{Broker, Publish};
use crate::ids::IdSource;
use crate::state::State;
use crate::stats::Stats;

#[derive(Debug)]
pub struct LocalBroker {
    ids: Box<dyn IdSource>,
}

impl LocalBroker {
    pub fn new(ids: impl IdSource + 'static) -> LocalBroker {
        LocalBroker { ids: Box::new(ids) }
    }
}

impl Broker for LocalBroker {
    fn publish<'a>(&'a self, state: &'a State, channel: &'a [u8], text: Bytes) -> Publish<'a> {
        let message = state
            .channels
            .publish(channel, text, &*self.ids, state.publish_context());
        Stats::add(&state.stats.unique_messages, 1);
        Publish::done(Ok(message.id))
    }

    fn next_id(&self) -> u64 {
        self.ids.peek()
    }

    fn save(&self) -> std::io::Result<()> {
        self.ids.save()
    }
}
