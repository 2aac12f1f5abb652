//! The WebSocket framing's client input (meteord/src/subscriber/framing/
//! websocket/): the bytes a client sends after the 101, cut into reads of
//! a size the first byte picks, through `Framing::input` as a running
//! stream feeds them, and the actions it asks for taken after each read.
//! Whatever the bytes: no panic, a Join only for a valid channel name, a
//! Reply only as a whole unmasked server frame, and nothing after an End.
//! The first byte's top bit instead sends the rest to the upgrade check.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meteord::config::{CommandLine, load_builtin};
use meteord::subscriber::framing::websocket::Handshake;
use meteord::subscriber::framing::{Action, Framing, Input, InputState};

fn framing() -> &'static Framing {
    static FRAMING: OnceLock<Framing> = OnceLock::new();
    FRAMING.get_or_init(|| {
        let config = load_builtin(&CommandLine::default()).expect("the built-in configuration");
        Framing::compile("websocket", &config)
    })
}

/// A server frame: FIN, an opcode, no mask, and exactly its payload.
fn is_whole_server_frame(bytes: &[u8]) -> bool {
    let [first, second, rest @ ..] = bytes else {
        return false;
    };
    if first & 0x80 == 0 || second & 0x80 != 0 {
        return false;
    }
    let (len, body) = match second & 0x7f {
        126 if rest.len() >= 2 => (usize::from(u16::from_be_bytes([rest[0], rest[1]])), &rest[2..]),
        127 if rest.len() >= 8 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&rest[..8]);
            (usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX), &rest[8..])
        }
        126 | 127 => return false,
        n => (usize::from(n), rest),
    };
    body.len() >= len
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first & 0x80 != 0 {
        let _: Handshake = meteord::subscriber::framing::websocket::check_upgrade(rest);
        return;
    }
    let framing = framing();
    let mut state = InputState::default();
    let read = usize::from(first & 0x3f) + 1;
    let mut ended = false;
    for (i, piece) in rest.chunks(read).enumerate() {
        assert!(!ended, "input after the stream ended");
        // A second's worth of reads at a time: the rate limit is met too.
        let now = 1_000 + (i / 8) as u64;
        match framing.input(piece, &mut state, now) {
            Input::Continue => {}
            Input::Close => break,
            Input::Respond => {
                for action in state.take_actions() {
                    match action {
                        Action::Join { channel, .. } => {
                            assert!(meteor_proto::channel::valid_channel_name(channel.as_bytes()), "{channel:?}");
                        }
                        Action::Reply(bytes) => assert!(is_whole_server_frame(&bytes), "{bytes:?}"),
                        Action::Leave { .. } => {}
                        Action::End(_) => ended = true,
                    }
                }
            }
        }
        if ended {
            break;
        }
    }
});
