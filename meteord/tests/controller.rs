//! The controller port and UDP publish, over real sockets: every command's
//! exact reply, pipelined and split input, line ends, bad input.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{Daemon, WAIT};

#[test]
fn addmessage_replies_with_a_tab_and_consecutive_ids() {
    let daemon = Daemon::start("add", &[]);
    let mut ctl = daemon.controller();
    assert_eq!(ctl.command("ADDMESSAGE chat hello"), "OK\t1\r\n");
    assert_eq!(ctl.command("ADDMESSAGE other x"), "OK\t2\r\n");
    // As the original: the separator after the channel is required, the
    // text may be empty, and any non-blank bytes name a channel.
    assert_eq!(
        ctl.command("ADDMESSAGE chat"),
        "ERR Invalid command syntax\r\n"
    );
    assert_eq!(
        ctl.command("ADDMESSAGE chat "),
        "OK\t3\r\n",
        "empty text is a message"
    );
    assert_eq!(ctl.command("ADDMESSAGE bad.name x"), "OK\t4\r\n");
}

#[test]
fn pipelined_commands_in_one_packet_and_split_commands() {
    let daemon = Daemon::start("pipe", &[]);
    let mut ctl = daemon.controller();
    ctl.send(b"ADDMESSAGE a 1\nADDMESSAGE a 2\r\nCOUNTSUBSCRIBERS a\nbogus\nLISTCHANNELS\n");
    assert_eq!(ctl.read_reply(), "OK\t1\r\n");
    assert_eq!(ctl.read_reply(), "OK\t2\r\n");
    assert_eq!(ctl.read_reply(), "OK 0\r\n");
    assert_eq!(ctl.read_reply(), "ERR Invalid command syntax\r\n");
    assert_eq!(ctl.read_reply(), "OK\r\na(2/0)\r\n--EOT--\r\n");
    // One command in three packets, with a bare CR inside the text.
    for part in [&b"ADDMESS"[..], b"AGE a split\rtext", b" end\r\n"] {
        ctl.send(part);
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(ctl.read_reply(), "OK\t3\r\n");
    let mut poll = daemon.get("/push/x/simplepoll/a.r3");
    poll.read_to_close();
    assert!(
        poll.body()
            .starts_with("Meteor.process(3,\"a\",\"split\rtext end\");\r\n")
    );
}

#[test]
fn malformed_commands_get_the_syntax_error() {
    let daemon = Daemon::start("syntax", &[]);
    let mut ctl = daemon.controller();
    for bad in [
        "",
        "addmessage a b",
        " ADDMESSAGE a b",
        "LISTCHANNELS now",
        "NOPE",
        "\u{e9}",
    ] {
        assert_eq!(
            ctl.command(bad),
            "ERR Invalid command syntax\r\n",
            "{bad:?}"
        );
    }
    assert_eq!(ctl.command("DESCRIBE 99999"), "ERR Unknown client\r\n");
    // The original reads the argument as a number: a word is 0, no client.
    assert_eq!(ctl.command("DESCRIBE x"), "ERR Unknown client\r\n");
}

#[test]
fn countsubscribers_listchannels_listsubscribers_listconnections() {
    let daemon = Daemon::start("lists", &[]);
    daemon.publish("zeta", "z");
    daemon.publish("alpha", "a1");
    daemon.publish("alpha", "a2");
    let _s1 = daemon.get("/push/hosta/xhrinteractive/alpha/zeta");
    let _s2 = daemon.get("/push/hostb/iframe/alpha");
    daemon.wait_subscribers("alpha", 2);
    let mut ctl = daemon.controller();
    assert_eq!(ctl.command("COUNTSUBSCRIBERS alpha"), "OK 2\r\n");
    assert_eq!(ctl.command("COUNTSUBSCRIBERS nothing"), "OK 0\r\n");
    assert_eq!(
        ctl.command("LISTCHANNELS"),
        "OK\r\nalpha(2/2)\r\nzeta(1/1)\r\n--EOT--\r\n"
    );
    let subs = ctl.command("LISTSUBSCRIBERS");
    let lines: Vec<&str> = subs.split("\r\n").collect();
    assert_eq!(lines[0], "OK");
    assert_eq!(lines[lines.len() - 2], "--EOT--");
    let hosta = lines
        .iter()
        .find(|l| l.starts_with("hosta "))
        .expect("hosta listed");
    let fields: Vec<&str> = hosta.splitn(7, ' ').collect();
    assert_eq!(fields[1], "127.0.0.1");
    assert!(
        fields[2].parse::<u64>().unwrap() > 1_600_000_000,
        "start time"
    );
    assert_eq!(fields[6], "\"it-test\"");
    let conns = ctl.command("LISTCONNECTIONS");
    assert!(
        conns.contains(" 127.0.0.1 Meteor::Subscriber hosta\r\n"),
        "{conns}"
    );
    assert!(
        conns.contains(" 127.0.0.1 Meteor::Controller\r\n"),
        "{conns}"
    );
    let number = conns
        .lines()
        .find(|l| l.ends_with("hostb"))
        .and_then(|l| l.split(' ').next())
        .unwrap();
    let describe = ctl.command(&format!("DESCRIBE {number}"));
    for key in [
        "socketFN: ",
        "connectionStart: ",
        "bytesWritten: ",
        "type: Meteor::Subscriber",
        "mode: iframe",
        "ip: 127.0.0.1",
        "subscriberID: hostb",
        "useragent: it-test",
        "messageCount: 0",
        "age: ",
    ] {
        assert!(describe.contains(key), "{key} in {describe}");
    }
    assert!(describe.starts_with("OK\r\n") && describe.ends_with("--EOT--\r\n"));
}

#[test]
fn showstats_order_and_quit() {
    let daemon = Daemon::start("stats", &[]);
    daemon.publish("c", "m");
    let mut ctl = daemon.controller();
    let stats = ctl.command("SHOWSTATS");
    let keys: Vec<&str> = stats
        .split("\r\n")
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k))
        .collect();
    assert_eq!(
        &keys[..4],
        [
            "uptime",
            "channel_count",
            "connection_count",
            "real_subscribers"
        ]
    );
    // The original's counters only, each once touched: no subscriber has
    // come yet, so no subscriber counters.
    assert_eq!(
        &keys[4..],
        [
            "current_controllers",
            "controller_connections_accepted",
            "unique_messages",
            "total_outbound_bytes",
            "total_inbound_bytes",
            "total_requests"
        ]
    );
    assert!(stats.contains("unique_messages: 1\r\n"));
    ctl.send(b"QUIT\n");
    let mut rest = String::new();
    let mut stream = TcpStream::connect(daemon.ctl).unwrap();
    stream.write_all(b"QUIT\n").unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "OK\r\n", "QUIT answers OK and closes");
}

