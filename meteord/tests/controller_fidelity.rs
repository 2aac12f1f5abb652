//! The controller and UDP answer exactly what the original Meteor answers
//! (issue 10): command grammar, white space, channel names as raw bytes,
//! QUIT with pipelined lines, and the listings' key sets, orders and
//! formats. Each test states the original's behaviour it pins; the bytes
//! were taken from the original running beside ours.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::controller::{Raw, list, now, value, wait_reply};
use support::{Client, Daemon, WAIT};

const SYNTAX: &[u8] = b"ERR Invalid command syntax\r\n";

/// A subscriber whose poll of `path` has been answered completely.
fn poll(daemon: &Daemon, path: &str) -> String {
    let mut client = daemon.get(path);
    client.read_to_close();
    client.body()
}

#[test]
fn addmessage_needs_the_separator_after_the_channel_and_keeps_the_rest() {
    let daemon = Daemon::start("cf-add", &[]);
    let mut ctl = Raw::connect(daemon.ctl);
    // No separator: an error, and no id is used up.
    ctl.expect(b"ADDMESSAGE chat\n", SYNTAX);
    ctl.expect(b"ADDMESSAGE chat \n", b"OK\t1\r\n");
    ctl.expect(b"ADDMESSAGEchat x\n", SYNTAX);
    ctl.expect(b"ADDMESSAGE\tc1\tx\n", b"OK\t2\r\n");
    // Any white space before the channel, exactly one byte after it.
    ctl.expect(b"ADDMESSAGE  c2  y\n", b"OK\t3\r\n");
    ctl.expect(b"ADDMESSAGE c3\x0bz\n", b"OK\t4\r\n");
    ctl.expect(b"ADDMESSAGE  \n", SYNTAX);
    assert_eq!(
        poll(&daemon, "/push/p/simplepoll/chat.h/c1.h/c2.h/c3.h"),
        "Meteor.process(1,\"chat\",\"\");\r\nMeteor.process(2,\"c1\",\"x\");\r\n\
         Meteor.process(3,\"c2\",\" y\");\r\nMeteor.process(4,\"c3\",\"z\");\r\n\
         Meteor.clearpoll();\r\n"
    );
}

#[test]
fn channel_names_are_raw_bytes_listed_bytewise() {
    let daemon = Daemon::start("cf-names", &[]);
    let mut ctl = Raw::connect(daemon.ctl);
    let names: [&[u8]; 8] = [
        "kan\u{e4}le".as_bytes(),
        "\u{30c1}\u{30e3}\u{30f3}\u{30cd}\u{30eb}".as_bytes(),
        b"~tilde",
        b"a\x01b",
        b"\xa0x",
        b"bad.name",
        b"0",
        b"Zed",
    ];
    for (i, name) in names.iter().enumerate() {
        let line = [&b"ADDMESSAGE "[..], name, b" t\n"].concat();
        ctl.expect(&line, format!("OK\t{}\r\n", i + 1).as_bytes());
    }
    let mut sorted = names.to_vec();
    sorted.sort();
    let mut want = b"OK\r\n".to_vec();
    for name in sorted {
        want.extend_from_slice(name);
        want.extend_from_slice(b"(1/0)\r\n");
    }
    want.extend_from_slice(b"--EOT--\r\n");
    assert!(want.starts_with(b"OK\r\n0(1/0)\r\nZed(1/0)\r\na\x01b(1/0)\r\nbad.name"));
    ctl.expect(b"LISTCHANNELS\n", &want);
    ctl.expect("COUNTSUBSCRIBERS kan\u{e4}le\n".as_bytes(), b"OK 0\r\n");
}

