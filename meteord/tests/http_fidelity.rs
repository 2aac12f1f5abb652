//! The subscriber port answers what the original Meteor answers, byte for
//! byte, over TCP against the real binary (built-in configuration = the
//! shipped `conf/meteord.conf`, whose defaults outside the mode sections are
//! the original's): static documents and their 404, other methods and
//! garbage, `/disconnect/`, the stream path's edge cases, how the head is
//! read, and what a head that never completes gets. Each fact was checked
//! against the original running beside ours.

mod support;

use std::io::Write;
use std::time::Duration;

use support::http::{answer, exchange};
use support::{Client, Daemon, write_file};

/// The original's fixed header set for documents, after the status line.
fn document_head(status: &str, content_type: &str, len: usize) -> String {
    format!(
        "HTTP/1.1 {status}\r\n\
         Server: meteord\r\n\
         Content-Type: {content_type}; charset=utf-8\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache, no-store, must-revalidate\r\n\
         Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
         Content-length: {len}\r\n\
         \r\n"
    )
}

/// The original's static 404: that header set and an empty body.
fn static_404() -> String {
    document_head("404 Not Found", "text/html", 0)
}

/// The default HeaderTemplate with `status`, then the default footer: what
/// the original answers with no mode (other methods, garbage, disconnect).
fn default_answer(status: &str) -> String {
    format!("HTTP/1.1 {status}\r\n\r\n\r\n</body></html>")
}

/// What a poll in the shipped `simplepoll` mode answers with no message.
const EMPTY_SIMPLEPOLL: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\nMeteor.clearpoll();\r\n";

/// The same, rendered as a 404 (a stream request with no valid channel).
const SIMPLEPOLL_404: &str = "HTTP/1.1 404 Not Found\r\nContent-Type: text/html; charset=utf-8\r\n\r\nMeteor.clearpoll();\r\n";

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

fn docs_daemon(name: &str, extra: &[&str]) -> Daemon {
    let daemon = Daemon::start(name, extra);
    let docs = daemon.dir.join("docs");
    write_file(&docs.join("app.js"), "var x = 1;\n");
    write_file(&docs.join("index.html"), "<p>index</p>\n");
    write_file(&docs.join("sub/index.html"), "sub index\n");
    daemon
}

#[test]
fn a_static_404_has_content_length_0_and_no_body() {
    let daemon = docs_daemon("s404", &[]);
    for path in [
        "/nope.html",
        "/a..b.js",
        "/app%2ejs",
        "/app.js#top",
        "/sub/../app.js",
        "http://test/app.js",
        "/DISCONNECT/abc",
        "/disconnect/",
    ] {
        assert_eq!(answer(daemon.sub, &get(path)), static_404(), "{path}");
    }
}

#[test]
fn documents_have_the_originals_header_set_and_server_name() {
    let daemon = docs_daemon("s200", &[]);
    let app = format!(
        "{}var x = 1;\n",
        document_head("200 OK", "text/javascript", 11)
    );
    for request in [
        get("/app.js"),
        get("/app.js?v=1"),
        get("/app.js/"),
        get("//./app.js"),
        b"GET app.js HTTP/1.1\r\n\r\n".to_vec(),
    ] {
        assert_eq!(
            answer(daemon.sub, &request),
            app,
            "{}",
            String::from_utf8_lossy(&request)
        );
    }
    let index = format!("{}<p>index</p>\n", document_head("200 OK", "text/html", 13));
    assert_eq!(answer(daemon.sub, &get("/")), index);
    assert_eq!(
        answer(daemon.sub, &get("/sub")),
        format!("{}sub index\n", document_head("200 OK", "text/html", 10))
    );
}

#[test]
fn includes_are_taken_from_the_root_and_not_expanded_twice() {
    let daemon = docs_daemon("ssi", &[]);
    let docs = daemon.dir.join("docs");
    write_file(&docs.join("b.html"), "ROOT-B");
    write_file(&docs.join("parts/b.html"), "PARTS-B");
    write_file(
        &docs.join("parts/a.html"),
        "[<!--#include virtual=\"b.html\"-->]",
    );
    write_file(
        &docs.join("nest.html"),
        "x<!--#include virtual=\"/parts/a.html\" -->y",
    );
    write_file(
        &docs.join("sp.html"),
        "v<!--#include virtual =\"b.html\"-->w<!--#include virtual= \"b.html\"-->",
    );
    let body = |path: &str| {
        let text = answer(daemon.sub, &get(path));
        text.split_once("\r\n\r\n").unwrap().1.to_string()
    };
    assert_eq!(body("/parts/a.html"), "[ROOT-B]");
    // An .shtml page is HTML, includes expanded.
    write_file(
        &docs.join("page.shtml"),
        "<!--#include virtual=\"b.html\"-->!",
    );
    assert_eq!(
        answer(daemon.sub, &get("/page.shtml")),
        format!("{}ROOT-B!", document_head("200 OK", "text/html", 7))
    );
    assert_eq!(body("/nest.html"), "x[<!--#include virtual=\"b.html\"-->]y");
    assert_eq!(
        body("/sp.html"),
        "vROOT-Bw<!--#include virtual= \"b.html\"-->"
    );
}

