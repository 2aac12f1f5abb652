//! The WebSocket mode (issue 12) over real TCP against the real binary:
//! the upgrade's exact bytes, one text frame per JSON event, client
//! requests on the running stream, the limits and every way a stream ends
//! with its close code.

mod support;

use std::time::Duration;

use support::websocket::{
    self as ws, BINARY, CONTINUATION, PING, PONG, TEXT, Ws, message_json, text_frame,
};
use support::{Daemon, contains};

fn error_json(reason: &str) -> String {
    format!(r#"{{"type":"error","reason":"{reason}"}}"#)
}

#[test]
fn the_upgrade_and_events_are_byte_exact() {
    let daemon = Daemon::start("ws-exact", &[]);
    let old = daemon.publish("chat", "before");
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/chat.h");
    let first = client.next_event();
    assert_eq!(first.raw, text_frame(&message_json(old, "chat", "before")));
    let id = daemon.publish("chat", "hello");
    let frame = client.next_event();
    let json = message_json(id, "chat", "hello");
    assert_eq!(frame.raw[..2], [0x81, json.len() as u8]);
    assert_eq!(&frame.raw[2..], json.as_bytes());
    // A long message takes the 16-bit length form.
    let long = "x".repeat(300);
    let id = daemon.publish("chat", &long);
    let frame = client.next_event();
    assert_eq!(&frame.raw[..2], [0x81, 126]);
    assert_eq!(frame.raw, text_frame(&message_json(id, "chat", &long)));
}

#[test]
fn unicode_and_escapes_reach_the_client_as_json() {
    let daemon = Daemon::start("ws-unicode", &[]);
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/chat");
    daemon.wait_subscribers("chat", 1);
    let id = daemon.publish("chat", "Grüße \"x\" \\ 😀 <b>");
    assert_eq!(
        client.next_text(),
        format!(
            r#"{{"type":"message","id":{id},"channel":"chat","text":"Grüße \"x\" \\ 😀 <b>"}}"#
        )
    );
}

#[test]
fn several_channels_in_one_stream_in_id_order() {
    let daemon = Daemon::start("ws-multi", &[]);
    let a = daemon.publish("a", "one");
    let b = daemon.publish("b", "two");
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/a.h/b.h");
    assert_eq!(client.next_text(), message_json(a, "a", "one"));
    assert_eq!(client.next_text(), message_json(b, "b", "two"));
    let c = daemon.publish("b", "three");
    assert_eq!(client.next_text(), message_json(c, "b", "three"));
}

#[test]
fn refused_upgrades_say_why_in_one_line() {
    let daemon = Daemon::start("ws-refused", &[]);
    let plain = Ws::over(
        std::net::TcpStream::connect(daemon.sub).unwrap(),
        b"GET /push/h1/websocket/c HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&plain.head),
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: 78\r\nConnection: close\r\n\r\n"
    );
    let bad_key = ws::upgrade_request("/push/h1/websocket/c").replace(ws::KEY, "short");
    let refused = Ws::over(
        std::net::TcpStream::connect(daemon.sub).unwrap(),
        bad_key.as_bytes(),
    );
    assert!(
        String::from_utf8_lossy(&refused.head).starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{:?}",
        String::from_utf8_lossy(&refused.head)
    );
    let old = ws::upgrade_request("/push/h1/websocket/c").replace("Version: 13", "Version: 8");
    let refused = Ws::over(
        std::net::TcpStream::connect(daemon.sub).unwrap(),
        old.as_bytes(),
    );
    let head = String::from_utf8_lossy(&refused.head).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"),
        "{head}"
    );
    // Nothing was joined by the refusals.
    assert_eq!(
        daemon.controller().command("COUNTSUBSCRIBERS c"),
        "OK 0\r\n"
    );
}

