//! Reading a WebSocket client, pure: bytes in, [`Action`]s out. Frames are
//! checked ([`super::frame::parse_head`]), counted against the rate,
//! unmasked, reassembled when fragmented, and turned into what the stream
//! must do: join or leave a channel, write a reply (pong, error), or end
//! with a close frame.
//!
//! Memory: an idle WebSocket keeps one `u32` of reading state (the
//! [`InputState`] word: a ping awaiting its pong, and this second's frame
//! count). Only while a frame or message is incomplete, or actions wait
//! for the stream, is there a [`Partial`] in a box.

use super::super::{Action, Ending, Input, InputState};
use super::client::{self, Request};
use super::frame::{self, ClientClose};
use super::{Limits, push_text};

/// A ping was sent and no pong came yet.
pub const AWAITING_PONG: u32 = 1 << 31;
/// Bits 0-15: the second (mod 2^16) the frame count is for.
const SECOND_MASK: u32 = 0xffff;
/// Bits 16-30: frames counted in that second.
const COUNT_SHIFT: u32 = 16;
const COUNT_MAX: u32 = (1 << 15) - 1;

/// A client's reading state beyond the word, boxed only while needed.
#[derive(Debug, Default)]
pub struct Partial {
    /// Bytes of a frame not yet complete.
    buf: Vec<u8>,
    /// A fragmented message so far (unmasked), and its opcode.
    message: Vec<u8>,
    fragmented: Option<u8>,
    /// For the stream to carry out, in order.
    pub(in super::super) actions: Vec<Action>,
}

impl Partial {
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
            && self.message.is_empty()
            && self.fragmented.is_none()
            && self.actions.is_empty()
    }
}

/// Count one frame at `now`; false when it is over `max_rate` this second.
fn count_frame(word: &mut u32, now: u64, max_rate: u64) -> bool {
    let second = (now as u32) & SECOND_MASK;
    let count = if *word & SECOND_MASK == second {
        ((*word >> COUNT_SHIFT) & COUNT_MAX) + 1
    } else {
        1
    };
    let count = count.min(COUNT_MAX);
    *word = (*word & AWAITING_PONG) | (count << COUNT_SHIFT) | second;
    u64::from(count) <= max_rate
}

/// Read `bytes` from the client at `now` (seconds).
pub fn input(limits: &Limits, bytes: &[u8], state: &mut InputState, now: u64) -> Input {
    // What an idle client sends is a pong every PingInterval: taken here
    // without a box, so thousands of them cost no allocation.
    let bytes = match state.partial {
        None => &bytes[pongs_at_start(limits, bytes, state, now)..],
        Some(_) => bytes,
    };
    if bytes.is_empty() && state.partial.is_none() {
        return Input::Continue;
    }
    let partial = state.partial.get_or_insert_with(Box::default);
    let Partial {
        buf,
        message,
        fragmented,
        actions,
    } = &mut **partial;
    buf.extend_from_slice(bytes);
    let mut at = 0;
    let closed = loop {
        let head = match frame::parse_head(&buf[at..], limits.max_message) {
            Err(close) => break Some(close),
            Ok(None) => break None,
            Ok(Some(head)) if buf.len() - at < head.frame_len() => break None,
            Ok(Some(head)) => head,
        };
        if !count_frame(&mut state.word, now, limits.max_rate) {
            break Some(ClientClose::TooManyFrames);
        }
        let payload = &mut buf[at + head.head_len..at + head.frame_len()];
        at += head.frame_len();
        frame::unmask(payload, head.mask);
        let payload = &*payload;
        let done = match head.opcode {
            frame::OP_PING => {
                let mut pong = Vec::with_capacity(2 + payload.len());
                frame::push_frame(&mut pong, frame::OP_PONG, payload);
                actions.push(Action::Reply(pong));
                None
            }
            frame::OP_PONG => {
                state.word &= !AWAITING_PONG;
                None
            }
            frame::OP_CLOSE => Some(answer_close(payload)),
            frame::OP_CONTINUATION => match *fragmented {
                None => Some(ClientClose::NothingToContinue),
                Some(_) if message.len() + payload.len() > limits.max_message => {
                    Some(ClientClose::TooBig)
                }
                Some(opcode) => {
                    message.extend_from_slice(payload);
                    if head.fin {
                        *fragmented = None;
                        let whole = std::mem::take(message);
                        on_message(opcode, &whole, actions)
                    } else {
                        None
                    }
                }
            },
            _ if fragmented.is_some() => Some(ClientClose::NestedMessage),
            opcode if head.fin => on_message(opcode, payload, actions),
            opcode => {
                *fragmented = Some(opcode);
                message.extend_from_slice(payload);
                None
            }
        };
        if let Some(close) = done {
            break Some(close);
        }
    };
    match closed {
        Some(close) => {
            // Nothing after the close is read.
            buf.clear();
            message.clear();
            *fragmented = None;
            actions.push(Action::End(Ending::Client(close)));
        }
        None => {
            buf.drain(..at);
        }
    }
    let respond = !actions.is_empty();
    state.settle();
    if respond {
        Input::Respond
    } else {
        Input::Continue
    }
}

