//! The daemon's life and its defences, against the real binary: restarts
//! (ids never go back), signals, static documents, hostile HTTP input,
//! connection limits, a second instance.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::process::{ReservedPort, Scratch};
use support::{Client, Daemon, WAIT, write_file};

#[test]
fn ids_continue_after_a_clean_restart_and_never_go_back_after_a_crash() {
    let daemon = Daemon::start("restart", &[]);
    let before = daemon.publish("c", "a");
    daemon.publish("c", "b");
    let daemon = daemon.restart();
    let after = daemon.publish("c", "c");
    assert_eq!(after, before + 2, "a clean stop records the exact next id");

    // A crash (SIGKILL) skips ahead instead of repeating.
    daemon.signal("KILL");
    std::thread::sleep(Duration::from_millis(200));
    let daemon = daemon.restart();
    let after_crash = daemon.publish("c", "d");
    assert!(after_crash > after, "{after_crash} > {after}");

    // A client resuming with .r<next> after the restart misses nothing new.
    let mut poll = daemon.get(&format!("/push/r/longpoll/c.r{}", after_crash + 1));
    daemon.wait_subscribers("c", 1);
    let next = daemon.publish("c", "e");
    assert!(
        poll.read_to_close()
            .contains(&format!("Meteor.process({next},\"c\",\"e\")"))
    );
}

#[test]
fn sigterm_sends_the_shutdown_message_and_exits_zero() {
    let mut daemon = Daemon::start("term", &[]);
    let mut iframe = daemon.get("/push/a/iframe/c");
    let mut flash = daemon.get("/push/b/flash/c");
    daemon.wait_subscribers("c", 2);
    assert_eq!(daemon.stop(), Some(0));
    assert!(
        iframe
            .read_to_close()
            .ends_with("<script>eof();</script>\r\n</body></html>")
    );
    assert!(flash.read_to_close().ends_with("x\0"));
}

#[test]
fn sighup_reloads_the_configuration_without_dropping_subscribers() {
    let dir = support::scratch("hup");
    let conf = dir.join("meteord.conf");
    write_file(&conf, "Persist 1\nMessageTemplate old:~text~\\n\n");
    let daemon = Daemon::start_in(
        dir.clone(),
        &["-ConfigFileLocation", &conf.display().to_string()],
    );
    let mut client = daemon.get("/push/a/any/c");
    daemon.wait_subscribers("c", 1);
    daemon.publish("c", "one");
    client.wait_for("old:one\n");
    write_file(&conf, "Persist 1\nMessageTemplate new:~text~\\n\n");
    daemon.signal("HUP");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        daemon.publish("c", "two");
        client.idle_for(Duration::from_millis(50));
        if client.text().contains("new:two\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reload never took effect: {}",
            client.text()
        );
    }
    assert!(
        client.idle_for(Duration::from_millis(50)),
        "the subscriber stayed connected"
    );

    // A broken file is refused and the running configuration kept.
    write_file(&conf, "NoSuchParameter 1\n");
    daemon.signal("HUP");
    let deadline = std::time::Instant::now() + WAIT;
    while !daemon.log_text().contains("NoSuchParameter") {
        assert!(std::time::Instant::now() < deadline, "no error logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.publish("c", "three");
    client.wait_for("new:three\n");
}

#[test]
fn sigusr1_clears_history_but_not_the_id_sequence() {
    let daemon = Daemon::start("usr1", &[]);
    let first = daemon.publish("c", "a");
    daemon.signal("USR1");
    let mut ctl = daemon.controller();
    let deadline = std::time::Instant::now() + WAIT;
    // As the original: a channel left with no subscriber goes at once.
    while ctl.command("LISTCHANNELS") != "OK\r\n--EOT--\r\n" {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ctl.publish("c", "b"), first + 1);
}

fn fixture_root() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/docroot").to_string()
}

