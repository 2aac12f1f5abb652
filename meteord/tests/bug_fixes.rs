//! The original's bugs that lose or corrupt data, fixed on purpose (README,
//! "Correctness fixes of real bugs"): each test shows the fixed behaviour
//! over TCP, so a regression to the original's bytes fails here.

mod support;

use support::Daemon;

#[test]
fn a_message_text_0_is_delivered_as_0_not_as_empty() {
    // Perl's truth test made the original store the text "0" as "".
    let daemon = Daemon::start("text-zero", &[]);
    let mut client = daemon.get("/push/z/xhrinteractive/c");
    daemon.wait_subscribers("c", 1);
    let id = daemon.publish("c", "0");
    client.wait_for(&format!("<script>p({id},\"c\",\"0\");</script>\r\n"));
}

#[test]
fn a_channel_named_0_streams_and_replays() {
    let daemon = Daemon::start("channel-zero", &[]);
    let first = daemon.publish("0", "kept");
    let mut client = daemon.get("/push/z/xhrinteractive/0.h");
    client.wait_for(&format!("<script>p({first},\"0\",\"kept\");</script>\r\n"));
    daemon.wait_subscribers("0", 1);
    let live = daemon.publish("0", "live");
    client.wait_for(&format!("<script>p({live},\"0\",\"live\");</script>\r\n"));
}

#[test]
fn a_poll_does_not_orphan_the_persistent_stream_of_its_hostid() {
    let daemon = Daemon::start("poll-orphan", &[]);
    let mut stream = daemon.get("/push/same/xhrinteractive/c");
    daemon.wait_subscribers("c", 1);
    // A poll of the same hostid is answered and closed...
    let poll = daemon.get("/push/same/simplepoll/c").read_to_close();
    assert!(poll.ends_with("Meteor.clearpoll();\r\n"), "{poll:?}");
    // ...and the stream still gets every message.
    let id = daemon.publish("c", "after the poll");
    stream.wait_for(&format!("p({id},\"c\",\"after the poll\")"));
}

#[test]
fn pings_keep_coming_when_max_message_age_is_2_or_less() {
    let config = "PingInterval 3\nMaxMessageAge 2\nPersist 1\nPingMessage <ping>\n";
    let daemon = Daemon::start_with_config("ping-age", config, &[]);
    let mut client = daemon.get("/push/p/anymode/c");
    // Not just the first one: the timer is re-armed (nothing else is sent,
    // so two pings stand side by side).
    client.wait_for("<ping><ping>");
}