/// How many bytes at the start of `bytes` are whole, valid pongs within
/// the rate (each counted, and clearing the wait); the rest goes the
/// general way.
fn pongs_at_start(limits: &Limits, bytes: &[u8], state: &mut InputState, now: u64) -> usize {
    let mut at = 0;
    while let Ok(Some(head)) = frame::parse_head(&bytes[at..], limits.max_message) {
        if head.opcode != frame::OP_PONG || !head.fin || bytes.len() - at < head.frame_len() {
            break;
        }
        let mut word = state.word;
        if !count_frame(&mut word, now, limits.max_rate) {
            break;
        }
        state.word = word & !AWAITING_PONG;
        at += head.frame_len();
    }
    at
}

/// A complete message: a request, or the error reply it deserves.
fn on_message(opcode: u8, payload: &[u8], actions: &mut Vec<Action>) -> Option<ClientClose> {
    if opcode != frame::OP_TEXT {
        actions.push(error("binary messages are not understood: send JSON text"));
        return None;
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return Some(ClientClose::TextNotUtf8);
    };
    match client::parse(text) {
        Ok(Request::Subscribe {
            channel,
            backlog,
            token,
        }) => actions.push(Action::Join {
            channel,
            backlog,
            token,
        }),
        Ok(Request::Unsubscribe { channel }) => actions.push(Action::Leave { channel }),
        Err(reason) => actions.push(error(reason)),
    }
    None
}

/// The error reply for `reason`, as a text frame.
pub fn error(reason: &str) -> Action {
    let mut json = Vec::new();
    client::push_error(&mut json, reason);
    let mut out = Vec::with_capacity(json.len() + 4);
    push_text(&mut out, &json);
    Action::Reply(out)
}

