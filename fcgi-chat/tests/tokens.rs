//! Subscriber tokens minted by fcgi-chat (`--token-secret`, issue 14):
//! `GET chat.php?token=1&hostid=H` over FastCGI and the dev HTTP server
//! answers a standard HS256 JWT for the chat channel, checked here with the
//! crates directly; and the REAL meteord, given the same secret, lets that
//! token (and only for that hostid) read the private channel the chat
//! publishes to.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use support::meteord::start_meteord;
use support::*;

const SECRET: &str = "fcgi-chat test secret, 32 bytes.";
const CHANNEL: &str = "private-chat";

/// A FastCGI GET of `chat.php?<query>`.
fn fcgi_get(listen: &str, query: &str) -> FcgiResponse {
    let params = encode_params(&[
        ("GATEWAY_INTERFACE", b"CGI/1.1"),
        ("REQUEST_METHOD", b"GET"),
        ("SCRIPT_NAME", b"/chat.php"),
        ("QUERY_STRING", query.as_bytes()),
        ("SERVER_PROTOCOL", b"HTTP/1.1"),
    ]);
    let mut request = record(BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0]);
    request.extend(record(PARAMS, 1, &params));
    request.extend(record(PARAMS, 1, b""));
    request.extend(record(STDIN, 1, b""));
    let mut conn = Endpoint::Tcp(listen.to_owned()).connect();
    conn.write_all(&request).unwrap();
    read_response(&mut conn, 1)
}

/// The token's claims, after checking it is HS256-signed with [`SECRET`].
fn verified_claims(token: &str) -> serde_json::Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        .expect("signed with the secret");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn fastcgi_get_mints_a_bound_token_for_the_channel() {
    let (_proc, listen) = spawn_fcgi_chat_on_port_0(
        &[
            "--listen",
            "127.0.0.1:0",
            "--channel",
            CHANNEL,
            "--token-ttl",
            "120",
        ],
        &[("CHAT_TOKEN_SECRET", SECRET)],
    );
    let before = now();
    let r = fcgi_get(&listen, "token=1&hostid=Abc123");
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["channel"], CHANNEL);
    let claims = verified_claims(body["token"].as_str().unwrap());
    assert_eq!(claims["ch"], serde_json::json!([CHANNEL]));
    assert_eq!(claims["sub"], "Abc123");
    let exp = claims["exp"].as_u64().unwrap();
    assert!((before + 120..=now() + 120).contains(&exp), "{exp}");
    assert_eq!(body["exp"], exp);

    let unbound = verified_claims(
        fcgi_get(&listen, "token=1").json()["token"]
            .as_str()
            .unwrap(),
    );
    assert!(unbound.get("sub").is_none());
    let bad = fcgi_get(&listen, "token=1&hostid=a-b");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json(),
        serde_json::json!({"ok": false, "error": "hostid must be 1 to 64 letters and digits"})
    );
    // A GET without `token` is still refused as before.
    assert_eq!(fcgi_get(&listen, "").status, 405);
}

#[test]
fn without_a_secret_there_are_no_tokens() {
    let (_proc, listen) = spawn_fcgi_chat_on_port_0(&["--listen", "127.0.0.1:0"], &[]);
    assert_eq!(fcgi_get(&listen, "token=1").status, 405);
}

fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn meteord_accepts_the_minted_token_for_its_hostid_only() {
    let dir = TempDir::new("tokens-e2e");
    let meteord = start_meteord(
        &dir,
        &[
            "-SubscriberTokenSecret",
            SECRET,
            "-SubscriberTokenChannels",
            "private-*",
        ],
    );
    let (sub, ctl) = (meteord.subscriber.clone(), meteord.controller.clone());
    let root = TempDir::new("tokens-root");
    let root_arg = root.path().display().to_string();
    let (_chat, addr) = spawn_fcgi_chat_on_port_0(
        &[
            "--http",
            "127.0.0.1:0",
            "--chat-root",
            &root_arg,
            "--controller",
            &ctl,
        ],
        &[("CHAT_TOKEN_SECRET", SECRET), ("CHAT_CHANNEL", CHANNEL)],
    );
    let config = http(&addr, "GET /config.js HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        body(&config).ends_with(", \"tokenUrl\": \"chat.php?token=1\"};\n"),
        "{config}"
    );
    let post = "user=ann&message=hello";
    let sent = http(
        &addr,
        &format!(
            "POST /chat.php HTTP/1.1\r\nHost: t\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\r\n{post}",
            post.len()
        ),
    );
    assert!(sent.starts_with("HTTP/1.1 200 "), "{sent}");

    let minted = http(
        &addr,
        "GET /chat.php?token=1&hostid=page1 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let answer: serde_json::Value = serde_json::from_str(body(&minted)).unwrap();
    let token = answer["token"].as_str().unwrap();
    let poll = |hostid: &str, query: &str| {
        http(
            &sub,
            &format!(
                "GET /push/{hostid}/simplepoll/{CHANNEL}.h{query} HTTP/1.1\r\nHost: t\r\n\r\n"
            ),
        )
    };
    let read = poll("page1", &format!("?token={token}"));
    assert!(read.starts_with("HTTP/1.1 200 OK\r\n"), "{read}");
    assert!(read.contains("ann"), "the chat message is there: {read}");
    let other = poll("page2", &format!("?token={token}"));
    assert!(other.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{other}");
    assert!(
        other.ends_with("\r\n\r\ntoken bound to another hostid\n"),
        "{other}"
    );
    let none = poll("page1", "");
    assert!(none.ends_with("\r\n\r\ntoken required\n"), "{none}");
}
