//! Publisher-written deliveries (issue 15): a publisher writes a message
//! itself to the sockets of streams that are idle and caught up on their
//! one channel (`subscriber/stream/direct.rs`). Every stream still gets
//! every message once, whole, in id order, in its own mode's bytes —
//! whoever writes it — also with publishers racing each other, slow
//! readers whose sockets fill, several channels, modes with limits and a
//! reload; `meteord_direct_deliveries_total` tells the two writers apart.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::eventsource;
use support::metrics::WithMetrics;
use support::websocket::{Ws, message_json};
use support::{Controller, Daemon, WAIT, write_file};

/// `channel::DIRECT_MIN_GAP`: messages of one channel closer together than
/// this are written by the subscribers' tasks, in batches.
const DIRECT_MIN_GAP: Duration = Duration::from_millis(1);

const CLASSIC: &str = "[classic]\nPersist 1\nHeaderTemplate H|\nMessageTemplate [~id~:~text~]\n\
                       [capped]\nPersist 1\nMaxMessages 3\nHeaderTemplate H|\nMessageTemplate [~id~:~text~]\nFooterTemplate |F\n\
                       [onevent]\nPersist 1\nCloseOnEvent 1\nHeaderTemplate H|\nMessageTemplate [~id~:~text~]\nFooterTemplate |F\n\
                       [eventsource]\nPersist 1\n[websocket]\nPersist 1\n";

fn start(name: &str, extra: &[&str]) -> WithMetrics {
    let dir = support::scratch(name);
    let conf = dir.join("meteord.conf");
    write_file(&conf, CLASSIC);
    let conf = conf.display().to_string();
    let mut args = vec!["-ConfigFileLocation", conf.as_str(), "-PingInterval", "0"];
    args.extend_from_slice(extra);
    WithMetrics::start(name, &args)
}

fn direct(daemon: &WithMetrics) -> u64 {
    daemon.scrape().must("meteord_direct_deliveries_total", &[])
}

fn delivered(daemon: &WithMetrics) -> u64 {
    let scrape = daemon.scrape();
    scrape
        .parsed
        .samples
        .iter()
        .filter(|s| s.metric == "meteord_deliveries_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v as u64,
            _ => 0,
        })
        .sum()
}

/// The `[id:text]` messages of a classic stream body after `H|`; panics
/// on anything else (a torn or foreign byte).
fn classic_ids(body: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut rest = body.strip_prefix("H|").expect("the head first");
    while let Some(inner) = rest.strip_prefix('[') {
        let end = inner.find(']').expect("a whole message");
        let (id, text) = inner[..end].split_once(':').expect("id:text");
        out.push((id.parse().expect("numeric id"), text.to_owned()));
        rest = &inner[end + 1..];
    }
    assert!(rest.is_empty(), "trailing bytes {rest:?}");
    out
}

#[test]
fn caught_up_streams_of_every_transport_are_written_by_the_publisher() {
    let daemon = start("direct-every-transport", &[]);
    let mut classic = daemon.daemon.get("/push/h1/classic/c");
    let mut es = eventsource::open(daemon.daemon.sub, "/push/h2/eventsource/c", &[]);
    let mut ws = Ws::open(daemon.daemon.sub, "/push/h3/websocket/c");
    daemon.daemon.wait_subscribers("c", 3);
    let before = direct(&daemon);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(daemon.daemon.publish("c", &format!("m{i}")));
        // Spaced like a conversation: a burst is the tasks' (below).
        std::thread::sleep(DIRECT_MIN_GAP * 2);
    }
    let expected: Vec<(u64, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, format!("m{i}")))
        .collect();
    let last = format!("[{}:m19]", ids[19]);
    classic.wait_for(&last);
    assert_eq!(classic_ids(&classic.text()), expected);
    let events: String = expected
        .iter()
        .map(|(id, t)| eventsource::plain(*id, "c", t))
        .collect();
    es.wait_for(&events);
    assert_eq!(es.body(), format!("retry: 3000\n\n{events}"));
    for (id, text) in &expected {
        assert_eq!(ws.next_text(), message_json(*id, "c", text));
    }
    // All 60 counted once; nearly all by the publisher (the first one a
    // stream gets may still be its task's, if its first pass was not over).
    let deliveries = delivered(&daemon);
    assert_eq!(deliveries, 60, "every delivery counted once");
    let by_publisher = direct(&daemon) - before;
    assert!(
        by_publisher >= 50,
        "only {by_publisher} of 60 deliveries written by the publisher"
    );
    let stats = daemon.daemon.controller().command("SHOWSTATS");
    assert!(
        stats.lines().any(|l| l.trim_end() == "messages_served: 60"),
        "{stats}"
    );
}

