//! The token rule for a WebSocket `subscribe` frame (issue 14): the same
//! rule as for a stream request, with the frame's own `token`.

mod support;

use support::Daemon;
use support::tokens::{ARGS, claims, mint};
use support::websocket::{Ws, message_json};

#[test]
fn a_subscribe_to_a_private_channel_needs_a_token_that_covers_it() {
    let daemon = Daemon::start("ws-token-subscribe", ARGS);
    let mut ws = Ws::open(daemon.sub, "/push/h/websocket/chat");
    daemon.wait_subscribers("chat", 1);

    ws.send_text(r#"{"type":"subscribe","channel":"private-a"}"#);
    assert_eq!(
        ws.next_text(),
        r#"{"type":"error","reason":"token required"}"#
    );
    let wrong = mint(&claims(r#"["private-b"]"#, 600));
    ws.send_text(&format!(
        r#"{{"type":"subscribe","channel":"private-a","token":"{wrong}"}}"#
    ));
    assert_eq!(
        ws.next_text(),
        r#"{"type":"error","reason":"token does not cover the channel"}"#
    );
    // Refused: a message on it now never reaches this client.
    daemon.publish("private-a", "not for you");

    let good = mint(&claims(r#"["private-*"]"#, 600));
    ws.send_text(&format!(
        r#"{{"type":"subscribe","channel":"private-a","token":"{good}"}}"#
    ));
    daemon.wait_subscribers("private-a", 1);
    let id = daemon.publish("private-a", "for you");
    assert_eq!(ws.next_text(), message_json(id, "private-a", "for you"));
}
