//! The EventSource mode (issue 12) against the real binary over TCP: the
//! exact bytes of the head and of every event, one id sequence across
//! channels, text as JSON, resumes by `Last-Event-ID` and `lastEventId=`,
//! gap events (evicted, expired, SIGUSR1-cleared, from before a restart),
//! pings, MaxTime, hostid takeover, `/disconnect`, SIGTERM and resume,
//! SIGHUP, the listings, and a slow reader that falls out of the history.

mod support;

use std::time::{Duration, Instant};

use support::eventsource::{HEAD, PING, gap, head_with, ids, message, open, plain, publish_bytes};
use support::{Client, Daemon, WAIT, write_file};

/// Long enough for a wrongly sent extra byte to arrive.
const QUIET: Duration = Duration::from_millis(300);

/// A daemon on the built-in configuration, pings off unless `extra` says.
fn start(name: &str, extra: &[&str]) -> Daemon {
    let mut args = vec!["-PingInterval", "0"];
    args.extend_from_slice(extra);
    Daemon::start(name, &args)
}

/// Wait for `last`, then check nothing else came and the stream is exactly `expected`.
fn assert_stream(client: &mut Client, expected: &str, last: &str) {
    client.wait_for(last);
    client.idle_for(QUIET);
    assert_eq!(client.text(), expected);
}

