//! Publishes of one packet in flight together. A cluster's publish is a
//! round trip to Redis; awaiting each before starting the next held one
//! connection to one round trip per message. Consecutive ADDMESSAGE lines
//! of a packet are therefore started in order (a broker takes ids in the
//! order its publishes are first polled: the Redis broker sends its
//! commands in that order on one connection) and their replies written in
//! that order once all have answered. Any other command waits for them
//! first, so it sees their effect and its reply comes after theirs.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;

use meteor_proto::reply::OkReply;

use crate::broker::{BrokerError, Publish};
use crate::state::State;
use crate::stats::Stats;

/// Publishes started and not yet answered, in line order.
#[derive(Default)]
pub struct Pending<'a> {
    publishes: Vec<(Publish<'a>, Option<Result<u64, BrokerError>>)>,
}

impl<'a> Pending<'a> {
    pub fn push(&mut self, publish: Publish<'a>) {
        self.publishes.push((publish, None));
    }

    /// Drive every publish to its answer (all at once, each polled in line
    /// order), then append their replies in that order.
    pub async fn settle(&mut self, state: &State, out: &mut Vec<u8>) {
        if self.publishes.is_empty() {
            return;
        }
        poll_fn(|cx| {
            let mut waiting = false;
            for (publish, answer) in &mut self.publishes {
                if answer.is_none() {
                    match Pin::new(publish).poll(cx) {
                        Poll::Ready(result) => *answer = Some(result),
                        Poll::Pending => waiting = true,
                    }
                }
            }
            if waiting {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        for (_, answer) in self.publishes.drain(..) {
            match answer {
                Some(Ok(id)) => {
                    Stats::add(&state.stats.controller_messages, 1);
                    out.extend_from_slice(OkReply(id).to_string().as_bytes());
                }
                Some(Err(e)) => out.extend_from_slice(format!("ERR {e}\r\n").as_bytes()),
                None => out.extend_from_slice(b"ERR publish not answered\r\n"),
            }
        }
    }
}
