//! The named limits over real sockets (docs/limits.md): each refuses or
//! cuts off exactly the client that breaks it, with its documented answer,
//! while a well-behaved subscriber keeps getting its messages.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::controller::Raw;
use support::{Client, Daemon, WAIT};

/// What the default templates close a given-up head with (the original's
/// housekeeping writes the default footer).
const FOOTER: &str = "</body></html>";

/// The 404 a mode answers for a stream request without a valid channel,
/// with `status` in its place: the limits' 400 uses the same templates.
fn with_status(daemon: &Daemon, mode: &str, status: &str) -> String {
    let page = Client::get(daemon.sub, &format!("/push/h/{mode}/.")).read_to_close();
    assert!(page.contains("404 Not Found"), "{page:?}");
    page.replace("404 Not Found", status)
}

#[test]
fn trickled_heads_and_silent_connections_are_cut_at_the_header_timeout() {
    let daemon = Daemon::start("slowloris", &["-HeaderTimeout", "1"]);
    let mut good = daemon.get("/push/good/xhrinteractive/c");
    daemon.wait_subscribers("c", 1);
    let mut trickling: Vec<TcpStream> = Vec::new();
    let mut silent: Vec<TcpStream> = Vec::new();
    for _ in 0..20 {
        let mut t = TcpStream::connect(daemon.sub).unwrap();
        t.write_all(b"GET /push/x/xhrinteractive/c HTTP/1.1\r\n")
            .unwrap();
        trickling.push(t);
        silent.push(TcpStream::connect(daemon.sub).unwrap());
    }
    let started = Instant::now();
    // Keep trickling a byte every 100 ms for up to 3 s, and publish meanwhile.
    for round in 0..30 {
        for t in &mut trickling {
            let _ = t.write_all(b"X");
        }
        if round % 5 == 0 {
            let id = daemon.publish("c", &format!("m{round}"));
            good.wait_for(&format!("p({id},\"c\",\"m{round}\")"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for s in trickling.iter_mut().chain(silent.iter_mut()) {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert_eq!(String::from_utf8_lossy(&got), FOOTER);
    }
    // Cut within the bound (1 s, and the clock's one-second round).
    assert!(started.elapsed() < Duration::from_secs(6));
    let id = daemon.publish("c", "after");
    good.wait_for(&format!("p({id},\"c\",\"after\")"));
}

#[test]
fn a_head_over_max_header_bytes_is_given_up() {
    let daemon = Daemon::start("headbytes", &["-MaxHeaderBytes", "2048"]);
    let mut big = TcpStream::connect(daemon.sub).unwrap();
    big.set_read_timeout(Some(WAIT)).unwrap();
    let _ = big.write_all(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(3000)).as_bytes());
    let mut got = Vec::new();
    let _ = big.read_to_end(&mut got);
    assert_eq!(String::from_utf8_lossy(&got), FOOTER);
    // Under the bound: read as ever (a 404 for a missing document).
    let small = format!("GET /x HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(1500));
    let page = Client::raw(daemon.sub, small.as_bytes()).read_to_close();
    assert!(page.starts_with("HTTP/1.1 404 Not Found\r\n"), "{page:?}");
}

#[test]
fn too_many_channels_or_too_long_a_name_is_a_400_with_the_modes_templates() {
    let daemon = Daemon::start(
        "channels",
        &["-MaxChannelsPerRequest", "2", "-MaxChannelNameLength", "8"],
    );
    let want = with_status(&daemon, "simplepoll", "400 Bad Request");
    assert!(want.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{want:?}");
    let three = Client::get(daemon.sub, "/push/h/simplepoll/a/b/c").read_to_close();
    assert_eq!(three, want);
    let long = Client::get(daemon.sub, "/push/h/simplepoll/a/abcdefghi").read_to_close();
    assert_eq!(long, want);
    // At the limits: served.
    let ok = Client::get(daemon.sub, "/push/h/simplepoll/a/abcdefgh").read_to_close();
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok:?}");
    // The publisher's side of the name limit.
    let mut ctl = Raw::connect(daemon.ctl);
    ctl.expect(
        b"ADDMESSAGE abcdefghi x\n",
        b"ERR Channel name too long\r\n",
    );
    ctl.expect(b"ADDMESSAGE abcdefgh x\n", b"OK\t1\r\n");
}

#[test]
fn a_message_over_max_message_size_is_refused_and_the_connection_goes_on() {
    let daemon = Daemon::start("msgsize", &["-MaxMessageSize", "10"]);
    let mut ctl = Raw::connect(daemon.ctl);
    ctl.expect(b"ADDMESSAGE c 12345678901\n", b"ERR Message too large\r\n");
    ctl.expect(b"ADDMESSAGE c 1234567890\n", b"OK\t1\r\n");
}

#[test]
fn a_line_over_controller_max_line_is_refused_and_closed() {
    let daemon = Daemon::start("ctlline", &["-ControllerMaxLine", "2048"]);
    let mut ctl = Raw::connect(daemon.ctl);
    let _ = ctl.stream.write_all(&[b'a'; 3000]);
    assert_eq!(ctl.read_to_close(), b"ERR Line too long\r\n");
    let mut ok = Raw::connect(daemon.ctl);
    ok.expect(
        format!("ADDMESSAGE c {}\n", "b".repeat(2000)).as_bytes(),
        b"OK\t1\r\n",
    );
}

#[test]
fn an_idle_controller_is_closed_after_controller_idle_timeout() {
    let daemon = Daemon::start("ctlidle", &["-ControllerIdleTimeout", "1"]);
    let mut busy = Raw::connect(daemon.ctl);
    let mut idle = Raw::connect(daemon.ctl);
    let started = Instant::now();
    // One that keeps talking stays.
    for _ in 0..4 {
        busy.expect(b"COUNTSUBSCRIBERS c\n", b"OK 0\r\n");
        std::thread::sleep(Duration::from_millis(400));
    }
    assert_eq!(idle.read_to_close(), b"");
    assert!(started.elapsed() < Duration::from_secs(3));
    busy.expect(b"COUNTSUBSCRIBERS c\n", b"OK 0\r\n");
}

#[test]
fn connections_per_address_are_limited_and_given_back() {
    let daemon = Daemon::start("perip", &["-MaxConnectionsPerIP", "2"]);
    let a = daemon.get("/push/a/xhrinteractive/c");
    let _b = daemon.get("/push/b/xhrinteractive/c");
    daemon.wait_subscribers("c", 2);
    let refused = Client::get(daemon.sub, "/push/c/xhrinteractive/c").read_to_close();
    assert_eq!(
        refused,
        "HTTP/1.1 503 Service Unavailable\r\n\
         Server: meteord\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache, no-store, must-revalidate\r\n\
         Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
         Content-length: 0\r\n\
         \r\n"
    );
    // The controller port is not counted.
    assert_eq!(
        daemon.controller().command("COUNTSUBSCRIBERS c"),
        "OK 2\r\n"
    );
    drop(a);
    let deadline = Instant::now() + WAIT;
    loop {
        let page = Client::get(daemon.sub, "/push/d/simplepoll/c").read_to_close();
        if page.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {page:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_subscriber_that_never_reads_is_dropped_at_the_write_timeout() {
    let daemon = Daemon::start("noread", &["-WriteTimeout", "1"]);
    let mut good = daemon.get("/push/good/xhrinteractive/c");
    // A small receive window, so the daemon's side fills after a few
    // messages.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&daemon.sub.into()).unwrap();
    let stalled: TcpStream = socket.into();
    (&stalled)
        .write_all(b"GET /push/stalled/xhrinteractive/c HTTP/1.1\r\n\r\n")
        .unwrap();
    daemon.wait_subscribers("c", 2);
    let text = "x".repeat(500_000);
    let mut ctl = daemon.controller();
    let started = Instant::now();
    // Fill the stalled one's socket buffers; the good one reads them all.
    let mut last = 0;
    for _ in 0..200 {
        last = ctl.publish("c", &text);
        good.wait_for(&format!("p({last},"));
        if ctl.command("COUNTSUBSCRIBERS c") == "OK 1\r\n" {
            break;
        }
    }
    assert_eq!(
        ctl.command("COUNTSUBSCRIBERS c"),
        "OK 1\r\n",
        "never dropped"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let id = ctl.publish("c", "after");
    assert!(id > last);
    good.wait_for(&format!("p({id},\"c\",\"after\")"));
    drop(stalled);
}
