//! EventSource test support (issue 12): the exact bytes of the head and
//! of each event the contract defines, written out independently of the
//! daemon's code, and a client that asks for a stream with the headers a
//! browser sends.

use std::net::SocketAddr;

use super::{Client, Controller};

/// The head of an eventsource stream with the shipped defaults
/// (EventSourceAllowOrigin `*`, EventSourceRetry 3000).
pub const HEAD: &str = "HTTP/1.1 200 OK\r\n\
    Content-Type: text/event-stream; charset=utf-8\r\n\
    Cache-Control: no-cache\r\n\
    X-Accel-Buffering: no\r\n\
    Access-Control-Allow-Origin: *\r\n\
    Connection: close\r\n\
    \r\n\
    retry: 3000\n\n";

/// The head with another origin and retry.
pub fn head_with(origin: &str, retry: u64) -> String {
    HEAD.replace("Origin: *", &format!("Origin: {origin}"))
        .replace("retry: 3000", &format!("retry: {retry}"))
}

/// One message event; `text_json` is the JSON string, quotes included.
pub fn message(id: u64, channel: &str, text_json: &str) -> String {
    format!(
        "id: {id}\ndata: {{\"type\":\"message\",\"id\":{id},\"channel\":\"{channel}\",\"text\":{text_json}}}\n\n"
    )
}

/// One message event for a text that needs no escaping.
pub fn plain(id: u64, channel: &str, text: &str) -> String {
    message(id, channel, &format!("\"{text}\""))
}

/// One gap event.
pub fn gap(channel: &str, requested: u64, oldest: u64) -> String {
    format!(
        "event: gap\ndata: {{\"type\":\"gap\",\"channel\":\"{channel}\",\"requested\":{requested},\"oldest\":{oldest}}}\n\n"
    )
}

/// The ping comment.
pub const PING: &str = ": ping\n\n";

/// `GET path` with `headers` (each `Name: value`), as a browser's
/// EventSource asks.
pub fn open(addr: SocketAddr, path: &str, headers: &[&str]) -> Client {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: es-test\r\nAccept: text/event-stream\r\n"
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    Client::raw(addr, request.as_bytes())
}

/// Publish raw bytes (which need not be UTF-8); the id.
pub fn publish_bytes(ctl: &mut Controller, channel: &str, text: &[u8]) -> u64 {
    let mut line = format!("ADDMESSAGE {channel} ").into_bytes();
    line.extend_from_slice(text);
    line.push(b'\n');
    ctl.send(&line);
    let reply = ctl.read_reply();
    reply
        .strip_suffix("\r\n")
        .and_then(|line| meteor_proto::reply::parse_ok_reply(line.as_bytes()))
        .unwrap_or_else(|| panic!("bad ADDMESSAGE reply {reply:?}"))
}

/// The ids of every message event in `stream`, in order.
pub fn ids(stream: &str) -> Vec<u64> {
    stream
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("id: ")?.split('\n').next()?.parse().ok())
        .collect()
}