#[test]
fn arguments_and_white_space_as_the_original_reads_them() {
    let daemon = Daemon::start("cf-args", &[]);
    let mut ctl = Raw::connect(daemon.ctl);
    for bad in [
        &b"\n"[..],
        b"\r\n",
        b" QUIT\n",
        b"quit\n",
        b"QUIT \n",
        b"LISTCHANNELS \n",
        b"LISTCHANNELS\t\n",
        b"LISTSUBSCRIBERSx\n",
        b"LISTCONNECTIONS now\n",
        b"COUNTSUBSCRIBERS\n",
        b"COUNTSUBSCRIBERSchat\n",
        b"COUNTSUBSCRIBERS chat \n",
        b"COUNTSUBSCRIBERS a b\n",
        b"DESCRIBE\n",
        b"DESCRIBE 5 \n",
        b"FOO\r\n",
    ] {
        ctl.expect(bad, SYNTAX);
    }
    ctl.expect(b"COUNTSUBSCRIBERS\tnowhere\n", b"OK 0\r\n");
    ctl.expect(b"COUNTSUBSCRIBERS  nowhere\n", b"OK 0\r\n");
    // COUNTSUBSCRIBERS does not create the channel.
    ctl.expect(b"LISTCHANNELS\n", b"OK\r\n--EOT--\r\n");
    // SHOWSTATS ignores whatever follows the word.
    let stats = ctl.ask(b"SHOWSTATSjunk here\n", b"--EOT--\r\n");
    assert!(stats.starts_with(b"OK\r\nuptime: "), "{stats:?}");
    // DESCRIBE of a number no connection has, or of a word (read as 0).
    ctl.expect(b"DESCRIBE 99999\n", b"ERR Unknown client\r\n");
    ctl.expect(b"DESCRIBE -1\n", b"ERR Unknown client\r\n");
    ctl.expect(b"DESCRIBE abc\n", b"ERR Unknown client\r\n");
}

/// This connection's own number, from LISTCONNECTIONS (it is the only one).
fn own_number(ctl: &mut Raw) -> String {
    let listing = ctl.ask(b"LISTCONNECTIONS\n", b"--EOT--\r\n");
    let text = String::from_utf8(listing).unwrap();
    let line = text.lines().nth(1).unwrap().to_owned();
    assert!(line.ends_with(" 127.0.0.1 Meteor::Controller"), "{text}");
    line.split(' ').next().unwrap().to_owned()
}

#[test]
fn describe_shows_the_originals_keys_and_reads_the_number_as_perl() {
    let daemon = Daemon::start("cf-describe", &[]);
    let mut ctl = Raw::connect(daemon.ctl);
    let fd = own_number(&mut ctl);
    let describe = |number: &str, ctl: &mut Raw| {
        ctl.ask(format!("DESCRIBE {number}\n").as_bytes(), b"--EOT--\r\n")
    };
    let plain = describe(&fd, &mut ctl);
    let start = value(&plain, "connectionStart").unwrap();
    let sent = value(&plain, "bytesWritten").unwrap();
    let age = value(&plain, "age").unwrap();
    assert!(age == "0" || age == "1", "{age}");
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        format!(
            "OK\r\nsocketFN: {fd}\r\nconnectionStart: {start}\r\nwriteBuffer: \r\n\
             readBuffer: \r\nbytesWritten: {sent}\r\ntype: Meteor::Controller\r\n\
             ip: 127.0.0.1\r\nage: {age}\r\n--EOT--\r\n"
        )
    );
    // "7x", "7.0", "7e0" and "+7" are all 7 to the original.
    for spelling in [
        format!("{fd}x"),
        format!("{fd}.0"),
        format!("{fd}e0"),
        format!("+{fd}"),
    ] {
        let reply = describe(&spelling, &mut ctl);
        assert_eq!(value(&reply, "socketFN"), Some(fd.clone()), "{spelling}");
    }
    // Asked about itself in a pipelined packet, a connection shows the
    // replies not yet written and the input not yet read, as the original.
    let reply = ctl.ask(
        format!("COUNTSUBSCRIBERS x\nDESCRIBE {fd}\nCOUNTSUBSCRIBERS y\n").as_bytes(),
        b"--EOT--\r\nOK 0\r\n",
    );
    let text = String::from_utf8(reply).unwrap();
    assert!(
        text.contains("\r\nwriteBuffer: OK 0\r\n\r\nreadBuffer: COUNTSUBSCRIBERS y\n\r\n"),
        "{text:?}"
    );
}

