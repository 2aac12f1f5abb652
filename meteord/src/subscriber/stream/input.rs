//! A stream carrying out what its client asked ([`Action`]s from the
//! framing's input: a WebSocket subscribe or unsubscribe, a pong or an
//! error reply, its close), through the one writer path; and the single
//! place the subscribe rule is asked, [`allowed_to_join`].

use std::io;

use super::{End, Live, Output};
use crate::channel::Backlog;
use crate::connections::Conn;
use crate::state::State;
use crate::subscriber::framing::Action;

/// Most channels a client may be in on one stream by its own requests:
/// each costs a slot in the channel and a cursor here, so a client cannot
/// grow without bound by subscribing to everything.
pub const MAX_JOINED: usize = 64;

/// Whether this connection may join `channel`, offering `token`. Every
/// subscribe a client sends on a running stream is asked here, and only
/// here. Today everyone may; the token rule (subscriber/token.rs) goes
/// here.
pub fn allowed_to_join(state: &State, conn: &Conn, channel: &str, token: Option<&str>) -> bool {
    let _ = (state, conn, channel, token);
    true
}

impl Live {
    /// Carry out what the client's input asked, in order, with one write;
    /// `Some(End::Done)` when that ended the stream.
    pub(super) async fn act_on_input(&mut self) -> io::Result<Option<End>> {
        let mut state = self.take_input();
        let actions = state.take_actions();
        self.put_input(state);
        if actions.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut sent = 0;
        let mut ending = None;
        for action in actions {
            match action {
                Action::Reply(bytes) => out.extend_from_slice(&bytes),
                Action::Join {
                    channel,
                    backlog,
                    token,
                } => sent += self.join_asked(&channel, backlog, token.as_deref(), &mut out),
                Action::Leave { channel } => match self.subscriptions.remove(&channel) {
                    Some(subscription) => self.state.channels.unsubscribe(subscription),
                    None => self.progress.framing().error(&mut out, "not subscribed"),
                },
                Action::End(end) => {
                    ending = Some(end);
                    break;
                }
            }
        }
        let ending = ending.or(if sent > 0 {
            self.progress.finished()
        } else {
            None
        });
        if out.is_empty() && ending.is_none() {
            return Ok(None);
        }
        self.deliver(Output::Owned(out), sent, ending).await?;
        Ok(ending.map(|_| End::Done))
    }

    /// Join `channel` as the client asked: its gap and backlog are
    /// appended to `out` (returns how many messages), or the error reply.
    fn join_asked(
        &mut self,
        channel: &str,
        backlog: Backlog,
        token: Option<&str>,
        out: &mut Vec<u8>,
    ) -> usize {
        let refusal = if self.subscriptions.contains(channel) {
            Some("already subscribed")
        } else if self.subscriptions.len() >= MAX_JOINED {
            Some("too many channels")
        } else if !allowed_to_join(&self.state, &self.conn, channel, token) {
            Some("not allowed")
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.progress.framing().error(out, reason);
            return 0;
        }
        let mut replay = Vec::new();
        self.join(channel, backlog, &mut replay, out);
        self.progress.append(out, &replay, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connections::ConnKind;

    /// The rule's call point exists and, until the token rule is wired
    /// in, allows every channel with or without a token.
    #[test]
    fn everyone_may_join_until_the_token_rule_is_wired() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = State::new(config, crate::ids::Ids::starting_at(1));
        let conn = Arc::new(Conn::new(1, ConnKind::Subscriber, [127, 0, 0, 1].into(), 0));
        for channel in ["chat", "private", "a-b_c"] {
            assert!(allowed_to_join(&state, &conn, channel, None));
            assert!(allowed_to_join(&state, &conn, channel, Some("bad")));
        }
    }
}