/// The close a client's close frame gets: its own code echoed (1000 when
/// it gave none), or 1002/1007 for a malformed one.
fn answer_close(payload: &[u8]) -> ClientClose {
    match payload {
        [] => ClientClose::Echo(1000),
        [_] => ClientClose::BadCloseFrame,
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !frame::valid_close_code(code) {
                ClientClose::BadCloseCode
            } else if std::str::from_utf8(reason).is_err() {
                ClientClose::CloseReasonNotUtf8
            } else {
                ClientClose::Echo(code)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{
        OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, unmask,
    };
    use super::*;
    use crate::channel::Backlog;
    use frame::{INVALID_DATA, POLICY, PROTOCOL_ERROR, TOO_BIG};

    const LIMITS: Limits = Limits {
        max_message: 100,
        max_rate: 5,
    };

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![u8::from(fin) << 7 | opcode];
        assert!(payload.len() < 126);
        out.push(0x80 | payload.len() as u8);
        out.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        unmask(&mut body, mask);
        out.extend_from_slice(&body);
        out
    }

    fn read(state: &mut InputState, bytes: &[u8], now: u64) -> (Input, Vec<Action>) {
        let input = input(&LIMITS, bytes, state, now);
        (input, state.take_actions())
    }

    fn join(channel: &str, backlog: Backlog) -> Action {
        Action::Join {
            channel: channel.into(),
            backlog,
            token: None,
        }
    }

    fn ended(code: u16) -> impl Fn(&Action) -> bool {
        move |a| matches!(a, Action::End(Ending::Client(c)) if c.frame().code == code)
    }

    #[test]
    fn an_idle_reader_holds_no_box() {
        let mut state = InputState::default();
        let (input, actions) = read(&mut state, &frame(true, OP_PONG, b""), 1);
        assert_eq!((input, actions.len()), (Input::Continue, 0));
        assert!(state.partial.is_none());
    }

    #[test]
    fn requests_split_anywhere_are_read_whole() {
        let text = br#"{"type":"subscribe","channel":"c","since":4}"#;
        let mut bytes = frame(false, OP_TEXT, &text[..10]);
        bytes.extend(frame(true, OP_CONTINUATION, &text[10..]));
        bytes.extend(frame(true, OP_PING, b"hi"));
        let mut state = InputState::default();
        let mut all = Vec::new();
        for chunk in bytes.chunks(3) {
            all.extend(read(&mut state, chunk, 1).1);
        }
        assert!(state.partial.is_none(), "nothing left once all is read");
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0], join("c", Backlog::After(4)));
        assert_eq!(all[1], Action::Reply(b"\x8a\x02hi".to_vec()));
    }

    #[test]
    fn a_pong_split_across_reads_still_counts() {
        let mut state = InputState::default();
        state.word |= AWAITING_PONG;
        let pong = frame(true, OP_PONG, b"x");
        read(&mut state, &pong[..3], 1);
        assert!(state.partial.is_some(), "held while incomplete");
        read(&mut state, &pong[3..], 1);
        assert_eq!(state.word & AWAITING_PONG, 0);
        assert!(state.partial.is_none());
    }

    #[test]
    fn pongs_clear_the_wait() {
        let mut state = InputState::default();
        state.word |= AWAITING_PONG;
        read(&mut state, &frame(true, OP_PONG, b""), 1);
        assert_eq!(state.word & AWAITING_PONG, 0);
    }

    #[test]
    fn bad_input_is_an_error_reply_not_a_close() {
        let mut state = InputState::default();
        let (input, actions) = read(&mut state, &frame(true, OP_TEXT, b"{\"type\":\"x\"}"), 1);
        assert_eq!(input, Input::Respond);
        assert_eq!(
            actions,
            [Action::Reply(
                b"\x81\x2c{\"type\":\"error\",\"reason\":\"unknown \\\"type\\\"\"}".to_vec()
            )]
        );
        let (_, actions) = read(&mut state, &frame(true, OP_BINARY, b"x"), 2);
        assert!(matches!(&actions[..], [Action::Reply(_)]), "{actions:?}");
    }

    #[test]
    fn closes_and_their_codes() {
        let cases: [(Vec<u8>, u16); 7] = [
            (frame(true, OP_CLOSE, b"\x03\xe8bye"), 1000),
            (frame(true, OP_CLOSE, b"\x0f\xa0"), 4000),
            (frame(true, OP_CLOSE, b""), 1000),
            (frame(true, OP_CLOSE, b"\x03\xed"), PROTOCOL_ERROR),
            (frame(true, OP_TEXT, b"\xff"), INVALID_DATA),
            (frame(true, OP_CONTINUATION, b"x"), PROTOCOL_ERROR),
            (b"\x81\x05hello".to_vec(), PROTOCOL_ERROR),
        ];
        for (bytes, code) in cases {
            let mut state = InputState::default();
            let (input, actions) = read(&mut state, &bytes, 1);
            assert_eq!(input, Input::Respond);
            assert!(actions.iter().any(ended(code)), "{code}: {actions:?}");
        }
        let mut state = InputState::default();
        let mut two = frame(false, OP_TEXT, b"a");
        two.extend(frame(true, OP_TEXT, b"b"));
        let (_, actions) = read(&mut state, &two, 1);
        assert!(actions.iter().any(ended(PROTOCOL_ERROR)), "{actions:?}");
    }

    #[test]
    fn too_big_alone_or_in_fragments() {
        let mut state = InputState::default();
        let head = [0x81, 0x80 | 126, 0, 101, 1, 2, 3, 4];
        let (_, actions) = read(&mut state, &head, 1);
        assert!(
            actions.iter().any(ended(TOO_BIG)),
            "refused from the head: {actions:?}"
        );
        let mut state = InputState::default();
        let mut bytes = frame(false, OP_TEXT, &[b'a'; 60]);
        bytes.extend(frame(true, OP_CONTINUATION, &[b'a'; 60]));
        let (_, actions) = read(&mut state, &bytes, 1);
        assert!(actions.iter().any(ended(TOO_BIG)), "{actions:?}");
    }

    #[test]
    fn over_the_rate_is_closed_within_a_second_only() {
        let mut state = InputState::default();
        let pong = frame(true, OP_PONG, b"");
        for _ in 0..5 {
            assert_eq!(read(&mut state, &pong, 7).0, Input::Continue);
        }
        for _ in 0..5 {
            assert_eq!(
                read(&mut state, &pong, 8).0,
                Input::Continue,
                "a new second"
            );
        }
        let (_, actions) = read(&mut state, &pong, 8);
        assert!(actions.iter().any(ended(POLICY)), "{actions:?}");
    }
}