#[test]
fn quit_answers_the_lines_after_it_in_the_same_packet_then_closes() {
    let daemon = Daemon::start("cf-quit", &[]);
    let mut ctl = Raw::connect(daemon.ctl);
    ctl.stream.set_read_timeout(Some(WAIT)).expect("timeout");
    std::io::Write::write_all(
        &mut ctl.stream,
        b"QUIT\nLISTCHANNELS\nADDMESSAGE q x\nCOUNTSUBSCRIBERS q\n",
    )
    .unwrap();
    assert_eq!(
        ctl.read_to_close(),
        b"OK\r\nOK\r\n--EOT--\r\nOK\t1\r\nOK 0\r\n"
    );
    // A second QUIT in the packet closes at once: nothing is written, but
    // the lines after it still run.
    let mut ctl = Raw::connect(daemon.ctl);
    std::io::Write::write_all(&mut ctl.stream, b"QUIT\nQUIT\nADDMESSAGE after x\n").unwrap();
    assert_eq!(ctl.read_to_close(), b"");
    wait_reply(
        daemon.ctl,
        b"LISTCHANNELS\n",
        b"OK\r\nafter(1/0)\r\nq(1/0)\r\n--EOT--\r\n",
    );
}

/// SHOWSTATS with its time-dependent value checked and put back.
fn stats(daemon: &Daemon) -> String {
    let reply = list(daemon.ctl, b"SHOWSTATS\n");
    let uptime = value(&reply, "uptime").unwrap();
    assert!(uptime.parse::<u64>().unwrap() < 60, "{uptime}");
    String::from_utf8(reply)
        .unwrap()
        .replacen(&format!("uptime: {uptime}\r\n"), "uptime: U\r\n", 1)
}

#[test]
fn showstats_prints_the_originals_counters_once_touched() {
    let daemon = Daemon::start("cf-stats", &[]);
    // The very first connection: nothing written yet, no message, no
    // subscriber — those counters do not exist yet.
    assert_eq!(
        stats(&daemon),
        "OK\r\nuptime: U\r\nchannel_count: 0\r\nconnection_count: 1\r\n\
         real_subscribers: 0\r\ncurrent_controllers: 1\r\n\
         controller_connections_accepted: 1\r\ntotal_inbound_bytes: 10\r\n\
         total_requests: 1\r\n--EOT--\r\n"
    );
    // A stream, a poll, a head still arriving: current_subscribers counts
    // the open subscriber connections, real_subscribers adds the hostids
    // that polled in the last minute.
    daemon.publish("c", "m");
    let mut stream = daemon.get("/push/streamer/xhrinteractive/c.h");
    stream.wait_for("\"m\"");
    poll(&daemon, "/push/poller/simplepoll/c.h");
    let _partial = Client::raw(daemon.sub, b"GET /push/late/xhr");
    let deadline = std::time::Instant::now() + WAIT;
    let mut text = stats(&daemon);
    // Wait for the poll and the controllers of the steps above to be gone.
    let settled = |t: &str| {
        [
            "real_subscribers: 3\r\n",
            "current_subscribers: 2\r\n",
            "current_controllers: 1\r\n",
        ]
        .iter()
        .all(|l| t.contains(l))
    };
    while !settled(&text) {
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(20));
        text = stats(&daemon);
    }
    let reply = text.as_bytes();
    let keys: Vec<&str> = text
        .split("\r\n")
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "uptime",
            "channel_count",
            "connection_count",
            "real_subscribers",
            "current_subscribers",
            "subscriber_connections_accepted",
            "current_controllers",
            "controller_connections_accepted",
            "messages_served",
            "unique_messages",
            "total_outbound_bytes",
            "total_inbound_bytes",
            "total_requests"
        ],
        "{text}"
    );
    let number = |key| value(reply, key).unwrap().parse::<u64>().unwrap();
    assert_eq!(number("channel_count"), 1);
    assert_eq!(number("connection_count"), 3);
    assert_eq!(number("subscriber_connections_accepted"), 3);
    assert_eq!(number("messages_served"), 2, "one backlog message each");
    assert_eq!(number("unique_messages"), 1);
    assert_eq!(
        number("total_requests"),
        number("subscriber_connections_accepted") + number("controller_connections_accepted")
    );
    assert!(text.ends_with("\r\n--EOT--\r\n"));
}