#[test]
fn other_methods_and_garbage_get_the_default_404() {
    let daemon = docs_daemon("methods", &[]);
    for request in [
        &b"HEAD /app.js HTTP/1.1\r\n\r\n"[..],
        b"HEAD /push/h/simplepoll/c HTTP/1.1\r\n\r\n",
        b"POST /push/h/longpoll/c HTTP/1.1\r\n\r\n",
        b"POST /app.js HTTP/1.1\r\nContent-Length: 7\r\n\r\nuser=ab",
        b"PUT /x HTTP/1.1\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\n\r\n",
        b"BREW /pot HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01garbage\r\n\r\n",
        b"get /app.js HTTP/1.1\r\n\r\n",
        b"GET ?x HTTP/1.1\r\n\r\n",
        b"GET\r\n\r\n",
        b"\r\n",
    ] {
        assert_eq!(
            answer(daemon.sub, request),
            default_answer("404 Not Found"),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn get_is_looked_for_anywhere_in_the_head() {
    let daemon = docs_daemon("anywhere", &[]);
    let app = format!(
        "{}var x = 1;\n",
        document_head("200 OK", "text/javascript", 11)
    );
    assert_eq!(answer(daemon.sub, b"FORGET /app.js HTTP/1.1\r\n\r\n"), app);
    assert_eq!(
        answer(daemon.sub, b"POST /x HTTP/1.1\r\nX-A: GET /app.js\r\n\r\n"),
        app
    );
    assert_eq!(answer(daemon.sub, b"GET\t /app.js HTTP/1.1\r\n\r\n"), app);
    // The stream pattern ignores case, GET included.
    assert_eq!(
        answer(daemon.sub, b"get /push/h/simplepoll/c HTTP/1.1\r\n\r\n"),
        EMPTY_SIMPLEPOLL
    );
}

#[test]
fn disconnect_answers_with_the_default_templates() {
    let daemon = Daemon::start("disc", &[]);
    let mut stream = daemon.get("/push/gone/xhrinteractive/chat");
    let mut other = daemon.get("/push/GONE/xhrinteractive/chat");
    daemon.wait_subscribers("chat", 2);
    for path in ["/disconnect/nobody", "/disconnect/gone?x=1"] {
        assert_eq!(
            answer(daemon.sub, &get(path)),
            default_answer("200 OK"),
            "{path}"
        );
    }
    assert!(
        stream.idle_for(Duration::from_millis(200)),
        "ids are compared as written"
    );
    assert_eq!(
        answer(daemon.sub, &get("/disconnect/gone")),
        default_answer("200 OK")
    );
    assert!(
        stream
            .read_to_close()
            .ends_with("\r\n<script>eof();</script>\r\n</body></html>")
    );
    daemon.wait_subscribers("chat", 1);
    assert!(
        other.idle_for(Duration::from_millis(100)),
        "GONE is another subscriber"
    );
}

#[test]
fn hostids_are_case_sensitive() {
    let daemon = Daemon::start("hostcase", &[]);
    let mut lower = daemon.get("/push/same/iframe/chat");
    daemon.wait_subscribers("chat", 1);
    let mut upper = daemon.get("/push/SAME/iframe/chat");
    daemon.wait_subscribers("chat", 2);
    assert!(lower.idle_for(Duration::from_millis(200)));
    let id = daemon.publish("chat", "both");
    lower.wait_for(&format!("p({id},\"chat\",\"both\")"));
    upper.wait_for(&format!("p({id},\"chat\",\"both\")"));
}

#[test]
fn stream_path_edge_cases() {
    let daemon = Daemon::start("paths", &[]);
    let ok = [
        "/push/h1/simplepoll/c",
        "/PUSH/h1/simplepoll/c",
        "/push/H1/simplepoll/c",
        "/push/h1/simplepoll/c/",
        "/push/h1/simplepoll/c?x=1",
        "/push/h1/simplepoll/c%20d",
        "/push/h1/simplepoll/ch!at",
        "/push/h1/simplepoll/a b",
        "/push/h1/simplepoll/c.b",
    ];
    for path in ok {
        assert_eq!(answer(daemon.sub, &get(path)), EMPTY_SIMPLEPOLL, "{path}");
    }
    for request in [
        &b"GET /push/h1/simplepoll/c\r\n\r\n"[..],
        b"GET /push/h1/simplepoll/c HTTP/1.0\r\n\r\n",
        b"GET /push/h1/simplepoll/c HTTP/1.1\n\n",
    ] {
        assert_eq!(answer(daemon.sub, request), EMPTY_SIMPLEPOLL);
    }
    // An unknown (here: upper-case) mode gets the defaults, Persist 0.
    assert_eq!(
        answer(daemon.sub, &get("/push/h1/SIMPLEPOLL/c")),
        default_answer("200 OK")
    );
    for path in ["/push/h1/simplepoll//", "/push/h1/simplepoll/bad.x"] {
        assert_eq!(answer(daemon.sub, &get(path)), SIMPLEPOLL_404, "{path}");
    }
    for path in [
        "/push/bad-host!/longpoll/chat",
        "/push/h1/my_mode/c",
        "/push/h1/longpoll/",
        "/push/h1/longpoll",
        "http://test/push/h1/simplepoll/c",
    ] {
        assert_eq!(answer(daemon.sub, &get(path)), static_404(), "{path}");
    }
    // What the run of channel bytes stops at is not part of the name.
    let id = daemon.publish("ch", "cut");
    let text = answer(daemon.sub, &get("/push/h1/simplepoll/ch.h!at"));
    assert!(
        text.contains(&format!("Meteor.process({id},\"ch\",\"cut\");")),
        "{text}"
    );
}

#[test]
fn the_head_may_come_in_pieces_and_only_the_first_request_counts() {
    let daemon = docs_daemon("pieces", &[]);
    assert_eq!(
        exchange(
            daemon.sub,
            &[
                b"GET /push/h1/simp",
                b"lepoll/c HTTP/1.1\r",
                b"\nHost: x\r\n\r",
                b"\n"
            ]
        ),
        EMPTY_SIMPLEPOLL
    );
    let app = format!(
        "{}var x = 1;\n",
        document_head("200 OK", "text/javascript", 11)
    );
    assert_eq!(
        answer(
            daemon.sub,
            b"GET /app.js HTTP/1.1\r\n\r\nGET /index.html HTTP/1.1\r\n\r\n"
        ),
        app
    );
    assert_eq!(answer(daemon.sub, b"GET /app.js HTTP/1.1\r\n\r\nxyz"), app);
    assert_eq!(
        answer(
            daemon.sub,
            b"GET /push/h1/simplepoll/c HTTP/1.1\r\n\r\nGET /index.html HTTP/1.1\r\n\r\n"
        ),
        EMPTY_SIMPLEPOLL
    );
}

#[test]
fn a_head_that_never_completes_gets_the_default_footer_only() {
    let daemon = Daemon::start("nohead", &["-HeaderTimeout", "1"]);
    for request in [
        &b"GET /push/h/iframe/c HTTP/1.1\r\nHost: x\r\n"[..],
        b"GET /app.js\rHTTP/1.1\r\n\r\n",
    ] {
        let started = std::time::Instant::now();
        assert_eq!(answer(daemon.sub, request), "</body></html>");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // Past our size bound the head is given up the same way.
    let mut big = Client::raw(daemon.sub, b"GET / HTTP/1.1\r\n");
    let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
    for _ in 0..40 {
        if big.stream.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    assert_eq!(big.read_to_close(), "</body></html>");
}

#[test]
fn a_persistent_request_without_a_valid_channel_still_replaces_its_hostid() {
    let daemon = Daemon::start("kick", &[]);
    let mut first = daemon.get("/push/k/xhrinteractive/chat");
    daemon.wait_subscribers("chat", 1);
    let text = answer(daemon.sub, &get("/push/k/xhrinteractive/bad.x"));
    assert!(
        text.starts_with("HTTP/1.1 404 Not Found\r\n\r\n....") && text.ends_with("</body></html>")
    );
    assert!(
        first
            .read_to_close()
            .ends_with("<script>eof();</script>\r\n</body></html>")
    );
}

#[test]
fn the_user_agent_is_taken_as_the_original_takes_it() {
    let daemon = Daemon::start("ua", &[]);
    let _absent = Client::raw(daemon.sub, b"GET /push/ua1/iframe/c HTTP/1.1\r\n\r\n");
    let _spaced = Client::raw(
        daemon.sub,
        b"GET /push/ua2/iframe/c HTTP/1.1\r\nUser-Agent:  two  \r\n\r\n",
    );
    let _first = Client::raw(
        daemon.sub,
        b"GET /push/ua3/iframe/c HTTP/1.1\r\nX-User-Agent: evil\r\nUser-Agent: good\r\n\r\n",
    );
    daemon.wait_subscribers("c", 3);
    let list = daemon.controller().command("LISTSUBSCRIBERS");
    let agent = |hostid: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{hostid} ")))
            .and_then(|l| l.split_once(" \""))
            .map(|(_, ua)| ua.trim_end_matches('"').to_string())
            .unwrap_or_else(|| panic!("{hostid} not in {list:?}"))
    };
    assert_eq!(agent("ua1"), "-");
    assert_eq!(agent("ua2"), " two  ");
    assert_eq!(agent("ua3"), "evil");
}

#[test]
fn close_on_event_as_the_original_does_it() {
    let config = "FooterTemplate <end>\n[lp2]\nPersist 1\nCloseOnEvent 1\n[longpoll]\nPersist 1\nCloseOnEvent 0\n";
    let daemon = Daemon::start_with_config("closeon", config, &[]);
    daemon.publish("x", "m1");
    // A mode named longpoll ends after its backlog, whatever CloseOnEvent says.
    let mut named = daemon.get("/push/b/longpoll/x.h");
    assert!(named.read_to_close().ends_with("m1\");</script>\r\n<end>"));
    // Another CloseOnEvent mode keeps going after its backlog...
    let mut other = daemon.get("/push/a/lp2/x.h");
    other.wait_for("m1");
    let mut live = daemon.get("/push/d/lp2/y");
    let mut named_live = daemon.get("/push/e/longpoll/y");
    daemon.wait_subscribers("x", 1);
    daemon.wait_subscribers("y", 2);
    assert!(other.idle_for(Duration::from_millis(200)));
    // ...and ends after exactly one live message.
    let m3 = daemon.publish("x", "m3");
    assert!(
        other
            .read_to_close()
            .ends_with(&format!("<script>p({m3},\"x\",\"m3\");</script>\r\n<end>"))
    );
    let mut ctl = daemon.controller();
    ctl.send(b"ADDMESSAGE y n1\nADDMESSAGE y n2\n");
    let (n1, n2) = (ctl.read_reply(), ctl.read_reply());
    let n1 = n1.trim_start_matches("OK\t").trim_end().to_string();
    let n2 = n2.trim_start_matches("OK\t").trim_end().to_string();
    assert_eq!(
        live.read_to_close(),
        format!("HTTP/1.1 200 OK\r\n\r\n\r\n<script>p({n1},\"y\",\"n1\");</script>\r\n<end>")
    );
    named_live.wait_for(&format!("p({n2},\"y\",\"n2\")"));
    assert!(
        named_live.idle_for(Duration::from_millis(100)),
        "CloseOnEvent 0 stays open"
    );
}

#[test]
fn server_placeholder_says_meteord() {
    let daemon = Daemon::start("server", &[]);
    let mut iframe = daemon.get("/push/s/iframe/c");
    iframe.wait_for("<body>");
    assert!(
        iframe
            .text()
            .starts_with("HTTP/1.1 200 OK\r\nServer: meteord\r\n")
    );
}

#[test]
fn connections_past_the_limit_get_an_empty_503() {
    let daemon = Daemon::start("limit503", &["-MaxConnections", "2"]);
    let held: Vec<Client> = (0..2)
        .map(|i| daemon.get(&format!("/push/h{i}/xhrinteractive/c")))
        .collect();
    // The controller shares the limit, so wait without one.
    std::thread::sleep(Duration::from_millis(300));
    let refused = answer(daemon.sub, &get("/push/x/xhrinteractive/c"));
    assert_eq!(
        refused,
        document_head("503 Service Unavailable", "text/html", 0)
    );
    drop(held);
}

#[test]
fn a_document_root_of_slash_serves_nothing() {
    let daemon = Daemon::start("slashroot", &["-SubscriberDocumentRoot", "/"]);
    for path in ["/etc/passwd", "/", "/tmp/"] {
        assert_eq!(answer(daemon.sub, &get(path)), static_404(), "{path}");
    }
}

#[test]
fn current_subscribers_counts_every_open_subscriber_connection() {
    let daemon = docs_daemon("counting", &[]);
    let stat = |daemon: &Daemon| {
        let text = daemon.controller().command("SHOWSTATS");
        text.lines()
            .find_map(|l| l.strip_prefix("current_subscribers: "))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    let _stream = daemon.get("/push/s/xhrinteractive/c");
    let _pending = Client::raw(daemon.sub, b"GET /app.js HTTP/1.1\r\n");
    daemon.wait_subscribers("c", 1);
    assert_eq!(stat(&daemon), "2", "a stream and a head still coming");
    assert_eq!(
        answer(daemon.sub, &get("/push/p/simplepoll/c")),
        EMPTY_SIMPLEPOLL
    );
    assert!(answer(daemon.sub, &get("/app.js")).starts_with("HTTP/1.1 200 OK\r\n"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stat(&daemon) != "2" {
        assert!(
            std::time::Instant::now() < deadline,
            "closed ones still counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
