//! The Prometheus endpoint over real sockets: `GET /metrics` on its own
//! listener, parsed by a real text-format parser (`prometheus-parse`), its
//! values checked against SHOWSTATS and against what the test did.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::Client;
use support::controller::{Raw, value};
use support::metrics::WithMetrics;

#[test]
fn metrics_agree_with_showstats_and_with_what_happened() {
    let udp_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let udp = udp_port.to_string();
    let m = WithMetrics::start(
        "metrics",
        &["-UDPPort", &udp, "-MaxChannelsPerRequest", "2"],
    );
    let daemon = &m.daemon;
    let mut stream = daemon.get("/push/s1/xhrinteractive/c");
    daemon.wait_subscribers("c", 1);
    let first = daemon.publish("c", "one");
    daemon.publish("c", "two");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(b"ADDMESSAGE c three", ("127.0.0.1", udp_port))
        .unwrap();
    stream.wait_for("\"three\"");
    // A resume, a refusal by a limit, a takeover.
    let resumed =
        Client::get(daemon.sub, &format!("/push/p/simplepoll/c.r{first}")).read_to_close();
    assert!(resumed.contains("\"two\""), "{resumed}");
    let refused = Client::get(daemon.sub, "/push/p/simplepoll/a/b/c").read_to_close();
    assert!(refused.starts_with("HTTP/1.1 400 Bad Request"), "{refused}");
    let mut newer = daemon.get("/push/s1/xhrinteractive/c.b3");
    newer.wait_for("\"three\"");
    stream.read_to_close();

    let mut ctl = Raw::connect(daemon.ctl);
    let deadline = std::time::Instant::now() + support::WAIT;
    // Wait for the replaced stream, and the publishers' connections (closed
    // by the client, so the daemon may not have seen them end yet), to be
    // gone from the table.
    let (stats, scrape) = loop {
        let stats = ctl.ask(b"SHOWSTATS\n", b"--EOT--\r\n");
        let scrape = m.scrape();
        if value(&stats, "current_subscribers").as_deref() == Some("1")
            && value(&stats, "current_controllers").as_deref() == Some("1")
            && scrape.must("meteord_controllers", &[]) == 1
        {
            break (stats, scrape);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&stats)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stat = |key: &str| -> u64 {
        value(&stats, key)
            .unwrap_or_else(|| panic!("no {key}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        scrape.must("meteord_subscribers", &[]),
        stat("current_subscribers")
    );
    assert_eq!(
        scrape.must("meteord_controllers", &[]),
        stat("current_controllers")
    );
    assert_eq!(scrape.must("meteord_controllers", &[]), 1);
    let published = scrape.must(
        "meteord_messages_published_total",
        &[("source", "controller")],
    ) + scrape.must("meteord_messages_published_total", &[("source", "udp")]);
    assert_eq!(published, stat("unique_messages"));
    assert_eq!(
        scrape.must("meteord_messages_published_total", &[("source", "udp")]),
        1
    );
    assert_eq!(
        scrape.must("meteord_deliveries_total", &[("transport", "classic")]),
        stat("messages_served")
    );
    // s1 got 3, the resume from the first 3, the newer stream 3 (.b3).
    assert_eq!(stat("messages_served"), 9);
    // SHOWSTATS shows the bytes before its own reply; the scrape after it
    // counts that reply too.
    assert_eq!(
        scrape.must("meteord_sent_bytes_total", &[]),
        stat("total_outbound_bytes") + stats.len() as u64
    );
    assert_eq!(
        scrape.must("meteord_received_bytes_total", &[]),
        stat("total_inbound_bytes")
    );
    assert_eq!(
        scrape.must(
            "meteord_connections_accepted_total",
            &[("port", "subscriber")]
        ),
        stat("subscriber_connections_accepted")
    );
    assert_eq!(
        scrape.must("meteord_connections", &[("transport", "classic")]),
        1
    );
    assert_eq!(
        scrape.must("meteord_connections", &[("transport", "controller")]),
        1
    );
    assert_eq!(scrape.must("meteord_channels", &[]), 1);
    assert_eq!(scrape.must("meteord_history_messages", &[]), 3);
    assert_eq!(scrape.must("meteord_history_bytes", &[]), 11);
    assert_eq!(
        scrape.must("meteord_resumes_total", &[("result", "full")]),
        1
    );
    assert_eq!(
        scrape.must("meteord_resumes_total", &[("result", "gap")]),
        0
    );
    assert_eq!(
        scrape.must("meteord_closes_total", &[("reason", "takeover")]),
        1
    );
    assert_eq!(
        scrape.must("meteord_closes_total", &[("reason", "lagged")]),
        0
    );
    assert_eq!(
        scrape.must(
            "meteord_limit_refusals_total",
            &[("limit", "max_channels_per_request")]
        ),
        1
    );
    assert_eq!(
        scrape.must(
            "meteord_limit_refusals_total",
            &[("limit", "controller_allow")]
        ),
        0
    );
    // Conventions: counters end in _total, and only they do.
    for (name, kind) in scrape.types() {
        assert!(name.starts_with("meteord_"), "{name}");
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name} is a {kind}"
        );
    }
}

#[test]
fn a_resume_past_the_history_counts_as_a_gap() {
    let m = WithMetrics::start("metrics-gap", &["-MaxMessagesPerChannel", "2"]);
    let first = m.daemon.publish("g", "1");
    for text in ["2", "3", "4"] {
        m.daemon.publish("g", text);
    }
    Client::get(m.daemon.sub, &format!("/push/p/simplepoll/g.r{first}")).read_to_close();
    let scrape = m.scrape();
    assert_eq!(
        scrape.must("meteord_resumes_total", &[("result", "gap")]),
        1
    );
    assert_eq!(
        scrape.must("meteord_resumes_total", &[("result", "full")]),
        0
    );
    assert_eq!(scrape.must("meteord_history_messages", &[]), 2);
}

#[test]
fn only_get_metrics_is_served() {
    let m = WithMetrics::start("metrics-http", &[]);
    assert_eq!(
        m.raw(b"GET / HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 404 Not Found\r\nServer: meteord\r\nContent-Type: text/plain; \
         charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\nnot found: try /metrics\n"
    );
    let ok = m.raw(b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(
        ok.starts_with(
            "HTTP/1.1 200 OK\r\nServer: meteord\r\nContent-Type: text/plain; version=0.0.4; \
             charset=utf-8\r\nContent-Length: "
        ),
        "{ok}"
    );
    let scrape = m.scrape();
    assert!(scrape.must("meteord_uptime_seconds", &[]) < 60);
    // The controller port is not the metrics port: nothing there is counted.
    assert_eq!(scrape.must("meteord_controllers", &[]), 0);
}
