//! The cluster on Redis (issue 13), over real TCP against real binaries and
//! a real `redis-server` each test starts on a free port: one id sequence
//! and the same bytes on every node, resume on another node, UDP publish
//! into the cluster, Redis stopped / restarted / restarted empty / stalled,
//! a late node, two publishers at once.

mod support;

use std::time::{Duration, Instant};

use support::redis::{Redis, line_id, message_lines, node, script_p, tls_node};
use support::{Client, Daemon, WAIT};

/// Read until `client` has `n` message lines; return them.
fn wait_lines(client: &mut Client, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = message_lines(&client.received);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline && !client.closed,
            "wanted {n} messages, got {lines:?} in {:?}",
            client.text()
        );
        client.idle_for(Duration::from_millis(20));
    }
}

/// A SHOWSTATS value.
fn stat(daemon: &Daemon, key: &str) -> Option<String> {
    let reply = daemon.controller().command("SHOWSTATS");
    reply
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .map(str::to_owned)
}

fn wait_state(daemon: &Daemon, state: &str) {
    let deadline = Instant::now() + WAIT;
    while stat(daemon, "cluster_state").as_deref() != Some(state) {
        assert!(
            Instant::now() < deadline,
            "node never {state}: {:?}",
            daemon.controller().command("SHOWSTATS")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn subscribe(daemon: &Daemon, host: &str, channel: &str) -> Client {
    let client = daemon.get(&format!("/push/{host}/xhrinteractive/{channel}"));
    daemon.wait_subscribers(channel.split('.').next().unwrap(), 1);
    client
}

#[test]
fn three_nodes_deliver_one_sequence_with_the_same_bytes() {
    let redis = Redis::start("three");
    let a = node("three-a", &redis, &[]);
    let b = node("three-b", &redis, &[]);
    let c = node("three-c", &redis, &[]);
    let mut on_b = subscribe(&b, "hb", "chat");
    let mut on_c = subscribe(&c, "hc", "chat");
    let ids: Vec<u64> = ["one", "two", "three"]
        .iter()
        .map(|t| a.publish("chat", t))
        .collect();
    assert_eq!(ids, [ids[0], ids[0] + 1, ids[0] + 2], "one sequence");
    let want: Vec<String> = ids
        .iter()
        .zip(["one", "two", "three"])
        .map(|(&id, t)| script_p(id, "chat", t))
        .collect();
    assert_eq!(wait_lines(&mut on_b, 3), want);
    assert_eq!(wait_lines(&mut on_c, 3), want);
    // The next publish, on another node, continues the same sequence.
    assert_eq!(c.publish("chat", "four"), ids[2] + 1);
    // Every node stores the same history: a resume anywhere gets the
    // same bytes.
    for daemon in [&a, &b, &c] {
        // `.r<id>` replays from that id on.
        let mut resumed = daemon.get(&format!("/push/r/xhrinteractive/chat.r{}", ids[1]));
        assert_eq!(
            wait_lines(&mut resumed, 3),
            [
                script_p(ids[1], "chat", "two"),
                script_p(ids[2], "chat", "three"),
                script_p(ids[2] + 1, "chat", "four"),
            ]
        );
    }
    assert_eq!(stat(&a, "cluster_state").as_deref(), Some("connected"));
    assert_eq!(stat(&a, "cluster_publish_errors").as_deref(), Some("0"));
}

#[test]
fn a_udp_datagram_is_published_into_the_cluster_once() {
    let redis = Redis::start("udp");
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port().to_string()
    };
    let a = node("udp-a", &redis, &["-UDPIP", "127.0.0.1", "-UDPPort", &port]);
    let b = node("udp-b", &redis, &[]);
    let mut on_b = subscribe(&b, "hb", "u");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"ADDMESSAGE u by-datagram", a.udp.expect("udp port"))
        .unwrap();
    let first = wait_lines(&mut on_b, 1);
    let id = line_id(&first[0]);
    assert_eq!(first, [script_p(id, "u", "by-datagram")]);
    // Exactly one id was taken for it, in the one sequence.
    assert_eq!(a.publish("u", "next"), id + 1);
    assert_eq!(
        wait_lines(&mut on_b, 2),
        [
            script_p(id, "u", "by-datagram"),
            script_p(id + 1, "u", "next")
        ]
    );
    assert_eq!(
        b.controller().command("LISTCHANNELS"),
        "OK\r\nu(2/1)\r\n--EOT--\r\n"
    );
}

#[test]
fn subscribers_of_a_killed_node_resume_on_another_without_loss_or_duplicate() {
    let redis = Redis::start("kill");
    let mut a = node("kill-a", &redis, &[]);
    let b = node("kill-b", &redis, &[]);
    let mut on_a = subscribe(&a, "h1", "room");
    let first = b.publish("room", "m1");
    b.publish("room", "m2");
    let seen = wait_lines(&mut on_a, 2);
    let last_seen = line_id(&seen[1]);
    // SIGKILL: no goodbye, the browser just loses its connection.
    drop(on_a);
    let _ = a.stop();
    let m3 = b.publish("room", "m3");
    let m4 = b.publish("room", "m4");
    // `.r<id>` replays from that id on: the one after the last seen.
    let mut resumed = b.get(&format!("/push/h1/xhrinteractive/room.r{}", last_seen + 1));
    assert_eq!(
        wait_lines(&mut resumed, 2),
        [script_p(m3, "room", "m3"), script_p(m4, "room", "m4")]
    );
    let m5 = b.publish("room", "m5");
    assert_eq!(
        wait_lines(&mut resumed, 3),
        [
            script_p(m3, "room", "m3"),
            script_p(m4, "room", "m4"),
            script_p(m5, "room", "m5"),
        ]
    );
    assert_eq!(m3, first + 2);
    // Nothing else arrives (no duplicate of m1/m2 or of the live one).
    resumed.idle_for(Duration::from_millis(300));
    assert_eq!(message_lines(&resumed.received).len(), 3);
}

#[test]
fn redis_stopped_publish_is_refused_subscribers_stay_and_everything_arrives_once() {
    let mut redis = Redis::start("outage");
    let a = node("outage-a", &redis, &[]);
    let b = node("outage-b", &redis, &["-PingInterval", "3"]);
    let mut on_b = subscribe(&b, "hb", "news");
    let before = a.publish("news", "before");
    wait_lines(&mut on_b, 1);
    redis.stop();
    // Within the feed's bound the node knows, and refuses at once.
    wait_state(&a, "reconnecting");
    let start = Instant::now();
    let reply = a.controller().command("ADDMESSAGE news lost");
    assert!(
        reply.starts_with("ERR Redis unreachable: ") && reply.ends_with("\r\n"),
        "{reply:?}"
    );
    assert_eq!(reply.matches("\r\n").count(), 1, "{reply:?}");
    assert!(start.elapsed() < Duration::from_millis(500), "not at once");
    // The subscriber on the other node stays connected and keeps its pings.
    let pings_before = on_b.received.len();
    on_b.wait_for_bytes(b"<script>p(-1,\"\");</script>\r\n");
    assert!(on_b.received.len() > pings_before && !on_b.closed);
    redis.start_again();
    wait_state(&a, "connected");
    wait_state(&b, "connected");
    let after = a.publish("news", "after");
    assert!(after > before);
    assert_eq!(
        wait_lines(&mut on_b, 2),
        [
            script_p(before, "news", "before"),
            script_p(after, "news", "after")
        ]
    );
    on_b.idle_for(Duration::from_millis(300));
    assert_eq!(message_lines(&on_b.received).len(), 2, "nothing twice");
    assert_eq!(stat(&a, "cluster_reconnects").as_deref(), Some("1"));
    assert_eq!(stat(&a, "cluster_publish_errors").as_deref(), Some("1"));
    // Redis kept its data: no gap to report.
    assert_eq!(stat(&b, "cluster_gaps").as_deref(), Some("0"));
}

#[test]
fn redis_restarted_empty_ids_keep_increasing_and_the_gap_is_reported() {
    let mut redis = Redis::start("empty");
    let a = node("empty-a", &redis, &[]);
    let b = node("empty-b", &redis, &[]);
    let mut on_a = subscribe(&a, "ha", "c");
    // The later node's clock floor is above the first node's: publish
    // there, so only the floor a has seen through its feed protects it.
    let first = b.publish("c", "one");
    wait_lines(&mut on_a, 1);
    redis.restart_empty();
    wait_state(&a, "connected");
    let deadline = Instant::now() + WAIT;
    let second = loop {
        let reply = a.controller().command("ADDMESSAGE c two");
        if let Some(id) = reply.strip_prefix("OK\t") {
            break id.trim_end().parse::<u64>().unwrap();
        }
        assert!(Instant::now() < deadline, "{reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(second > first, "{second} after {first}");
    assert_eq!(
        wait_lines(&mut on_a, 2),
        [script_p(first, "c", "one"), script_p(second, "c", "two")]
    );
    // The node noticed the new log (it could have missed messages): said,
    // not silent.
    assert_eq!(stat(&a, "cluster_gaps").as_deref(), Some("1"));
    assert!(a.log_text().contains("missed part of the shared log"));
}

#[test]
fn a_node_cut_off_from_redis_catches_up_from_the_log_before_live_messages() {
    let redis = Redis::start("cut");
    let a = node("cut-a", &redis, &[]);
    let b = node("cut-b", &redis, &[]);
    let mut on_b = subscribe(&b, "hb", "k");
    let first = a.publish("k", "k1");
    wait_lines(&mut on_b, 1);
    // b is frozen, then every connection to Redis is cut: b wakes up to
    // dead sockets while a (reconnected) has published on.
    b.signal("STOP");
    let missed: Vec<u64> = ["k2", "k3"].iter().map(|t| a.publish("k", t)).collect();
    assert!(
        redis
            .command(&["CLIENT", "KILL", "TYPE", "normal"])
            .starts_with(':')
    );
    b.signal("CONT");
    wait_state(&b, "connected");
    wait_state(&a, "connected");
    let live = a.publish("k", "k4");
    assert_eq!(
        wait_lines(&mut on_b, 4),
        [
            script_p(first, "k", "k1"),
            script_p(missed[0], "k", "k2"),
            script_p(missed[1], "k", "k3"),
            script_p(live, "k", "k4"),
        ]
    );
    on_b.idle_for(Duration::from_millis(300));
    assert_eq!(message_lines(&on_b.received).len(), 4, "nothing twice");
    assert_eq!(stat(&b, "cluster_reconnects").as_deref(), Some("1"));
    // Caught up from the log itself: nothing was missing from it.
    assert_eq!(stat(&b, "cluster_gaps").as_deref(), Some("0"));
}

#[test]
fn a_node_that_fell_behind_the_trimmed_log_catches_up_from_the_histories() {
    let redis = Redis::start("trim");
    let a = node("trim-a", &redis, &[]);
    let b = node("trim-b", &redis, &[]);
    let mut on_b = subscribe(&b, "hb", "t");
    let first = a.publish("t", "t1");
    wait_lines(&mut on_b, 1);
    // b is frozen while the log moves on and is trimmed past what b has:
    // only the channel histories still hold the stretch it missed.
    b.signal("STOP");
    let ids: Vec<u64> = ["t2", "t3", "t4"]
        .iter()
        .map(|t| a.publish("t", t))
        .collect();
    assert_eq!(
        redis.command(&["XTRIM", "meteord:{m}:log", "MAXLEN", "1"]),
        ":3\r\n"
    );
    b.signal("CONT");
    assert_eq!(
        wait_lines(&mut on_b, 4),
        [
            script_p(first, "t", "t1"),
            script_p(ids[0], "t", "t2"),
            script_p(ids[1], "t", "t3"),
            script_p(ids[2], "t", "t4"),
        ]
    );
    on_b.idle_for(Duration::from_millis(300));
    assert_eq!(message_lines(&on_b.received).len(), 4, "nothing twice");
    assert_eq!(stat(&b, "cluster_gaps").as_deref(), Some("1"));
}

#[test]
fn a_late_node_serves_resumes_from_the_shared_history_first() {
    let redis = Redis::start("late");
    let a = node("late-a", &redis, &[]);
    let x1 = a.publish("x", "x1");
    a.publish("y", "y1");
    let x2 = a.publish("x", "x2");
    let late = node("late-b", &redis, &[]);
    // Nothing is accepted before the shared history is loaded: the first
    // question the late node answers already has all of it.
    assert_eq!(
        late.controller().command("LISTCHANNELS"),
        "OK\r\nx(2/0)\r\ny(1/0)\r\n--EOT--\r\n"
    );
    let mut resumed = late.get(&format!("/push/p/xhrinteractive/x.r{x1}"));
    assert_eq!(
        wait_lines(&mut resumed, 2),
        [script_p(x1, "x", "x1"), script_p(x2, "x", "x2")]
    );
    // Above everything before it (the late node's clock floor may move
    // the sequence on; it never goes back).
    assert!(late.publish("y", "y2") > x2);
}

#[test]
fn a_node_started_while_redis_is_down_serves_refuses_publishes_then_loads() {
    let mut redis = Redis::start("down");
    let up = node("down-up", &redis, &[]);
    let old = up.publish("d", "stored");
    drop(up);
    redis.stop();
    // The node waits a bounded time (5 s) for Redis, then serves anyway.
    let late = node("down-late", &redis, &[]);
    assert_eq!(
        stat(&late, "cluster_state").as_deref(),
        Some("reconnecting")
    );
    let reply = late.controller().command("ADDMESSAGE d refused");
    assert!(reply.starts_with("ERR Redis unreachable: "), "{reply:?}");
    redis.start_again();
    wait_state(&late, "connected");
    // What Redis kept is loaded once it answers.
    let mut resumed = late.get(&format!("/push/p/xhrinteractive/d.r{old}"));
    assert_eq!(wait_lines(&mut resumed, 1), [script_p(old, "d", "stored")]);
    assert!(late.publish("d", "accepted") > old);
}

#[test]
fn two_publishers_on_two_nodes_give_one_order_everywhere() {
    let redis = Redis::start("race");
    let a = node("race-a", &redis, &[]);
    let b = node("race-b", &redis, &[]);
    let c = node("race-c", &redis, &[]);
    let mut subs: Vec<Client> = [&a, &b, &c]
        .iter()
        .enumerate()
        .map(|(i, d)| subscribe(d, &format!("h{i}"), "race"))
        .collect();
    const EACH: usize = 100;
    let publish = |ctl: std::net::SocketAddr, who: &'static str| {
        std::thread::spawn(move || {
            let mut ctl = support::Controller::connect(ctl);
            (0..EACH)
                .map(|i| ctl.publish("race", &format!("{who}{i}")))
                .collect::<Vec<u64>>()
        })
    };
    let from_a = publish(a.ctl, "a");
    let from_b = publish(b.ctl, "b");
    let mut acked: Vec<u64> = from_a.join().unwrap();
    acked.extend(from_b.join().unwrap());
    acked.sort_unstable();
    let orders: Vec<Vec<String>> = subs.iter_mut().map(|s| wait_lines(s, 2 * EACH)).collect();
    assert_eq!(orders[0], orders[1]);
    assert_eq!(orders[0], orders[2]);
    let ids: Vec<u64> = orders[0].iter().map(|l| line_id(l)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order");
    assert_eq!(ids, acked, "every acknowledged id, once");
}

#[test]
fn a_stalled_redis_is_detected_within_the_bound() {
    let redis = Redis::start("stall");
    let a = node("stall-a", &redis, &[]);
    a.publish("s", "ok");
    redis.pause(true);
    let start = Instant::now();
    let reply = a.controller().command("ADDMESSAGE s stalled");
    assert!(reply.starts_with("ERR Redis"), "{reply:?}");
    // PUBLISH_TIMEOUT (2 s) plus slack.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    wait_state(&a, "reconnecting");
    redis.pause(false);
    wait_state(&a, "connected");
    assert!(
        a.controller()
            .command("ADDMESSAGE s back")
            .starts_with("OK\t")
    );
}

#[test]
fn rediss_with_a_password_in_the_url() {
    let redis = Redis::start_tls("tls", "s3cret");
    let a = tls_node("tls-a", &redis);
    let b = tls_node("tls-b", &redis);
    let mut on_b = subscribe(&b, "hb", "secure");
    let id = a.publish("secure", "over-tls");
    assert_eq!(
        wait_lines(&mut on_b, 1),
        [script_p(id, "secure", "over-tls")]
    );
    // The password never reaches the log.
    assert!(a.log_text().contains("rediss://***@127.0.0.1:"));
    assert!(!a.log_text().contains("s3cret"));
}

#[test]
fn without_cluster_redis_showstats_is_the_single_nodes() {
    let single = Daemon::start("single", &[]);
    single.publish("c", "x");
    let stats = single.controller().command("SHOWSTATS");
    assert!(!stats.contains("cluster_"), "{stats}");
}

#[test]
fn a_cluster_redis_that_is_not_a_redis_url_stops_the_start() {
    let out = std::process::Command::new(support::bin())
        .args(support::BUILTIN)
        .args(["-ClusterRedis", "http://:pw@127.0.0.1:1/0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "meteord: command line: parameter ClusterRedis: invalid value \
         \"http://***@127.0.0.1:1/0\": not a redis:// or rediss:// URL\n"
    );
}