/// Wait until LISTCHANNELS no longer lists `gone` (a sweep may take a minute).
fn wait_listchannels_without(daemon: &Daemon, gone: &str, within: Duration) {
    let mut ctl = daemon.controller();
    let deadline = Instant::now() + within;
    loop {
        let reply = ctl.command("LISTCHANNELS");
        if !reply.contains(gone) {
            return;
        }
        assert!(Instant::now() < deadline, "still {gone}: {reply:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn head_and_events_are_exact_and_channels_share_one_id_sequence() {
    let daemon = start("es-bytes", &[]);
    let a = daemon.publish("chat", "one");
    let b = daemon.publish("news", "two");
    let c = daemon.publish("chat", "three");
    let mut client = open(daemon.sub, "/push/h/eventsource/news.h/chat.h", &[]);
    daemon.wait_subscribers("chat", 1);
    let d = daemon.publish("news", "four");
    let e = daemon.publish("chat", "five");
    let expected = [
        HEAD.to_string(),
        plain(a, "chat", "one"),
        plain(b, "news", "two"),
        plain(c, "chat", "three"),
        plain(d, "news", "four"),
        plain(e, "chat", "five"),
    ]
    .concat();
    assert_stream(&mut client, &expected, &plain(e, "chat", "five"));
}

#[test]
fn channel_info_has_no_place_in_an_event_stream() {
    let daemon = start("es-chinfo", &["-SendChannelInfo", "1"]);
    let a = daemon.publish("chat", "one");
    let mut client = open(daemon.sub, "/push/h/eventsource/chat.h", &[]);
    let expected = [HEAD.to_string(), plain(a, "chat", "one")].concat();
    assert_stream(&mut client, &expected, &plain(a, "chat", "one"));
}

#[test]
fn text_is_json_unicode_kept_invalid_utf8_replaced() {
    let daemon = start("es-json", &[]);
    let mut client = open(daemon.sub, "/push/h/eventsource/chat", &[]);
    daemon.wait_subscribers("chat", 1);
    let mut ctl = daemon.controller();
    let cases: [(&[u8], &str); 5] = [
        ("ÄΩ 😀 中文".as_bytes(), "\"ÄΩ 😀 中文\""),
        (
            b"bad \xff\xfe end \xe2\x82",
            "\"bad \u{fffd}\u{fffd} end \u{fffd}\"",
        ),
        (br#"say "hi" \ </script>"#, r#""say \"hi\" \\ </script>""#),
        (b"a\tb\x01c\x7f", r#""a\tb\u0001c\u007f""#),
        ("line\u{2028}sep".as_bytes(), r#""line\u2028sep""#),
    ];
    let mut expected = HEAD.to_string();
    let mut last = String::new();
    for (text, json) in cases {
        let id = publish_bytes(&mut ctl, "chat", text);
        last = message(id, "chat", json);
        expected.push_str(&last);
    }
    assert_stream(&mut client, &expected, &last);
}

#[test]
fn last_event_id_and_the_query_resume_every_channel_exclusively() {
    let daemon = start("es-resume", &[]);
    let a = daemon.publish("chat", "a");
    let b = daemon.publish("news", "b");
    let c = daemon.publish("chat", "c");

    // The header overrides both markers: everything after `a`.
    let header = format!("Last-Event-ID: {a}");
    let mut by_header = open(daemon.sub, "/push/h1/eventsource/chat.b1/news", &[&header]);
    let expected = [
        HEAD.to_string(),
        plain(b, "news", "b"),
        plain(c, "chat", "c"),
    ]
    .concat();
    assert_stream(&mut by_header, &expected, &plain(c, "chat", "c"));

    // The query does the same, for the header's name in any case too.
    let path = format!("/push/h2/eventsource/chat/news?x=1&lastEventId={b}");
    let mut by_query = open(daemon.sub, &path, &[]);
    let expected = [HEAD.to_string(), plain(c, "chat", "c")].concat();
    assert_stream(&mut by_query, &expected, &plain(c, "chat", "c"));
    let lower = format!("last-event-id: {b}");
    let mut lower_case = open(daemon.sub, "/push/h3/eventsource/news/chat", &[&lower]);
    assert_stream(&mut lower_case, &expected, &plain(c, "chat", "c"));

    // Garbage is ignored: the markers stand (chat.b1 = the last one).
    let path = "/push/h4/eventsource/chat.b1/news?lastEventId=zz";
    let mut garbage = open(daemon.sub, path, &["Last-Event-ID: 1x"]);
    assert_stream(&mut garbage, &expected, &plain(c, "chat", "c"));

    // Other modes keep their markers, as in the original.
    let mut classic = open(daemon.sub, "/push/h5/xhrinteractive/chat", &[&header]);
    daemon.wait_subscribers("chat", 5);
    assert!(classic.idle_for(QUIET));
    assert!(!classic.text().contains("p("), "{}", classic.text());

    // One live message reaches every stream once, with its id.
    let d = daemon.publish("news", "d");
    for client in [&mut by_header, &mut by_query, &mut lower_case, &mut garbage] {
        client.wait_for(&plain(d, "news", "d"));
        assert_eq!(ids(&client.text()).last(), Some(&d));
    }
}

#[test]
fn a_resume_from_evicted_messages_starts_with_a_gap() {
    let daemon = start("es-evicted", &["-MaxMessagesPerChannel", "2"]);
    daemon.publish("news", "kept");
    let m1 = daemon.publish("chat", "1");
    daemon.publish("chat", "2");
    let m3 = daemon.publish("chat", "3");
    let m4 = daemon.publish("chat", "4");
    let header = format!("Last-Event-ID: {m1}");
    let mut client = open(daemon.sub, "/push/h/eventsource/chat/news", &[&header]);
    let expected = [
        HEAD.to_string(),
        gap("chat", m1 + 1, m3),
        plain(m3, "chat", "3"),
        plain(m4, "chat", "4"),
    ]
    .concat();
    assert_stream(&mut client, &expected, &plain(m4, "chat", "4"));
}

#[test]
fn a_resume_after_sigusr1_cleared_the_history_gets_a_gap() {
    let daemon = start("es-usr1", &[]);
    let m1 = daemon.publish("chat", "1");
    let m2 = daemon.publish("chat", "2");
    daemon.signal("USR1");
    wait_listchannels_without(&daemon, "chat(2/", WAIT);
    let header = format!("Last-Event-ID: {m1}");
    let mut client = open(daemon.sub, "/push/h/eventsource/chat", &[&header]);
    // Empty history: the first id it will get is the next one assigned.
    let expected_head = [HEAD.to_string(), gap("chat", m1 + 1, m2 + 1)].concat();
    assert_stream(&mut client, &expected_head, &gap("chat", m1 + 1, m2 + 1));
    let m3 = daemon.publish("chat", "3");
    assert_eq!(m3, m2 + 1);
    let expected = [expected_head, plain(m3, "chat", "3")].concat();
    assert_stream(&mut client, &expected, &plain(m3, "chat", "3"));
}

/// The housekeeping sweep runs once a minute, so this waits for one.
#[test]
fn a_resume_after_the_messages_expired_gets_a_gap() {
    let daemon = start("es-expired", &["-MaxMessageAge", "0"]);
    let m1 = daemon.publish("chat", "1");
    let m2 = daemon.publish("chat", "2");
    std::thread::sleep(Duration::from_millis(1100));
    wait_listchannels_without(&daemon, "chat(2/", Duration::from_secs(75));
    let header = format!("Last-Event-ID: {m1}");
    let mut client = open(daemon.sub, "/push/h/eventsource/chat", &[&header]);
    let expected = [HEAD.to_string(), gap("chat", m1 + 1, m2 + 1)].concat();
    assert_stream(&mut client, &expected, &gap("chat", m1 + 1, m2 + 1));
}

#[test]
fn sigterm_ends_the_stream_with_nothing_and_a_restart_resumes_losing_nothing() {
    let daemon = start("es-restart", &[]);
    let mut before = open(daemon.sub, "/push/h/eventsource/chat", &[]);
    daemon.wait_subscribers("chat", 1);
    let m1 = daemon.publish("chat", "1");
    let m2 = daemon.publish("chat", "2");
    before.wait_for(&plain(m2, "chat", "2"));
    let daemon = daemon.restart();
    let expected = [
        HEAD.to_string(),
        plain(m1, "chat", "1"),
        plain(m2, "chat", "2"),
    ]
    .concat();
    assert_eq!(before.read_to_close(), expected, "nothing on shutdown");

    // The browser comes back with the last id it got: nothing was lost,
    // so no gap, and the next message is the next id.
    let last = format!("Last-Event-ID: {m2}");
    let mut resumed = open(daemon.sub, "/push/h/eventsource/chat", &[&last]);
    daemon.wait_subscribers("chat", 1);
    let m3 = daemon.publish("chat", "3");
    assert_eq!(m3, m2 + 1, "ids continue across a clean restart");
    let expected = [HEAD.to_string(), plain(m3, "chat", "3")].concat();
    assert_stream(&mut resumed, &expected, &plain(m3, "chat", "3"));

    // One that asks for what only the old process held learns of the gap.
    let older = format!("Last-Event-ID: {m1}");
    let mut lost = open(daemon.sub, "/push/h2/eventsource/chat", &[&older]);
    let expected = [
        HEAD.to_string(),
        gap("chat", m1 + 1, m3),
        plain(m3, "chat", "3"),
    ]
    .concat();
    assert_stream(&mut lost, &expected, &plain(m3, "chat", "3"));
}

#[test]
fn pings_are_comments_every_ping_interval_from_the_command_line() {
    let daemon = Daemon::start("es-ping", &["-PingInterval", "3"]);
    let mut client = open(daemon.sub, "/push/h/eventsource/chat", &[]);
    client.wait_for(PING);
    assert_eq!(client.text(), [HEAD, PING].concat());
    let started = Instant::now();
    client.wait_for(&[PING, PING].concat());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.text(), [HEAD, PING, PING].concat());
}

#[test]
fn max_time_ends_the_stream_with_nothing() {
    let daemon = start("es-maxtime", &["-MaxTime", "2"]);
    let started = Instant::now();
    let mut client = open(daemon.sub, "/push/h/eventsource/chat", &[]);
    assert_eq!(client.read_to_close(), HEAD);
    // MaxTime counts whole seconds from the connection's start.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_hostid_takeover_and_disconnect_end_the_stream_with_an_eof_event() {
    let daemon = start("es-takeover", &[]);
    let mut first = open(daemon.sub, "/push/same/eventsource/chat", &[]);
    daemon.wait_subscribers("chat", 1);
    let mut second = open(daemon.sub, "/push/same/eventsource/chat", &[]);
    // An eof event, so the page does not reconnect and take the hostid
    // back (two pages would end each other's streams forever).
    let takeover = "event: eof\ndata: {\"type\":\"eof\",\"reason\":\"takeover\"}\n\n";
    assert_eq!(first.read_to_close(), [HEAD, takeover].concat());
    daemon.wait_subscribers("chat", 1);
    let m = daemon.publish("chat", "m");
    assert_stream(
        &mut second,
        &[HEAD.to_string(), plain(m, "chat", "m")].concat(),
        "\"m\"}",
    );

    let answer = daemon.get("/disconnect/same").read_to_close();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    let disconnect = "event: eof\ndata: {\"type\":\"eof\",\"reason\":\"disconnect\"}\n\n";
    assert_eq!(
        second.read_to_close(),
        [
            HEAD.to_string(),
            plain(m, "chat", "m"),
            disconnect.to_string()
        ]
        .concat()
    );
}

#[test]
fn a_stream_without_a_valid_channel_is_an_empty_404_with_cors() {
    let daemon = start("es-404", &[]);
    let mut client = open(daemon.sub, "/push/h/eventsource/bad.x", &[]);
    assert_eq!(
        client.read_to_close(),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Cache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn sighup_brings_new_parameters_to_new_and_running_streams() {
    let config = "EventSourceAllowOrigin https://a.example\n[eventsource]\nPersist 1\n\
                  PingInterval 0\nEventSourceRetry 1000\n";
    let daemon = Daemon::start_with_config("es-hup", config, &[]);
    let old_head = head_with("https://a.example", 1000);
    let mut running = open(daemon.sub, "/push/h/eventsource/chat", &[]);
    running.wait_for("retry: 1000\n\n");
    assert_eq!(running.text(), old_head);

    write_file(
        &daemon.dir.join("meteord.conf"),
        "EventSourceAllowOrigin https://b.example\n[eventsource]\nPersist 1\n\
         PingInterval 0\nEventSourceRetry 250\nMaxMessages 1\n",
    );
    daemon.signal("HUP");
    let new_head = head_with("https://b.example", 250);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut fresh = open(daemon.sub, "/push/h2/eventsource/other", &[]);
        fresh.wait_for("\n\n");
        fresh.idle_for(Duration::from_millis(100));
        if fresh.text() == new_head {
            break;
        }
        assert_eq!(fresh.text(), old_head);
        assert!(Instant::now() < deadline, "SIGHUP never applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The running stream keeps its head and now ends after one message
    // (MaxMessages 1 of the new configuration).
    let m = daemon.publish("chat", "m");
    let expected = [old_head, plain(m, "chat", "m")].concat();
    assert_eq!(running.read_to_close(), expected);
}

#[test]
fn listings_and_stats_count_eventsource_streams() {
    let daemon = start("es-lists", &[]);
    let mut client = open(daemon.sub, "/push/eshost/eventsource/chat", &[]);
    daemon.wait_subscribers("chat", 1);
    let m = daemon.publish("chat", "m");
    client.wait_for(&plain(m, "chat", "m"));
    let mut ctl = daemon.controller();
    // The count follows the write the client already read: wait for it.
    let deadline = Instant::now() + WAIT;
    let mut subs = ctl.command("LISTSUBSCRIBERS");
    while !subs.contains(" 1 \"es-test\"\r\n") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        subs = ctl.command("LISTSUBSCRIBERS");
    }
    let line = subs
        .split("\r\n")
        .find(|l| l.starts_with("eshost 127.0.0.1 "))
        .unwrap_or_else(|| panic!("{subs}"));
    let fields: Vec<&str> = line.splitn(7, ' ').collect();
    assert_eq!((fields[5], fields[6]), ("1", "\"es-test\""), "{line}");
    let conns = ctl.command("LISTCONNECTIONS");
    let number = conns
        .split("\r\n")
        .find(|l| l.ends_with(" 127.0.0.1 Meteor::Subscriber eshost"))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("{conns}"));
    let describe = ctl.command(&format!("DESCRIBE {number}"));
    for key in [
        "mode: eventsource",
        "subscriberID: eshost",
        "messageCount: 1",
    ] {
        assert!(
            describe.contains(&format!("{key}\r\n")),
            "{key} in {describe}"
        );
    }
    let stats = ctl.command("SHOWSTATS");
    for key in [
        "real_subscribers: 1",
        "current_subscribers: 1",
        "messages_served: 1",
    ] {
        assert!(stats.contains(&format!("{key}\r\n")), "{key} in {stats}");
    }
}

#[test]
fn a_slow_reader_that_fell_out_of_the_history_is_closed_and_resumes_with_a_gap() {
    let daemon = start(
        "es-slow",
        &["-MaxMessagesPerChannel", "5", "-WriteTimeout", "60"],
    );
    let mut slow = open(daemon.sub, "/push/slow/eventsource/chat", &[]);
    daemon.wait_subscribers("chat", 1);
    // Far more than the socket buffers hold while the client reads nothing.
    let mut ctl = daemon.controller();
    let mut published = Vec::new();
    for i in 0..400 {
        let text = format!("{i:04}{}", "x".repeat(32 * 1024));
        published.push((publish_bytes(&mut ctl, "chat", text.as_bytes()), text));
    }
    // The history keeps some messages past MaxMessagesPerChannel for a
    // few seconds, for live subscribers; after that the next ones push
    // everything older out.
    std::thread::sleep(Duration::from_secs(6));
    for i in 0..5 {
        let text = format!("late {i}");
        published.push((publish_bytes(&mut ctl, "chat", text.as_bytes()), text));
    }
    let received = slow.read_to_close();
    let got = ids(&received);
    assert!(
        !got.is_empty() && got.len() < published.len(),
        "{} of {}",
        got.len(),
        published.len()
    );
    let expected_ids: Vec<u64> = published[..got.len()].iter().map(|(id, _)| *id).collect();
    assert_eq!(got, expected_ids, "a prefix, in order, nothing doubled");
    let last = *got.last().unwrap();
    assert!(received.ends_with("\"}\n\n"), "closed after a whole event");

    let header = format!("Last-Event-ID: {last}");
    let mut resumed = open(daemon.sub, "/push/slow/eventsource/chat", &[&header]);
    let kept = &published[published.len() - 5..];
    let mut expected = [HEAD.to_string(), gap("chat", last + 1, kept[0].0)].concat();
    for (id, text) in kept {
        expected.push_str(&plain(*id, "chat", text));
    }
    let (last_id, last_text) = kept.last().unwrap();
    assert_stream(&mut resumed, &expected, &plain(*last_id, "chat", last_text));
}