#[test]
fn racing_publishers_and_slow_readers_get_every_message_once_in_order() {
    let daemon = start("direct-race", &["-MaxMessagesPerChannel", "5000"]);
    let sub = daemon.daemon.sub;
    // Fast readers, and slow ones whose tiny receive window fills, so
    // publishers meet full sockets and leave the rest of a message to the
    // stream; one stream on two channels, which its task always writes.
    let mut readers = Vec::new();
    let text = "y".repeat(700);
    for i in 0..12 {
        let slow = i % 3 == 0;
        let path = if i == 11 {
            "/push/h11/classic/c/other".to_owned()
        } else {
            format!("/push/h{i}/classic/c")
        };
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if slow {
            socket.set_recv_buffer_size(2048).unwrap();
        }
        socket.connect(&sub.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        readers.push((slow, stream));
    }
    daemon.daemon.wait_subscribers("c", 12);
    let last_id = std::sync::Arc::new(std::sync::OnceLock::<u64>::new());
    let handles: Vec<_> = readers
        .into_iter()
        .map(|(slow, mut stream)| {
            let last_id = last_id.clone();
            std::thread::spawn(move || {
                stream
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut got = Vec::new();
                let mut chunk = [0u8; 4096];
                // Bounded: 60 seconds at most.
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    if let Some(last) = last_id.get()
                        && String::from_utf8_lossy(&got).contains(&format!("[{last}:"))
                        && got.ends_with(b"]")
                    {
                        break;
                    }
                    match stream.read(&mut chunk[..if slow { 300 } else { 4096 }]) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                        Err(_) => {}
                    }
                    if slow && last_id.get().is_none() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                String::from_utf8(got).expect("ASCII stream")
            })
        })
        .collect();
    // Four publishers at once, 150 messages each, on their own connections.
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            let ctl = daemon.daemon.ctl;
            let text = text.clone();
            std::thread::spawn(move || {
                let mut controller = Controller::connect(ctl);
                // Each about every 4 ms: together about one a millisecond,
                // so some messages go to the publisher, some (closer than
                // the gap) to the tasks, racing each other.
                (0..150)
                    .map(|_| {
                        std::thread::sleep(DIRECT_MIN_GAP * 4);
                        controller.publish("c", &text)
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut published: Vec<u64> = publishers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    published.sort_unstable();
    last_id.set(*published.last().unwrap()).unwrap();
    for (i, handle) in handles.into_iter().enumerate() {
        let body = handle.join().unwrap();
        let messages = classic_ids(&body);
        let ids: Vec<u64> = messages.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), published.len(), "stream {i}: every message");
        assert_eq!(ids, published, "stream {i}: once each, in id order");
        assert!(messages.iter().all(|(_, t)| *t == text), "stream {i}: torn");
    }
    assert!(direct(&daemon) > 0, "publishers wrote some themselves");
    assert_eq!(delivered(&daemon), 12 * 600);
}

#[test]
fn modes_with_limits_and_several_channels_are_written_by_their_stream() {
    let daemon = start("direct-limits", &[]);
    let mut capped = daemon.daemon.get("/push/h1/capped/c");
    let mut onevent = daemon.daemon.get("/push/h2/onevent/c");
    let mut two = daemon.daemon.get("/push/h3/classic/c/d");
    daemon.daemon.wait_subscribers("c", 3);
    let ids: Vec<u64> = (0..5)
        .map(|i| daemon.daemon.publish("c", &format!("{i}")))
        .collect();
    let d = daemon.daemon.publish("d", "on-d");
    assert_eq!(
        capped.read_to_close(),
        format!("H|[{}:0][{}:1][{}:2]|F", ids[0], ids[1], ids[2])
    );
    assert!(
        onevent
            .read_to_close()
            .ends_with(&format!("H|[{}:0]|F", ids[0]))
    );
    let all: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!("[{id}:{i}]"))
        .collect();
    two.wait_for(&format!("H|{all}[{d}:on-d]"));
    assert_eq!(
        direct(&daemon),
        0,
        "none of these is the publisher's to write"
    );
}

#[test]
fn a_reload_reaches_streams_that_only_publishers_write_to() {
    let dir = support::scratch("direct-reload");
    let conf = dir.join("meteord.conf");
    write_file(
        &conf,
        "Persist 1\nPingInterval 0\nMessageTemplate old:~text~\\n\n",
    );
    let conf_arg = conf.display().to_string();
    let daemon = Daemon::start_in(dir.clone(), &["-ConfigFileLocation", &conf_arg]);
    let mut client = daemon.get("/push/a/any/c");
    daemon.wait_subscribers("c", 1);
    for i in 0..3 {
        daemon.publish("c", &format!("one{i}"));
    }
    client.wait_for("old:one2\n");
    write_file(
        &conf,
        "Persist 1\nPingInterval 0\nMessageTemplate new:~text~\\n\n",
    );
    daemon.signal("HUP");
    // The reload is applied by the signal handler; wait for its log line
    // rather than publish until the template changes.
    let deadline = Instant::now() + WAIT;
    while !daemon.log_text().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    daemon.publish("c", "two");
    client.wait_for("new:two\n");
    assert!(
        client.text().ends_with("old:one2\nnew:two\n"),
        "{}",
        client.text()
    );
}

#[test]
fn a_burst_is_written_by_the_subscribers_tasks_in_batches() {
    let daemon = start("direct-burst", &[]);
    let mut clients: Vec<_> = (0..5)
        .map(|i| daemon.daemon.get(&format!("/push/h{i}/classic/c")))
        .collect();
    daemon.daemon.wait_subscribers("c", 5);
    // 200 publishes in one packet: far closer together than the gap.
    let mut controller = daemon.daemon.controller();
    let lines: String = (0..200).map(|i| format!("ADDMESSAGE c b{i}\n")).collect();
    controller.send(lines.as_bytes());
    let ids: Vec<u64> = (0..200)
        .map(|_| {
            let reply = controller.read_reply();
            reply
                .strip_suffix("\r\n")
                .and_then(|line| meteor_proto::reply::parse_ok_reply(line.as_bytes()))
                .unwrap_or_else(|| panic!("bad ADDMESSAGE reply {reply:?}"))
        })
        .collect();
    let expected: Vec<(u64, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, format!("b{i}")))
        .collect();
    for client in &mut clients {
        client.wait_for(&format!("[{}:b199]", ids[199]));
        assert_eq!(classic_ids(&client.text()), expected);
    }
    assert_eq!(delivered(&daemon), 1000);
    // At most the burst's first message (it had no message just before it)
    // by the publisher, once per subscriber.
    assert!(direct(&daemon) <= 5, "{} by the publisher", direct(&daemon));
}
