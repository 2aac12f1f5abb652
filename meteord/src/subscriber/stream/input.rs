//! A stream carrying out what its client asked ([`Action`]s from the
//! framing's input: a WebSocket subscribe or unsubscribe, a pong or an
//! error reply, its close), through the one writer path; and the single
//! place the subscribe rule is asked, [`allowed_to_join`].

use std::io;

use super::{End, Live, Output};
use crate::channel::Backlog;
use crate::connections::Conn;
use crate::state::State;
use crate::stats::Stats;
use crate::subscriber::framing::Action;
use crate::subscriber::token;

/// Most channels a client may be in on one stream by its own requests:
/// each costs a slot in the channel and a cursor here, so a client cannot
/// grow without bound by subscribing to everything.
pub const MAX_JOINED: usize = 64;

/// Whether this connection may join `channel`, offering `token` (a
/// subscribe frame's own `token`): the token rule of every stream request
/// (subscriber/token.rs), asked for every subscribe a client sends on a
/// running stream, and only here. `Err` holds the one-line reason.
pub fn allowed_to_join(
    state: &State,
    conn: &Conn,
    channel: &str,
    token: Option<&str>,
) -> Result<(), &'static str> {
    let config = state.config();
    let hostid = conn.details.get().map_or("", |d| d.hostid());
    let now = crate::clock::unix_now();
    token::authorize(&config.subscriber_tokens, token, hostid, channel, now).map_err(|refusal| {
        Stats::add(&state.stats.tokens_refused, 1);
        refusal.reason()
    })
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
        let max_name = self.state.config().limits.max_channel_name_length;
        let refusal = if self.subscriptions.contains(channel) {
            Some("already subscribed")
        } else if self.subscriptions.len() >= MAX_JOINED {
            Some("too many channels")
        } else if channel.len() > max_name {
            // MaxChannelNameLength, as for the channels of a request.
            self.state
                .stats
                .limits
                .refused(crate::limits::Limit::ChannelNameLength);
            Some("channel name too long")
        } else {
            allowed_to_join(&self.state, &self.conn, channel, token).err()
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

    /// Without token rules every channel may be joined; with them, a
    /// protected channel needs a token that covers it (the rules
    /// themselves are tested in token.rs and tests/tokens.rs).
    #[test]
    fn a_subscribe_meets_the_token_rule() {
        let open = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = State::new(open, crate::ids::Ids::starting_at(1));
        let conn = Arc::new(Conn::new(1, ConnKind::Subscriber, [127, 0, 0, 1].into(), 0));
        for channel in ["chat", "private", "a-b_c"] {
            assert_eq!(allowed_to_join(&state, &conn, channel, None), Ok(()));
            assert_eq!(allowed_to_join(&state, &conn, channel, Some("bad")), Ok(()));
        }
        let args = [
            "-SubscriberTokenSecret",
            "s3cret",
            "-SubscriberTokenChannels",
            "private-*",
        ];
        let cli = match crate::config::CommandLine::parse(args.map(String::from)) {
            Ok(crate::config::Invocation::Run(cli)) => cli,
            other => panic!("{other:?}"),
        };
        let guarded = crate::config::load_builtin(&cli).unwrap();
        let state = State::new(guarded, crate::ids::Ids::starting_at(1));
        assert_eq!(allowed_to_join(&state, &conn, "chat", None), Ok(()));
        assert!(allowed_to_join(&state, &conn, "private-x", None).is_err());
        assert!(allowed_to_join(&state, &conn, "private-x", Some("bad")).is_err());
        assert_eq!(
            state
                .stats
                .tokens_refused
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }
}