#[test]
fn listsubscribers_prints_the_time_limit_and_the_user_agent_as_sent() {
    let config = "SubscriberIP 127.0.0.1\n\
                  [limited]\nPersist 1\nMaxTime 240\n\
                  [open]\nPersist 1\nMaxTime 0\n";
    let daemon = Daemon::start_with_config("cf-subs", config, &[]);
    let before = now();
    let _a = Client::raw(
        daemon.sub,
        b"GET /push/ua1/limited/c HTTP/1.1\r\nUser-Agent: Mozilla \"quoted\" x\r\n\r\n",
    );
    daemon.wait_subscribers("c", 1);
    let _b = Client::raw(daemon.sub, b"GET /push/ua2/open/c HTTP/1.1\r\n\r\n");
    daemon.wait_subscribers("c", 2);
    // A poll is no subscriber of the list.
    poll(&daemon, "/push/poller/simplepoll/c");
    let reply = String::from_utf8(list(daemon.ctl, b"LISTSUBSCRIBERS\n")).unwrap();
    let after = now();
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert_eq!(
        (lines[0], lines[3], lines[4], lines.len()),
        ("OK", "--EOT--", "", 5)
    );
    // hostid ip start limit left messages "user agent"
    let a: Vec<&str> = lines[1].splitn(7, ' ').collect();
    let start: u64 = a[2].parse().unwrap();
    assert!((before..=after).contains(&start));
    let left = 240 + start as i64 - after as i64;
    let left_then = 240 + start as i64 - before as i64;
    assert_eq!(a[..2], ["ua1", "127.0.0.1"]);
    assert_eq!(a[3], (start + 240).to_string());
    assert!(
        (left..=left_then).contains(&a[4].parse().unwrap()),
        "{reply}"
    );
    assert_eq!(a[5..], ["0", "\"Mozilla \"quoted\" x\""]);
    // No MaxTime: an empty limit, and minus the current time left.
    let b: Vec<&str> = lines[2].splitn(7, ' ').collect();
    assert_eq!(b[..2], ["ua2", "127.0.0.1"]);
    assert_eq!(b[3], "");
    let minus_now: i64 = b[4].parse().unwrap();
    assert!(
        (-(after as i64)..=-(before as i64)).contains(&minus_now),
        "{reply}"
    );
    assert_eq!(b[5..], ["0", "\"-\""]);
}

#[test]
fn describe_of_subscribers_has_the_originals_keys_in_its_order() {
    let config = "SubscriberIP 127.0.0.1\n[limited]\nPersist 1\nMaxTime 240\n";
    let daemon = Daemon::start_with_config("cf-dsub", config, &[]);
    let _s = Client::raw(
        daemon.sub,
        b"GET /push/h1/limited/c HTTP/1.1\r\nUser-Agent: UA \"1\"\r\n\r\n",
    );
    daemon.wait_subscribers("c", 1);
    let _partial = Client::raw(daemon.sub, b"GET /push/h2/lim");
    let deadline = std::time::Instant::now() + WAIT;
    let mut conns = String::new();
    // Two subscribers, and no controller but the asking one, accepted after
    // both (the partial request's accept can be registered after a
    // controller that connected later: two accept loops, two threads).
    while conns.matches("Meteor::Subscriber").count() < 2
        || conns.matches("Meteor::Controller").count() > 1
        || !conns
            .split("\r\n")
            .nth(3)
            .is_some_and(|l| l.ends_with(" Meteor::Controller"))
    {
        assert!(std::time::Instant::now() < deadline, "{conns}");
        conns = String::from_utf8(list(daemon.ctl, b"LISTCONNECTIONS\n")).unwrap();
    }
    let lines: Vec<&str> = conns.split("\r\n").collect();
    let number = |i: usize| lines[i].split(' ').next().unwrap().to_owned();
    assert_eq!(
        lines[1],
        format!("{} 127.0.0.1 Meteor::Subscriber h1", number(1))
    );
    assert_eq!(
        lines[2],
        format!("{} 127.0.0.1 Meteor::Subscriber", number(2))
    );
    assert!(
        lines[3].ends_with(" 127.0.0.1 Meteor::Controller"),
        "{conns}"
    );
    let keys = |reply: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(reply)
            .split("\r\n")
            .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_owned()))
            .collect()
    };
    let streaming = list(daemon.ctl, format!("DESCRIBE {}\n", number(1)).as_bytes());
    assert_eq!(
        keys(&streaming),
        [
            "socketFN",
            "connectionStart",
            "writeBuffer",
            "readBuffer",
            "bytesWritten",
            "type",
            "mode",
            "ip",
            "messageCount",
            "age",
            "connectionTimeLimit",
            "useragent",
            "subscriberID"
        ]
    );
    let start: u64 = value(&streaming, "connectionStart")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        value(&streaming, "connectionTimeLimit"),
        Some((start + 240).to_string())
    );
    assert_eq!(value(&streaming, "useragent").as_deref(), Some("UA \"1\""));
    assert_eq!(value(&streaming, "mode").as_deref(), Some("limited"));
    assert_eq!(value(&streaming, "writeBuffer").as_deref(), Some(""));
    let waiting = list(daemon.ctl, format!("DESCRIBE {}\n", number(2)).as_bytes());
    assert_eq!(
        keys(&waiting),
        [
            "socketFN",
            "connectionStart",
            "writeBuffer",
            "readBuffer",
            "bytesWritten",
            "type",
            "ip",
            "headerBuffer",
            "messageCount",
            "age"
        ]
    );
}

