//! Subscriber tokens (issue 14) over TCP against the real binary: with
//! `SubscriberTokenChannels private-* staff`, a stream request that names
//! such a channel is answered only with a valid, unexpired HS256 token that
//! covers it (and, with `sub`, only for that hostid); otherwise `403` with a
//! one-line reason and nothing else. The token may come in the query, an
//! `Authorization: Bearer` header or the `meteord_token` cookie. Tokens
//! never reach the log or the controller's listings.

mod support;

use std::time::Duration;

use support::http::answer;
use support::tokens::{ARGS, claims, forbidden, mint, mint_with};
use support::{Client, Daemon};

fn daemon(name: &str) -> Daemon {
    Daemon::start(name, ARGS)
}

fn get_with(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    get_with(path, "")
}

/// A simplepoll answer replaying `messages` (id, channel, text).
fn simplepoll(messages: &[(u64, &str, &str)]) -> String {
    let mut out = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n".to_string();
    for (id, channel, text) in messages {
        out.push_str(&format!(
            "Meteor.process({id},\"{channel}\",\"{text}\");\r\n"
        ));
    }
    out.push_str("Meteor.clearpoll();\r\n");
    out
}

#[test]
fn a_valid_token_reads_the_channel_from_the_query_a_header_or_the_cookie() {
    let daemon = daemon("tok-valid");
    let id = daemon.publish("private-a", "secret");
    let token = mint(&claims(r#"["private-a"]"#, 60));
    let expected = simplepoll(&[(id, "private-a", "secret")]);
    let path = "/push/h1/simplepoll/private-a.h";
    assert_eq!(
        answer(daemon.sub, &get(&format!("{path}?token={token}"))),
        expected
    );
    assert_eq!(
        answer(
            daemon.sub,
            &get(&format!("{path}?nocache=1&token={token}&x"))
        ),
        expected
    );
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(answer(daemon.sub, &get_with(path, &bearer)), expected);
    let cookie = format!("Cookie: theme=dark; meteord_token={token}\r\n");
    assert_eq!(answer(daemon.sub, &get_with(path, &cookie)), expected);
}

#[test]
fn every_rule_refuses_with_its_reason_and_nothing_else() {
    let daemon = daemon("tok-rules");
    daemon.publish("private-a", "secret");
    let path = "/push/h1/simplepoll/private-a.h";
    let query = |token: &str| answer(daemon.sub, &get(&format!("{path}?token={token}")));

    assert_eq!(answer(daemon.sub, &get(path)), forbidden("token required"));
    assert_eq!(query(""), forbidden("token required"));
    let expired = mint(&claims(r#"["private-a"]"#, -1));
    assert_eq!(query(&expired), forbidden("token expired"));
    let other_key = mint_with(
        b"some other secret of 32 bytes...",
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims(r#"["private-a"]"#, 60),
    );
    assert_eq!(query(&other_key), forbidden("token signature invalid"));
    let other_channel = mint(&claims(r#"["private-b","staff"]"#, 60));
    assert_eq!(
        query(&other_channel),
        forbidden("token does not cover the channel")
    );
    let none = format!(
        "{}.{}.",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", // {"alg":"none","typ":"JWT"}
        base64_url(&claims(r#"["private-a"]"#, 60)),
    );
    assert_eq!(query(&none), forbidden("token algorithm refused"));
    let hs512 = mint_with(
        support::tokens::SECRET.as_bytes(),
        r#"{"alg":"HS512"}"#,
        &claims(r#"["private-a"]"#, 60),
    );
    assert_eq!(query(&hs512), forbidden("token algorithm refused"));
    assert_eq!(query("not.a.token"), forbidden("token malformed"));
    let exp = support::controller::now() + 60;
    let bound = mint(&format!(r#"{{"exp":{exp},"ch":["private-*"],"sub":"h2"}}"#));
    assert_eq!(query(&bound), forbidden("token bound to another hostid"));
    let nbf = mint(&format!(
        r#"{{"exp":{exp},"nbf":{exp},"ch":["private-a"]}}"#
    ));
    assert_eq!(query(&nbf), forbidden("token not yet valid"));

    // Bound to the hostid that asks, and covering by prefix: good.
    let good = mint(&format!(r#"{{"exp":{exp},"ch":["private-*"],"sub":"h1"}}"#));
    assert!(query(&good).starts_with("HTTP/1.1 200 OK\r\n"));
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn every_transport_is_refused_alike_and_public_channels_need_nothing() {
    let daemon = daemon("tok-modes");
    daemon.publish("private-a", "secret");
    daemon.publish("news", "public");
    for mode in [
        "iframe",
        "xhrinteractive",
        "longpoll",
        "smartpoll",
        "simplepoll",
        "flash",
        "nosuchmode",
    ] {
        let refused = answer(daemon.sub, &get(&format!("/push/h1/{mode}/private-a.h")));
        assert_eq!(refused, forbidden("token required"), "{mode}");
        let staff = answer(daemon.sub, &get(&format!("/push/h1/{mode}/staff.h")));
        assert_eq!(staff, forbidden("token required"), "{mode}");
        // One private channel refuses the whole request: nothing of the
        // public one either.
        let mixed = answer(
            daemon.sub,
            &get(&format!("/push/h1/{mode}/news.h/private-a.h")),
        );
        assert_eq!(mixed, forbidden("token required"), "{mode}");
    }
    // Patterns match whole names: staffroom and news are public.
    let public = answer(daemon.sub, &get("/push/h1/simplepoll/staffroom.h"));
    assert_eq!(public, simplepoll(&[]));
    let mut news = Client::get(daemon.sub, "/push/h1/simplepoll/news.h");
    assert!(news.read_to_close().contains("\"news\",\"public\""));
    // A token covering only some channels of a request is not enough.
    let token = mint(&claims(r#"["private-a"]"#, 60));
    let partial = answer(
        daemon.sub,
        &get(&format!(
            "/push/h1/simplepoll/private-a.h/staff.h?token={token}"
        )),
    );
    assert_eq!(partial, forbidden("token does not cover the channel"));
}

#[test]
fn a_refused_request_joins_nothing_and_takes_over_no_hostid() {
    let daemon = daemon("tok-takeover");
    let token = mint(&claims(r#"["private-a"]"#, 60));
    let mut owner = daemon.get(&format!(
        "/push/same/xhrinteractive/private-a?token={token}"
    ));
    owner.wait_for("HTTP/1.1 200 OK\r\n");
    daemon.wait_subscribers("private-a", 1);
    // The same hostid without a token: refused before it could replace the
    // owner or join the channel.
    let refused = answer(daemon.sub, &get("/push/same/xhrinteractive/private-a"));
    assert_eq!(refused, forbidden("token required"));
    daemon.wait_subscribers("private-a", 1);
    let id = daemon.publish("private-a", "still-here");
    owner.wait_for(&format!(
        "<script>p({id},\"private-a\",\"still-here\");</script>\r\n"
    ));
    assert!(
        owner.idle_for(Duration::from_millis(100)),
        "the owner stays"
    );
}

#[test]
fn tokens_never_reach_the_log_or_the_listings() {
    let daemon = support::tokens::start_logging_debug("tok-log", ARGS);
    let token = mint(&claims(r#"["private-a"]"#, 60));
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let mut live = daemon.get(&format!("/push/lh/iframe/private-a?token={token}"));
    live.wait_for("HTTP/1.1 200 OK\r\n");
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let mut header = Client::raw(daemon.sub, &get_with("/push/lh2/iframe/private-a", &bearer));
    header.wait_for("HTTP/1.1 200 OK\r\n");
    let expired = mint(&claims(r#"["private-a"]"#, -5));
    answer(
        daemon.sub,
        &get(&format!("/push/lh3/iframe/private-a?token={expired}")),
    );
    daemon.wait_subscribers("private-a", 2);
    let mut ctl = daemon.controller();
    for command in [
        "LISTSUBSCRIBERS",
        "LISTCONNECTIONS",
        "LISTCHANNELS",
        "SHOWSTATS",
    ] {
        let reply = ctl.command(command);
        assert!(!reply.contains(&signature), "{command}: {reply}");
    }
    let log = daemon.log_text();
    assert!(
        log.contains("token refused"),
        "the refusal is logged: {log}"
    );
    let expired_signature = expired.rsplit('.').next().unwrap();
    assert!(
        !log.contains(&signature) && !log.contains(expired_signature),
        "{log}"
    );
    assert!(!log.contains(support::tokens::SECRET), "{log}");
}

#[test]
fn off_by_default_and_closed_without_a_secret() {
    let open = Daemon::start("tok-off", &[]);
    let id = open.publish("private-a", "open");
    let answered = answer(open.sub, &get("/push/h/simplepoll/private-a.h"));
    assert_eq!(answered, simplepoll(&[(id, "private-a", "open")]));

    // Channels without a secret: closed to everyone, and said at start.
    let closed = Daemon::start("tok-nosecret", &["-SubscriberTokenChannels", "private-*"]);
    let token = mint(&claims(r#"["private-a"]"#, 60));
    let path = "/push/h/simplepoll/private-a.h";
    assert_eq!(answer(closed.sub, &get(path)), forbidden("token required"));
    let with_token = answer(closed.sub, &get(&format!("{path}?token={token}")));
    assert_eq!(with_token, forbidden("token signature invalid"));
    let log = closed.log_text();
    assert!(
        log.contains(
            "command line: SubscriberTokenChannels is set but SubscriberTokenSecret is empty: \
             no token can be valid, so those channels are refused to every subscriber"
        ),
        "{log}"
    );
}

#[test]
fn sighup_turns_the_checks_on_for_new_requests_and_keeps_open_streams() {
    let dir = support::scratch("tok-hup");
    let conf = dir.join("meteord.conf");
    support::write_file(&conf, "[xhrinteractive]\nPersist 1\n");
    let daemon = Daemon::start_in(
        dir.clone(),
        &["-ConfigFileLocation", &conf.display().to_string()],
    );
    let mut before = daemon.get("/push/early/xhrinteractive/private-a");
    before.wait_for("HTTP/1.1 200 OK\r\n");
    support::write_file(
        &conf,
        &format!(
            "SubscriberTokenSecret {}\nSubscriberTokenChannels private-*\n[xhrinteractive]\nPersist 1\n",
            support::tokens::SECRET
        ),
    );
    daemon.signal("HUP");
    let deadline = std::time::Instant::now() + support::WAIT;
    while !answer(daemon.sub, &get("/push/late/simplepoll/private-a")).starts_with("HTTP/1.1 403 ")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload never took effect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = mint(&claims(r#"["private-a"]"#, 60));
    let with_token = answer(
        daemon.sub,
        &get(&format!("/push/late/simplepoll/private-a?token={token}")),
    );
    // This file has no simplepoll section: the default templates.
    assert_eq!(with_token, "HTTP/1.1 200 OK\r\n\r\n\r\n</body></html>");
    // A stream opened before is not re-checked: it still gets the channel.
    let id = daemon.publish("private-a", "after-reload");
    before.wait_for(&format!(
        "<script>p({id},\"private-a\",\"after-reload\");</script>\r\n"
    ));
}
