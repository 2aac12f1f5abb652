//! ControllerAllow over real sockets: a controller or UDP peer outside the
//! allowed networks is closed at accept (nothing written) or its datagram
//! dropped, logged once per address per minute; subscribers are not
//! affected; a bad network stops the start with a message naming it.

mod support;

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use support::config::refuse;
use support::{Client, Daemon, WAIT};

/// Connects to the controller port and returns what arrives before the
/// daemon closes (it must close within WAIT).
fn closed_at_accept(daemon: &Daemon) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&daemon.ctl, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let _ = std::io::Write::write_all(&mut stream, b"ADDMESSAGE c nope\n");
    let mut got = Vec::new();
    // A reset instead of a clean close is fine too: nothing was read.
    let _ = stream.read_to_end(&mut got);
    got
}

#[test]
fn a_controller_outside_the_networks_is_closed_unanswered_and_logged_once() {
    let daemon = Daemon::start("allow-tcp", &["-ControllerAllow", "10.0.0.0/8 ::2"]);
    assert_eq!(closed_at_accept(&daemon), b"");
    assert_eq!(closed_at_accept(&daemon), b"");
    // Nothing was published, and subscribers are served as ever.
    let mut client = Client::get(daemon.sub, "/push/h1/simplepoll/c.h");
    let page = client.read_to_close();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page:?}");
    assert!(!page.contains("nope"), "{page:?}");
    std::thread::sleep(Duration::from_millis(200));
    let refused = daemon
        .log_text()
        .matches("controller connection refused: not in ControllerAllow")
        .count();
    assert_eq!(refused, 1, "{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("ip=127.0.0.1"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn the_default_admits_loopback() {
    let daemon = Daemon::start("allow-default", &[]);
    assert_eq!(daemon.controller().command("ADDMESSAGE c yes"), "OK\t1\r\n");
}

#[test]
fn a_network_that_holds_the_peer_admits_it() {
    let daemon = Daemon::start(
        "allow-net",
        &["-ControllerAllow", "192.168.0.0/16 127.0.0.0/30"],
    );
    assert_eq!(daemon.controller().command("ADDMESSAGE c yes"), "OK\t1\r\n");
}

#[test]
fn a_datagram_from_outside_the_networks_is_dropped() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = port.to_string();
    let daemon = Daemon::start(
        "allow-udp",
        &["-UDPPort", &port, "-ControllerAllow", "10.0.0.0/8"],
    );
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut client = Client::get(daemon.sub, "/push/h2/xhrinteractive/u");
    client.wait_for("\r\n\r\n");
    for _ in 0..3 {
        sender
            .send_to(
                b"ADDMESSAGE u dropped",
                ("127.0.0.1", port.parse::<u16>().unwrap()),
            )
            .unwrap();
    }
    assert!(client.idle_for(Duration::from_millis(500)));
    assert!(!client.text().contains("dropped"), "{}", client.text());
    let dropped = daemon
        .log_text()
        .matches("UDP datagram dropped: sender not in ControllerAllow")
        .count();
    assert_eq!(dropped, 1, "{}", daemon.log_text());
}

#[test]
fn a_bad_network_stops_the_start_naming_it() {
    let (refusal, _) = refuse(
        "allow-bad",
        None,
        &["-ControllerAllow", "10.0.0.0/8 127.0.0.0/40"],
    );
    assert_ne!(refusal.code, Some(0));
    assert!(
        refusal.stderr.contains(
            "meteord: command line: parameter ControllerAllow: invalid value \"10.0.0.0/8 \
             127.0.0.0/40\": \"127.0.0.0/40\": the prefix length must be 0 to 32\n"
        ),
        "{}",
        refusal.stderr
    );
}