#[test]
fn static_documents_types_includes_and_traversal() {
    let daemon = Daemon::start("docs", &["-SubscriberDocumentRoot", &fixture_root()]);
    let get = |path: &str| {
        let mut c = daemon.get(path);
        c.read_to_close();
        c.text()
    };
    let index = get("/");
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    for header in [
        "Content-Type: text/html; charset=utf-8\r\n",
        "Pragma: no-cache\r\n",
        "Cache-Control: no-cache, no-store, must-revalidate\r\n",
        "Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n",
        "Content-length: ",
    ] {
        assert!(index.contains(header), "{header}");
    }
    assert!(index.contains("<h1>included header</h1>"));
    assert!(get("/app.js").contains("Content-Type: text/javascript; charset=utf-8\r\n"));
    assert!(get("/style.css").contains("Content-Type: text/css; charset=utf-8\r\n"));
    assert!(get("/sub/").contains("sub index"));
    for bad in [
        "/escape.toml",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/parts/../app.js",
        "/nope.html",
        "//etc/passwd",
        "/etc/passwd",
    ] {
        assert!(get(bad).starts_with("HTTP/1.1 404 Not Found\r\n"), "{bad}");
    }
    let body_len = |text: &str| text.split_once("\r\n\r\n").map(|(_, b)| b.len()).unwrap();
    let declared = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("Content-length: "))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap()
    };
    let app = get("/app.js");
    assert_eq!(body_len(&app), declared(&app));
}

#[test]
fn a_changed_file_is_never_served_stale() {
    let dir = support::scratch("fresh");
    let root = dir.join("docs");
    write_file(&root.join("page.html"), "version one");
    let daemon = Daemon::start_in(dir.clone(), &[]);
    let get = || {
        let mut c = daemon.get("/page.html");
        c.read_to_close();
        c.body()
    };
    assert_eq!(get(), "version one");
    assert_eq!(get(), "version one");
    write_file(&root.join("page.html"), "version two, longer");
    assert_eq!(get(), "version two, longer");
    daemon.signal("USR2");
    write_file(&root.join("page.html"), "three");
    assert_eq!(get(), "three");
}

