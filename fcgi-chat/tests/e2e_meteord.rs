//! End to end with the REAL meteord: a subscriber connected to meteord sees
//! what was POSTed through fcgi-chat over FastCGI, byte for byte, for
//! hostile input and for German, French, Chinese, Japanese and emoji text.
//!
//! meteord is `$METEORD_BIN` or the `meteord` binary next to this test's
//! target directory (`target/debug/meteord`); the top-level test script
//! builds it first, so a missing binary is a failure, not a skip.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::meteord::start_meteord;
use support::*;

/// (user, message, escaped user, escaped message). The expected values were
/// written independently of the crate's escaper (see escape.rs for rules).
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "Jürgen",
        "Grüße aus München – schön!",
        "J&#252;rgen",
        "Gr&#252;&#223;e aus M&#252;nchen &#8211; sch&#246;n!",
    ),
    (
        "Amélie",
        "Ça a été très agréable, n'est-ce pas ?",
        "Am&#233;lie",
        "&#199;a a &#233;t&#233; tr&#232;s agr&#233;able, n&#39;est-ce pas ?",
    ),
    (
        "王小明",
        "你好，世界！",
        "&#29579;&#23567;&#26126;",
        "&#20320;&#22909;&#65292;&#19990;&#30028;&#65281;",
    ),
    (
        "さくら",
        "こんにちは、世界。カタカナ",
        "&#12373;&#12367;&#12425;",
        "&#12371;&#12435;&#12395;&#12385;&#12399;&#12289;&#19990;&#30028;&#12290;&#12459;&#12479;&#12459;&#12490;",
    ),
    (
        "😀",
        "👍🏽 🎉 emoji",
        "&#128512;",
        "&#128077;&#127997; &#127881; emoji",
    ),
    (
        "</script><script>alert(1)</script>",
        "\"); alert(document.cookie); (\"",
        "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
        "&quot;); alert(document.cookie); (&quot;",
    ),
    (
        "x",
        "line1\r\nADDMESSAGE chat injected\r\nQUIT\n",
        "x",
        "line1&#13;&#10;ADDMESSAGE chat injected&#13;&#10;QUIT&#10;",
    ),
    (
        "a\\b",
        "back\\slash \\\" \\' end\\",
        "a&#92;b",
        "back&#92;slash &#92;&quot; &#92;&#39; end&#92;",
    ),
    (
        "n",
        "nul\u{0}here\u{7}bell\u{85}nel",
        "n",
        "nul&#65533;here&#7;bell&#65533;nel",
    ),
    (
        "t",
        "~id~ ~text~ ~~ ~channel~",
        "t",
        "~id~ ~text~ ~~ ~channel~",
    ),
    (
        "amp",
        "&amp; &#60; <b>bold</b> 'single'",
        "amp",
        "&amp;amp; &amp;#60; &lt;b&gt;bold&lt;/b&gt; &#39;single&#39;",
    ),
    (
        "",
        "\u{2028}js line sep\u{2029}",
        "Guest",
        "&#8232;js line sep&#8233;",
    ),
];

/// `(id, channel, text)` from every `PREFIX<id>,"<chan>","<text>"SUFFIX`.
fn parse_messages(stream: &str, prefix: &str, suffix: &str) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    let mut rest = stream;
    while let Some(start) = rest.find(prefix) {
        let after = &rest[start + prefix.len()..];
        let Some(end) = after.find(suffix) else { break };
        let call = &after[..end];
        rest = &after[end + suffix.len()..];
        let Some((id, args)) = call.split_once(',') else {
            continue;
        };
        let Ok(id) = id.parse::<i64>() else { continue };
        if id < 0 {
            continue; // ping
        }
        let args = args.strip_prefix('"').expect("channel quote");
        let (chan, text) = args.split_once("\",\"").expect("two string arguments");
        let text = text.strip_suffix('"').expect("closing quote");
        out.push((id, chan.to_string(), text.to_string()));
    }
    out
}

/// Checks `<strong>USER HH:MM:SS</strong> MESSAGE` exactly, except the time.
fn assert_text(text: &str, user: &str, message: &str) {
    let head = format!("<strong>{user} ");
    let tail = format!("</strong> {message}");
    assert!(
        text.starts_with(&head),
        "{text:?} should start with {head:?}"
    );
    assert!(text.ends_with(&tail), "{text:?} should end with {tail:?}");
    let time = &text[head.len()..text.len() - tail.len()];
    let b = time.as_bytes();
    assert!(
        b.len() == 8
            && b[2] == b':'
            && b[5] == b':'
            && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit()),
        "bad time {time:?} in {text:?}"
    );
}

