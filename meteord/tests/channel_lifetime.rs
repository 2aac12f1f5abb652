//! When channels come and go, as in the original (issue 10): a poll
//! creates its channel and leaves it listed as `name(0/0)`; a streaming
//! subscriber leaving a channel without messages frees it at once; SIGUSR1
//! empties every channel and removes those without a streaming
//! subscriber. The periodic sweep that removes `name(0/0)` channels (every
//! 60 s, as the original) is pinned under paused time in `server.rs`
//! (`housekeeping_frees_polled_channels_every_interval`): the original has
//! no parameter for its interval, so neither do we.

mod support;

use support::Daemon;
use support::controller::{Raw, wait_reply};

fn poll(daemon: &Daemon, path: &str) -> String {
    let mut client = daemon.get(path);
    client.read_to_close();
    client.body()
}

#[test]
fn a_poll_creates_its_channel_and_leaves_it_listed_empty() {
    let daemon = Daemon::start("cl-poll", &[]);
    assert_eq!(
        poll(&daemon, "/push/p/simplepoll/fresh"),
        "Meteor.clearpoll();\r\n"
    );
    let mut ctl = Raw::connect(daemon.ctl);
    ctl.expect(b"LISTCHANNELS\n", b"OK\r\nfresh(0/0)\r\n--EOT--\r\n");
    ctl.expect(b"COUNTSUBSCRIBERS fresh\n", b"OK 0\r\n");
    // Every Persist 0 mode is a poll; the channels stay listed.
    poll(&daemon, "/push/p/smartpoll/other.h");
    let mut ctl = Raw::connect(daemon.ctl);
    ctl.expect(
        b"LISTCHANNELS\n",
        b"OK\r\nfresh(0/0)\r\nother(0/0)\r\n--EOT--\r\n",
    );
}

#[test]
fn the_last_streaming_subscriber_leaving_frees_a_channel_without_messages() {
    let daemon = Daemon::start("cl-stream", &[]);
    let empty = daemon.get("/push/a/xhrinteractive/empty");
    let kept = daemon.get("/push/b/xhrinteractive/kept");
    daemon.wait_subscribers("empty", 1);
    daemon.wait_subscribers("kept", 1);
    daemon.publish("kept", "m");
    wait_reply(
        daemon.ctl,
        b"LISTCHANNELS\n",
        b"OK\r\nempty(0/1)\r\nkept(1/1)\r\n--EOT--\r\n",
    );
    drop(empty);
    drop(kept);
    // The empty channel goes at once; the one holding a message stays
    // until its message ages out.
    wait_reply(
        daemon.ctl,
        b"LISTCHANNELS\n",
        b"OK\r\nkept(1/0)\r\n--EOT--\r\n",
    );
}

#[test]
fn sigusr1_empties_every_channel_and_removes_those_without_subscribers() {
    let daemon = Daemon::start("cl-usr1", &[]);
    daemon.publish("lonely", "a");
    daemon.publish("watched", "b");
    poll(&daemon, "/push/p/simplepoll/polled");
    let mut stream = daemon.get("/push/s/xhrinteractive/watched");
    daemon.wait_subscribers("watched", 1);
    wait_reply(
        daemon.ctl,
        b"LISTCHANNELS\n",
        b"OK\r\nlonely(1/0)\r\npolled(0/0)\r\nwatched(1/1)\r\n--EOT--\r\n",
    );
    daemon.signal("USR1");
    wait_reply(
        daemon.ctl,
        b"LISTCHANNELS\n",
        b"OK\r\nwatched(0/1)\r\n--EOT--\r\n",
    );
    // Ids go on; the subscriber still gets what comes next.
    assert_eq!(daemon.publish("watched", "c"), 3);
    stream.wait_for("p(3,\"watched\",\"c\")");
    assert_eq!(
        poll(&daemon, "/push/p/simplepoll/lonely.h"),
        "Meteor.clearpoll();\r\n",
        "the cleared channel starts empty"
    );
}