fn status_of(daemon: &Daemon, request: &[u8]) -> String {
    let mut c = Client::raw(daemon.sub, request);
    c.read_to_close()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn hostile_http_gets_the_originals_answers_and_hurts_nobody() {
    let daemon = Daemon::start("hostile", &["-HeaderTimeout", "1"]);
    let mut stream = daemon.get("/push/ok/xhrinteractive/c");
    daemon.wait_subscribers("c", 1);

    // Garbage and other methods: the default header as a 404, then the
    // default footer, as the original answers them.
    for request in [
        &b"\x16\x03\x01garbage\r\n\r\n"[..],
        b"POST /push/a/b/c HTTP/1.1\r\n\r\n",
    ] {
        let mut c = Client::raw(daemon.sub, request);
        assert_eq!(
            c.read_to_close(),
            "HTTP/1.1 404 Not Found\r\n\r\n\r\n</body></html>"
        );
    }
    // A long request line and many headers are read like any other head
    // (here: documents that do not exist).
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
    assert_eq!(
        status_of(&daemon, long.as_bytes()),
        "HTTP/1.1 404 Not Found"
    );
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(
        status_of(&daemon, many.as_bytes()),
        "HTTP/1.1 404 Not Found"
    );

    // Headers dribbled forever: cut off after HeaderTimeout with what the
    // original's housekeeping writes, the default footer.
    let mut slow = TcpStream::connect(daemon.sub).unwrap();
    slow.set_read_timeout(Some(WAIT)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut reply = String::new();
    for _ in 0..30 {
        if slow.write_all(b"X").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = slow.read_to_string(&mut reply);
    assert_eq!(reply, "</body></html>");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The well-behaved subscriber never noticed.
    let id = daemon.publish("c", "still here");
    stream.wait_for(&format!("p({id},\"c\",\"still here\")"));
}

#[test]
fn connections_over_the_limit_are_refused_and_the_daemon_recovers() {
    let daemon = Daemon::start("limit", &["-MaxConnections", "4"]);
    let held: Vec<Client> = (0..4)
        .map(|i| daemon.get(&format!("/push/h{i}/xhrinteractive/c")))
        .collect();
    // The controller shares the limit, so check by subscriber port only.
    let mut over = Client::raw(daemon.sub, b"GET /push/x/xhrinteractive/c HTTP/1.1\r\n\r\n");
    assert!(over.read_to_close().starts_with("HTTP/1.1 503"));
    drop(held);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut again = daemon.get("/push/y/simplepoll/c");
        if again.read_to_close().starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never recovered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_instance_on_the_same_ports_fails_clearly() {
    let daemon = Daemon::start("twice", &[]);
    let output = Command::new(support::bin())
        .args(support::DEBUG_ARGS)
        .args(support::BUILTIN)
        .args(support::LOOPBACK_ANY_PORT)
        .args(["-SubscriberPort", &daemon.sub.port().to_string()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Address already in use") && stderr.contains("SubscriberPort"),
        "{stderr}"
    );
}

#[test]
fn bad_configuration_exits_64_naming_the_parameter() {
    let output = Command::new(support::bin())
        .args(["-NoSuchThing", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("NoSuchThing"));
    let help = Command::new(support::bin()).arg("-help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for name in [
        "SubscriberPort",
        "MaxMessagesPerChannel",
        "PingInterval",
        "ControllerIP",
        "StateFile",
    ] {
        assert!(text.contains(name), "{name}");
    }
}

#[test]
fn a_tiny_file_descriptor_limit_refuses_politely_and_survives() {
    // 80 descriptors: the daemon keeps 64 in reserve, so only a handful of
    // connections fit; the rest must be refused without harming anything.
    let mut child = Command::new("prlimit")
        .args(["--nofile=80:80", "--", support::bin()])
        .args(support::DEBUG_ARGS)
        .args(support::BUILTIN)
        .args(support::LOOPBACK_ANY_PORT)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) runs meteord");
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("meteord listening"))
        .expect("listening line");
    assert!(listening.contains("max_connections=16"), "{listening}");
    let port = |key: &str| -> u16 {
        let start = listening.find(key).unwrap() + key.len();
        let addr: std::net::SocketAddr = listening[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        addr.port()
    };
    let sub: std::net::SocketAddr = ([127, 0, 0, 1], port("subscriber=")).into();
    let mut clients: Vec<Client> = (0..40)
        .map(|i| Client::get(sub, &format!("/push/f{i}/xhrinteractive/c")))
        .collect();
    let mut refused = 0;
    for client in clients.iter_mut() {
        client.idle_for(Duration::from_millis(20));
        if client.text().starts_with("HTTP/1.1 503") {
            refused += 1;
        }
    }
    assert!(refused >= 20, "refused {refused} of 40");
    drop(clients);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut again = Client::get(sub, "/push/z/simplepoll/c");
        if again.read_to_close().starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never recovered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn without_foreground_it_detaches_writes_its_pid_file_and_serves() {
    // The daemon detaches, so its log line cannot tell us ephemeral ports:
    // reserve two for it.
    let dir = Scratch::new("detach");
    let pid_file = dir.path().join("meteord.pid");
    let (sub, ctl) = (ReservedPort::new(), ReservedPort::new());
    let started = std::time::Instant::now();
    let output = Command::new(support::bin())
        .args(support::BUILTIN)
        .args(support::LOOPBACK_ANY_PORT)
        .args(["-SubscriberPort", &sub.arg(), "-ControllerPort", &ctl.arg()])
        .args(["-PidFile", &dir.arg("meteord.pid")])
        .args(["-StateFile", &dir.arg("ids")])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        started.elapsed() < WAIT,
        "the starting command returned once the daemon was ready"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "daemon {pid} runs"
    );
    assert_eq!(
        support::Controller::connect(ctl.addr()).command("ADDMESSAGE c x"),
        "OK\t1\r\n"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = std::time::Instant::now() + WAIT;
    while pid_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "pid file not removed on exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_detaching_start_that_fails_says_why_and_exits_non_zero() {
    let dir = Scratch::new("detach-fail");
    let output = Command::new(support::bin())
        .args(support::BUILTIN)
        .args(support::LOOPBACK_ANY_PORT)
        .args(["-PidFile", "/nonexistent-dir/meteord.pid"])
        .args(["-StateFile", &dir.arg("ids")])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent-dir/meteord.pid"), "{stderr}");
}

#[test]
fn shutdown_does_not_wait_for_a_client_that_sends_nothing() {
    let mut daemon = Daemon::start(
        "quiet-client",
        &["-HeaderTimeout", "30", "-ShutdownTimeout", "20"],
    );
    let _silent = TcpStream::connect(daemon.sub).unwrap();
    let mut stream = daemon.get("/push/s/iframe/c");
    daemon.wait_subscribers("c", 1);
    let started = std::time::Instant::now();
    assert_eq!(daemon.stop(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(stream.read_to_close().ends_with("</body></html>"));
}