#[test]
fn subscribe_with_since_backtrack_or_live_and_unsubscribe() {
    let daemon = Daemon::start("ws-subscribe", &[]);
    let ids: Vec<u64> = (1..=4)
        .map(|i| daemon.publish("news", &format!("n{i}")))
        .collect();
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/chat");
    client.send_text(&format!(
        r#"{{"type":"subscribe","channel":"news","since":{}}}"#,
        ids[1]
    ));
    assert_eq!(client.next_text(), message_json(ids[2], "news", "n3"));
    assert_eq!(client.next_text(), message_json(ids[3], "news", "n4"));
    client.send_text(r#"{"type":"subscribe","channel":"old","backtrack":2}"#);
    client.send_text(r#"{"type":"subscribe","channel":"news"}"#);
    assert_eq!(client.next_text(), error_json("already subscribed"));
    daemon.wait_subscribers("old", 1);
    let live = daemon.publish("news", "live");
    assert_eq!(client.next_text(), message_json(live, "news", "live"));
    client.send_text(r#"{"type":"unsubscribe","channel":"news"}"#);
    daemon.wait_subscribers("news", 0);
    daemon.publish("news", "not for us");
    let chat = daemon.publish("chat", "still here");
    assert_eq!(client.next_text(), message_json(chat, "chat", "still here"));
    client.send_text(r#"{"type":"unsubscribe","channel":"news"}"#);
    assert_eq!(client.next_text(), error_json("not subscribed"));
    let listed = daemon.controller().command("LISTSUBSCRIBERS");
    assert!(listed.contains("h1 127.0.0.1 "), "{listed}");
}

#[test]
fn backtrack_replays_the_last_n() {
    let daemon = Daemon::start("ws-backtrack", &[]);
    let ids: Vec<u64> = (1..=3)
        .map(|i| daemon.publish("c", &format!("m{i}")))
        .collect();
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/other");
    client.send_text(r#"{"type":"subscribe","channel":"c","backtrack":2}"#);
    assert_eq!(client.next_text(), message_json(ids[1], "c", "m2"));
    assert_eq!(client.next_text(), message_json(ids[2], "c", "m3"));
}

#[test]
fn a_resume_the_history_cannot_serve_gets_a_gap_first() {
    let daemon = Daemon::start("ws-gap", &["-MaxMessagesPerChannel", "2"]);
    let ids: Vec<u64> = (1..=4)
        .map(|i| daemon.publish("c", &format!("m{i}")))
        .collect();
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/other");
    client.send_text(&format!(
        r#"{{"type":"subscribe","channel":"c","since":{}}}"#,
        ids[0]
    ));
    assert_eq!(
        client.next_text(),
        format!(
            r#"{{"type":"gap","channel":"c","requested":{},"oldest":{}}}"#,
            ids[1], ids[2]
        )
    );
    assert_eq!(client.next_text(), message_json(ids[2], "c", "m3"));
    assert_eq!(client.next_text(), message_json(ids[3], "c", "m4"));
    // The same through the URL's .r marker (inclusive, as for every mode).
    let mut by_url = Ws::open(daemon.sub, &format!("/push/h2/websocket/c.r{}", ids[0]));
    assert_eq!(
        by_url.next_text(),
        format!(
            r#"{{"type":"gap","channel":"c","requested":{},"oldest":{}}}"#,
            ids[0], ids[2]
        )
    );
}

#[test]
fn wrong_requests_get_error_replies_and_the_stream_goes_on() {
    let daemon = Daemon::start("ws-errors", &[]);
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/c");
    client.send_text("hello");
    assert_eq!(client.next_text(), error_json("not JSON"));
    client.send_text(r#"{"type":"publish","channel":"c"}"#);
    assert_eq!(client.next_text(), error_json(r#"unknown \"type\""#));
    client.send_text(r#"{"type":"subscribe","channel":"a b"}"#);
    assert_eq!(client.next_text(), error_json("invalid channel name"));
    client.send_frame(true, BINARY, b"\x00\x01", true);
    assert_eq!(
        client.next_text(),
        error_json("binary messages are not understood: send JSON text")
    );
    // A request in fragments is one message.
    client.send_frame(false, TEXT, br#"{"type":"subscribe","#, true);
    client.send_frame(true, CONTINUATION, br#""channel":"d"}"#, true);
    daemon.wait_subscribers("d", 1);
    let id = daemon.publish("c", "ok");
    assert_eq!(client.next_text(), message_json(id, "c", "ok"));
}

#[test]
fn pings_are_answered_and_closes_echoed() {
    let daemon = Daemon::start("ws-client-control", &[]);
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/c");
    client.send_frame(true, PING, b"abc", true);
    let pong = client.next_event();
    assert_eq!(pong.raw, b"\x8a\x03abc");
    client.send_frame(true, ws::CLOSE, b"\x03\xe8", true);
    assert_eq!(client.expect_close(), (1000, String::new()));
    daemon.wait_subscribers("c", 0);
}

#[test]
fn unmasked_frames_are_a_protocol_error() {
    let daemon = Daemon::start("ws-unmasked", &[]);
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/c");
    client.send_frame(true, TEXT, br#"{"type":"subscribe","channel":"x"}"#, false);
    assert_eq!(
        client.expect_close(),
        (1002, "client frames must be masked".to_string())
    );
}

#[test]
fn a_message_over_the_limit_is_closed_1009() {
    let daemon = Daemon::start("ws-big", &["-WebSocketMaxMessage", "1000"]);
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/c");
    client.send_frame(true, TEXT, &[b' '; 1001], true);
    assert_eq!(client.expect_close(), (1009, "message too big".to_string()));
    let mut fragments = Ws::open(daemon.sub, "/push/h2/websocket/c");
    fragments.send_frame(false, TEXT, &[b' '; 600], true);
    fragments.send_frame(true, CONTINUATION, &[b' '; 600], true);
    assert_eq!(
        fragments.expect_close(),
        (1009, "message too big".to_string())
    );
}

#[test]
fn a_flood_is_closed_1008() {
    let daemon = Daemon::start("ws-flood", &["-WebSocketMaxRate", "5"]);
    let mut client = Ws::open(daemon.sub, "/push/h1/websocket/c");
    for _ in 0..20 {
        client.send_frame(true, PONG, b"", true);
    }
    assert_eq!(client.expect_close(), (1008, "too many frames".to_string()));
}

#[test]
fn pings_every_interval_and_no_pong_closes() {
    let daemon = Daemon::start("ws-ping", &["-PingInterval", "3"]);
    let mut answering = Ws::open(daemon.sub, "/push/a/websocket/c");
    let mut silent = Ws::open(daemon.sub, "/push/s/websocket/c");
    let ping = answering.next_frame();
    assert_eq!(ping.raw, b"\x89\x00");
    answering.send_frame(true, PONG, b"", true);
    assert_eq!(silent.next_frame().raw, b"\x89\x00");
    // The silent one's pong is due by its next ping: it is closed then.
    assert_eq!(silent.expect_close(), (1008, "no pong".to_string()));
    let ping = answering.next_frame();
    assert_eq!(ping.raw, b"\x89\x00", "the answering one goes on");
    answering.send_frame(true, PONG, b"", true);
    let id = daemon.publish("c", "alive");
    assert_eq!(answering.next_text(), message_json(id, "c", "alive"));
}

#[test]
fn hostid_takeover_and_disconnect_close_4001_and_4002() {
    let daemon = Daemon::start("ws-hostid", &[]);
    let mut first = Ws::open(daemon.sub, "/push/same/websocket/c");
    daemon.wait_subscribers("c", 1);
    let mut second = Ws::open(daemon.sub, "/push/same/websocket/c");
    assert_eq!(
        first.expect_close(),
        (4001, "replaced by a newer connection".to_string())
    );
    let mut client = daemon.get("/disconnect/same");
    client.read_to_close();
    assert_eq!(second.expect_close(), (4002, "disconnected".to_string()));
}

#[test]
fn max_time_closes_1000() {
    let daemon = Daemon::start("ws-maxtime", &["-MaxTime", "2"]);
    let mut client = Ws::open(daemon.sub, "/push/h/websocket/c");
    assert_eq!(client.expect_close(), (1000, "MaxTime".to_string()));
}

#[test]
fn sigterm_closes_1001_and_sighup_keeps_streams() {
    let mut daemon = Daemon::start("ws-signals", &[]);
    let mut client = Ws::open(daemon.sub, "/push/h/websocket/c");
    daemon.wait_subscribers("c", 1);
    daemon.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    let id = daemon.publish("c", "after reload");
    assert_eq!(client.next_text(), message_json(id, "c", "after reload"));
    let listed = daemon.controller().command("LISTCONNECTIONS");
    assert!(
        listed.contains("127.0.0.1 Meteor::Subscriber h\r\n"),
        "{listed}"
    );
    let stats = daemon.controller().command("SHOWSTATS");
    assert!(stats.contains("current_subscribers: 1\r\n"), "{stats}");
    // SIGTERM; the close frame waits in the socket for the client.
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(
        client.expect_close(),
        (1001, "server shutting down".to_string())
    );
}

/// Connect with a tiny receive buffer and never read until told: the
/// daemon's writes to it block.
fn stalled(daemon: &Daemon, path: &str) -> Ws {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&daemon.sub.into()).unwrap();
    Ws::over(socket.into(), ws::upgrade_request(path).as_bytes())
}

#[test]
fn a_reader_that_falls_out_of_the_history_is_closed_4000_and_resumes_with_since() {
    let daemon = Daemon::start("ws-lagged", &["-MaxMessagesPerChannel", "5"]);
    let mut slow = stalled(&daemon, "/push/slow/websocket/load");
    daemon.wait_subscribers("load", 1);
    let big = "x".repeat(16 * 1024);
    let mut ctl = daemon.controller();
    let ids: Vec<u64> = (0..400).map(|_| ctl.publish("load", &big)).collect();
    // Past the live grace, the next publish trims the history past the
    // stalled reader's cursor.
    std::thread::sleep(Duration::from_millis(5_500));
    let after = daemon.publish("load", "after");
    let mut last_seen = 0;
    let close = loop {
        let frame = slow.next_event();
        if frame.opcode == ws::CLOSE {
            break frame.close();
        }
        let text = frame.text();
        let id: u64 = text
            .strip_prefix(r#"{"type":"message","id":"#)
            .and_then(|rest| rest.split(',').next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{text:.80}"));
        assert!(id > last_seen, "in order, nothing twice");
        last_seen = id;
    };
    assert_eq!(close, (4000, "lagged: resume with since".to_string()));
    assert!(last_seen < after, "it resumes instead");
    // The resume: a gap for what the history lost, then the rest.
    let mut resumed = Ws::open(daemon.sub, "/push/slow/websocket/other");
    resumed.send_text(&format!(
        r#"{{"type":"subscribe","channel":"load","since":{last_seen}}}"#
    ));
    let gap = resumed.next_text();
    assert!(
        gap.starts_with(&format!(
            r#"{{"type":"gap","channel":"load","requested":{},"oldest":"#,
            last_seen + 1
        )),
        "{gap}"
    );
    let mut last = 0;
    while last != after {
        let text = resumed.next_text();
        assert!(
            contains(text.as_bytes(), b"\"channel\":\"load\""),
            "{text:.80}"
        );
        last = text
            .strip_prefix(r#"{"type":"message","id":"#)
            .and_then(|rest| rest.split(',').next())
            .and_then(|id| id.parse().ok())
            .unwrap();
    }
    assert!(ids.last().is_some_and(|&l| l < after));
}

#[test]
fn a_subscribe_meets_max_channel_name_length() {
    let daemon = Daemon::start("ws-name-length", &["-MaxChannelNameLength", "8"]);
    let mut ws = Ws::open(daemon.sub, "/push/h/websocket/chat");
    daemon.wait_subscribers("chat", 1);
    ws.send_text(r#"{"type":"subscribe","channel":"ninechars"}"#);
    assert_eq!(ws.next_text(), error_json("channel name too long"));
    ws.send_text(r#"{"type":"subscribe","channel":"eight888"}"#);
    daemon.wait_subscribers("eight888", 1);
    let id = daemon.publish("eight888", "ok");
    assert_eq!(ws.next_text(), message_json(id, "eight888", "ok"));
}