#[test]
fn listconnections_lists_in_accept_order_whatever_the_numbers() {
    let daemon = Daemon::start("cf-order", &[]);
    let mut ctl = Raw::connect(daemon.ctl);
    let listing =
        |ctl: &mut Raw| String::from_utf8(ctl.ask(b"LISTCONNECTIONS\n", b"--EOT--\r\n")).unwrap();
    // Accepted (not just connected) before the subscribers.
    listing(&mut ctl);
    let first = Client::raw(daemon.sub, b"GET /push/a/xhr");
    let _second = Client::raw(daemon.sub, b"GET /push/b/xhr");
    let deadline = std::time::Instant::now() + WAIT;
    while listing(&mut ctl).lines().count() < 5 {
        assert!(std::time::Instant::now() < deadline);
    }
    drop(first);
    while listing(&mut ctl).lines().count() != 4 {
        assert!(std::time::Instant::now() < deadline);
    }
    // The kernel gives the newest connection the lowest free number.
    let _third = Client::raw(daemon.sub, b"GET /push/c/xhr");
    let mut text = listing(&mut ctl);
    while text.lines().count() < 5 {
        assert!(std::time::Instant::now() < deadline);
        text = listing(&mut ctl);
    }
    let numbers: Vec<u64> = text
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        text.lines().nth(1).unwrap().ends_with("Meteor::Controller"),
        "{text}"
    );
    assert!(
        numbers[2] < numbers[1],
        "newest last, though its number is lower: {text}"
    );
}

#[test]
fn udp_follows_the_originals_datagram_grammar() {
    let port = {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let daemon = Daemon::start(
        "cf-udp",
        &["-UDPIP", "127.0.0.1", "-UDPPort", &port.to_string()],
    );
    let udp = daemon.udp.expect("udp address logged");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in [
        &b"ADDMESSAGE u1 hello"[..],
        b"ADDMESSAGE u2",
        b"ADDMESSAGE u3\n",
        b"ADDMESSAGE  u4 x",
        b"ADDMESSAGE\tu5\tx",
        b"addmessage u6 x",
        b"ADDMESSAGE u7 trailing\r\n",
        b"COUNTSUBSCRIBERS u8",
        b"ADDMESSAGEu9 x",
    ] {
        socket.send_to(datagram, udp).unwrap();
    }
    wait_reply(
        daemon.ctl,
        b"LISTCHANNELS\n",
        b"OK\r\nu1(1/0)\r\nu3(1/0)\r\nu5(1/0)\r\nu7(1/0)\r\n--EOT--\r\n",
    );
    // The ignored datagrams took no id.
    assert_eq!(daemon.publish("tcp", "x"), 5);
    assert_eq!(
        poll(&daemon, "/push/p/simplepoll/u1.h/u3.h/u5.h/u7.h"),
        "Meteor.process(1,\"u1\",\"hello\");\r\nMeteor.process(2,\"u3\",\"\");\r\n\
         Meteor.process(3,\"u5\",\"x\");\r\nMeteor.process(4,\"u7\",\"trailing\r\n\");\r\n\
         Meteor.clearpoll();\r\n"
    );
}