#[test]
fn an_overlong_line_is_refused_and_closed() {
    let daemon = Daemon::start("long", &[]);
    let mut stream = TcpStream::connect(daemon.ctl).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut written = 0;
    // Write until the daemon gives up on us (it closes past its line limit).
    while written < 4 * 1024 * 1024 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
        written += chunk.len();
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(
        String::from_utf8_lossy(&reply).starts_with("ERR Line too long"),
        "{reply:?}"
    );
    // Others are unaffected.
    assert_eq!(daemon.controller().command("ADDMESSAGE c ok"), "OK\t1\r\n");
}

#[test]
fn udp_datagrams_publish_with_the_same_id_sequence() {
    // UDPPort 0 means "off", so pick a free port.
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let daemon = Daemon::start(
        "udp2",
        &["-UDPIP", "127.0.0.1", "-UDPPort", &port.to_string()],
    );
    let udp_addr = daemon.udp.expect("udp address logged");
    let first = daemon.publish("u", "tcp");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to("ADDMESSAGE u caf\u{e9}\n".as_bytes(), udp_addr)
        .unwrap();
    socket.send_to(b"NOT A COMMAND", udp_addr).unwrap();
    socket.send_to(b"ADDMESSAGE u second", udp_addr).unwrap();
    let mut ctl = daemon.controller();
    let deadline = std::time::Instant::now() + WAIT;
    while ctl.command("LISTCHANNELS") != "OK\r\nu(3/0)\r\n--EOT--\r\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "UDP messages never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut poll = daemon.get("/push/x/simplepoll/u.h");
    poll.read_to_close();
    // As in the original, a datagram's text is everything after the
    // channel, its line end included.
    assert_eq!(
        poll.body(),
        format!(
            "Meteor.process({first},\"u\",\"tcp\");\r\nMeteor.process({},\"u\",\"caf\u{e9}\n\");\r\nMeteor.process({},\"u\",\"second\");\r\nMeteor.clearpoll();\r\n",
            first + 1,
            first + 2
        )
    );
}