#[test]
fn subscribers_see_exactly_the_escaped_text() {
    let dir = TempDir::new("e2e");
    let meteord = start_meteord(&dir, &[]);
    let sock = dir.path().join("chat.sock");
    let listen = format!("unix:{}", sock.display());
    let endpoint = Endpoint::Unix(sock);
    let _fcgi = spawn_fcgi_chat(
        &[
            "--listen",
            &listen,
            "--controller",
            &meteord.controller,
            "--timezone",
            "UTC",
        ],
        &[],
        &endpoint,
    );

    // A live, persistent subscriber (the xhrinteractive transport).
    let mut live = TcpStream::connect(&meteord.subscriber).unwrap();
    live.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    live.write_all(b"GET /push/abc123/xhrinteractive/chat HTTP/1.1\r\nHost: data.example\r\n\r\n")
        .unwrap();
    let mut live_bytes = Vec::new();
    let read_more = |live: &mut TcpStream, buf: &mut Vec<u8>| {
        let mut chunk = [0u8; 8192];
        match live.read(&mut chunk) {
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading live subscriber: {e}"),
        }
    };
    // The 1 KiB padding arrives once meteord has registered the subscriber.
    wait_for("the subscriber's header", || {
        read_more(&mut live, &mut live_bytes);
        live_bytes
            .windows(1024)
            .any(|w| w.iter().all(|&b| b == b'.'))
            .then_some(())
    });

    // POST every case over one kept-alive FastCGI connection.
    let mut conn = endpoint.connect();
    let mut ids = Vec::new();
    for (i, (user, message, _, _)) in CASES.iter().enumerate() {
        let id = u16::try_from(i + 1).unwrap();
        let body = format!("user={}&message={}", urlencode(user), urlencode(message));
        conn.write_all(&encode_request(
            id,
            true,
            "POST",
            Some(FORM),
            body.as_bytes(),
        ))
        .unwrap();
        let resp = read_response(&mut conn, id);
        assert_eq!(resp.status, 200, "case {i}: {resp:?}");
        ids.push(resp.json()["id"].as_i64().expect("numeric id"));
    }
    // An invalid request in between must not reach the channel.
    assert_eq!(endpoint.post_form("message=%FF").status, 400);

    // Live delivery, parsed out of the stream exactly as stream.html does.
    let deadline = Instant::now() + WAIT;
    let live_msgs = loop {
        let text = String::from_utf8(live_bytes.clone()).expect("subscriber stream is ASCII/UTF-8");
        let msgs = parse_messages(&text, "<script>p(", ");</script>\r\n");
        if msgs.len() >= CASES.len() || Instant::now() > deadline {
            break msgs;
        }
        read_more(&mut live, &mut live_bytes);
    };
    assert_eq!(
        live_msgs.len(),
        CASES.len(),
        "live stream: {:?}",
        String::from_utf8_lossy(&live_bytes)
    );
    assert!(
        live_bytes
            .iter()
            .all(|&b| b == b'\r' || b == b'\n' || (b' '..=b'~').contains(&b)),
        "stream is printable ASCII"
    );

    // History, as the long-poll transport replays it after a reconnect.
    let mut poll = TcpStream::connect(&meteord.subscriber).unwrap();
    poll.set_read_timeout(Some(WAIT)).unwrap();
    poll.write_all(b"GET /push/def456/longpoll/chat.h HTTP/1.1\r\nHost: data.example\r\n\r\n")
        .unwrap();
    let mut history = Vec::new();
    poll.read_to_end(&mut history)
        .expect("long poll closes after the backlog");
    let history = String::from_utf8(history).unwrap();
    let hist_msgs = parse_messages(&history, "Meteor.process(", ");\r\n");
    assert_eq!(hist_msgs.len(), CASES.len(), "history: {history:?}");

    for (i, (_, _, user, message)) in CASES.iter().enumerate() {
        for (what, msgs) in [("live", &live_msgs), ("history", &hist_msgs)] {
            let (id, chan, text) = &msgs[i];
            assert_eq!(*id, ids[i], "{what} case {i}: id");
            assert_eq!(chan, "chat", "{what} case {i}");
            assert_text(text, user, message);
        }
    }
    // Byte-exact: the live and the replayed text are the same bytes.
    assert_eq!(
        live_msgs.iter().map(|m| &m.2).collect::<Vec<_>>(),
        hist_msgs.iter().map(|m| &m.2).collect::<Vec<_>>()
    );
}
