//! Pings a stream's socket gets from the daemon's clock (written by the
//! clock itself when PingMessage is constant, see `write_turn.rs`): they
//! come every PingInterval and never tear a message, also while the
//! subscriber reads nothing and its socket is full.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::Daemon;

const CONFIG: &str = "PingInterval 3\nPersist 1\nPingMessage <ping>\n\
                      HeaderTemplate H|\nMessageTemplate [~id~:~text~]\n\
                      MaxMessagesPerChannel 1000\nWriteTimeout 60\n";

/// Split a stream body (after `H|`) into its pings and messages; panics
/// on anything else (a torn ping or message).
fn tokens(body: &str) -> (usize, Vec<(u64, String)>) {
    let mut pings = 0;
    let mut messages = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<ping>") {
            pings += 1;
            rest = after;
            continue;
        }
        let inner = rest.strip_prefix('[').unwrap_or_else(|| {
            panic!(
                "neither a ping nor a message at {:?}",
                &rest[..rest.len().min(40)]
            )
        });
        let end = inner.find(']').expect("a message is closed");
        let (id, text) = inner[..end].split_once(':').expect("id:text");
        messages.push((id.parse().expect("numeric id"), text.to_owned()));
        rest = &inner[end + 1..];
    }
    (pings, messages)
}

#[test]
fn constant_pings_come_every_interval_between_whole_messages() {
    let daemon = Daemon::start_with_config("pings-order", CONFIG, &[]);
    let mut client = daemon.get("/push/p/anymode/c");
    daemon.wait_subscribers("c", 1);
    let first = daemon.publish("c", "a");
    client.wait_for("<ping>");
    let second = daemon.publish("c", "b");
    client.wait_for(&format!("[{second}:b]"));
    client.wait_for(&format!("[{second}:b]<ping>"));
    let text = client.text();
    let body = text.strip_prefix("H|").expect("the head first");
    let (pings, messages) = tokens(body);
    assert!(pings >= 2, "{text:?}");
    assert_eq!(
        messages,
        [(first, "a".to_owned()), (second, "b".to_owned())]
    );
}

#[test]
fn a_slow_reader_gets_whole_messages_and_pings() {
    let daemon = Daemon::start_with_config("pings-slow", CONFIG, &[]);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A tiny window, read slower than messages come: the daemon's side of
    // the socket is full, then has a little room, over and over, while
    // the stream has a write under way and pings fall due.
    socket.set_recv_buffer_size(2048).unwrap();
    socket.connect(&daemon.sub.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    std::io::Write::write_all(&mut stream, b"GET /push/s/anymode/c HTTP/1.1\r\n\r\n").unwrap();
    daemon.wait_subscribers("c", 1);
    let text = "x".repeat(900);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 256];
        let mut last: Option<String> = None;
        // Bounded: 60 seconds at most.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if last.is_none() {
                last = done_rx.try_recv().ok();
            }
            if let Some(last) = &last
                && String::from_utf8_lossy(&got).contains(last.as_str())
            {
                break;
            }
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
            // ~12 KB/s while publishing (slower than the ~22 KB/s sent),
            // then as fast as it comes.
            if last.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        got
    });
    let mut published = Vec::new();
    // Bounded: 8 seconds of publishing, 25 a second (two ping intervals).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        published.push(daemon.publish("c", &text));
        std::thread::sleep(Duration::from_millis(40));
    }
    done_tx
        .send(format!("[{}:{text}]", published.last().unwrap()))
        .unwrap();
    let got = String::from_utf8(reader.join().unwrap()).expect("ASCII stream");
    let body = got.strip_prefix("H|").expect("the head first");
    let (pings, messages) = tokens(body);
    let ids: Vec<u64> = messages.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, published, "every message once, in order");
    assert!(messages.iter().all(|(_, t)| *t == text), "no message torn");
    assert!(pings >= 2, "pings kept coming: {pings}");
}
