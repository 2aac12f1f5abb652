//! Process-level tests: the real `fcgi-chat` binary spoken to over real
//! FastCGI (our own client in `support/`), with a fake meteord controller.
//! Covers every status, keep-alive, aborts, controller failures, and the
//! three ways of getting a listening socket (TCP, Unix, inherited fd 0).

mod support;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A running responder on a private Unix socket.
struct Responder {
    endpoint: Endpoint,
    _proc: Proc,
    _dir: TempDir,
}

fn responder(controller: &str, extra: &[&str]) -> Responder {
    let dir = TempDir::new("fcgi");
    let sock = dir.path().join("chat.sock");
    let listen = format!("unix:{}", sock.display());
    let mut args = vec![
        "--listen",
        &listen,
        "--controller",
        controller,
        "--timezone",
        "UTC",
    ];
    args.extend_from_slice(extra);
    let endpoint = Endpoint::Unix(sock.clone());
    let proc = spawn_fcgi_chat(&args, &[], &endpoint);
    Responder {
        endpoint,
        _proc: proc,
        _dir: dir,
    }
}

/// Checks `<strong>USER HH:MM:SS</strong> MESSAGE` and returns it with the
/// time replaced by `T`.
fn strip_time(line: &str) -> String {
    let start = line.find("</strong>").expect("no </strong>") - 9;
    let time = &line[start + 1..start + 9];
    assert!(
        time.len() == 8
            && time.bytes().enumerate().all(|(i, b)| if i % 3 == 2 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }),
        "bad time in {line:?}"
    );
    format!("{} T{}", &line[..start], &line[start + 9..])
}

#[test]
fn success_answers_json_and_sends_one_escaped_line() {
    let ctl = FakeController::start(Behaviour::Ok);
    let r = responder(&ctl.addr, &[]);
    let body = format!(
        "user={}&message={}",
        urlencode("Zoë <b>"),
        urlencode("hi \"there\"\r\nQUIT\\ 😀")
    );
    let resp = r.endpoint.post_form(&body);
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.body, r#"{"ok":true,"id":1}"#);
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(resp.header("Cache-Control"), Some("no-store"));
    assert_eq!(resp.app_status, 0);
    assert_eq!(resp.protocol_status, 0);
    let lines = ctl.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        strip_time(&lines[0]),
        "ADDMESSAGE chat <strong>Zo&#235; &lt;b&gt; T</strong> hi &quot;there&quot;&#13;&#10;QUIT&#92; &#128512;\n"
    );
}

#[test]
fn every_error_status_and_nothing_sent() {
    let ctl = FakeController::start(Behaviour::Ok);
    let r = responder(&ctl.addr, &["--max-message", "10"]);

    let resp = r.endpoint.request("GET", None, b"");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("Allow"), Some("POST"));
    assert_eq!(resp.json()["ok"], false);

    let resp = r.endpoint.post_form("user=a&message=");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "message is empty");

    let resp = r.endpoint.post_form("user=a&message=+%0A+");
    assert_eq!(resp.status, 400);

    let resp = r.endpoint.post_form("message=%FF%FE");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "field \"message\" is not valid UTF-8");

    // A lone surrogate smuggled in as CESU-8 bytes is not UTF-8 either.
    let resp = r.endpoint.post_form("message=%ED%A0%80");
    assert_eq!(resp.status, 400);

    let resp = r.endpoint.post_form("message=a&message=b");
    assert_eq!(resp.status, 400);

    let resp = r.endpoint.post_form("message=12345678901");
    assert_eq!(resp.status, 413);
    assert_eq!(
        resp.json()["error"],
        "field \"message\" too long (11 characters, limit 10)"
    );
    // Ten 4-byte characters are fine: the limit counts characters.
    assert_eq!(
        r.endpoint
            .post_form(&format!("message={}", urlencode(&"😀".repeat(10))))
            .status,
        200
    );

    let resp = r.endpoint.post(Some("text/plain"), b"message=x");
    assert_eq!(resp.status, 415);
    let resp = r.endpoint.post(None, b"message=x");
    assert_eq!(resp.status, 415);
    let resp = r
        .endpoint
        .post(Some("application/json"), br#"{"message":"x"}"#);
    assert_eq!(resp.status, 415);

    // A 1 MB body is refused with 413 (and StdinCap dropped most of it).
    let huge = format!("message={}", "x".repeat(1_000_000));
    let resp = r.endpoint.post_form(&huge);
    assert_eq!(resp.status, 413);
    assert!(resp.json()["error"].as_str().unwrap().contains("too large"));

    assert_eq!(
        resp.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(resp.header("Cache-Control"), Some("no-store"));
    assert_eq!(ctl.lines().len(), 1, "only the one valid message was sent");
}

#[test]
fn multipart_form_data_works() {
    let ctl = FakeController::start(Behaviour::Ok);
    let r = responder(&ctl.addr, &[]);
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nAnn\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nÇa va\r\n--XyZ--\r\n";
    let resp = r
        .endpoint
        .post(Some("multipart/form-data; boundary=XyZ"), body.as_bytes());
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        strip_time(&ctl.lines()[0]),
        "ADDMESSAGE chat <strong>Ann T</strong> &#199;a va\n"
    );
}

#[test]
fn many_requests_over_one_kept_alive_connection() {
    let ctl = FakeController::start(Behaviour::Ok);
    let r = responder(&ctl.addr, &[]);
    let mut conn = r.endpoint.connect();
    for i in 1..=50u16 {
        let body = format!("user=u{i}&message=m{i}");
        conn.write_all(&encode_request(
            i,
            true,
            "POST",
            Some(FORM),
            body.as_bytes(),
        ))
        .unwrap();
        let resp = read_response(&mut conn, i);
        assert_eq!(resp.status, 200, "request {i}: {resp:?}");
        assert_eq!(resp.json()["id"], u64::from(i));
    }
    // Errors on the same connection do not break it either.
    conn.write_all(&encode_request(51, true, "GET", None, b""))
        .unwrap();
    assert_eq!(read_response(&mut conn, 51).status, 405);
    conn.write_all(&encode_request(
        52,
        true,
        "POST",
        Some(FORM),
        b"message=last",
    ))
    .unwrap();
    assert_eq!(read_response(&mut conn, 52).status, 200);
    assert_eq!(ctl.lines().len(), 51);
    assert_eq!(
        ctl.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "controller connection reused"
    );
}

#[test]
fn aborted_clients_do_not_hurt_the_next_request() {
    let ctl = FakeController::start(Behaviour::Ok);
    let r = responder(&ctl.addr, &[]);

    // Web server dies after half a request (params sent, body cut short).
    let full = encode_request(1, true, "POST", Some(FORM), b"message=never");
    let mut c = r.endpoint.connect();
    c.write_all(&full[..full.len() - 20]).unwrap();
    drop(c);

    // Web server dies in the middle of a record header.
    let mut c = r.endpoint.connect();
    c.write_all(&full[..3]).unwrap();
    drop(c);

    // FCGI_ABORT_REQUEST before the body is complete: the library ends the
    // request without calling the handler.
    let mut c = r.endpoint.connect();
    let begin_and_params = encode_request(7, true, "POST", Some(FORM), b"");
    let cut = begin_and_params.len() - 8; // without the empty STDIN terminator
    c.write_all(&begin_and_params[..cut]).unwrap();
    c.write_all(&record(ABORT_REQUEST, 7, b"")).unwrap();
    let (kind, id, _) = read_record(&mut c).unwrap();
    assert_eq!((kind, id), (END_REQUEST, 7));
    // ...and the same connection still serves the next request.
    c.write_all(&encode_request(
        8,
        true,
        "POST",
        Some(FORM),
        b"message=after+abort",
    ))
    .unwrap();
    assert_eq!(read_response(&mut c, 8).status, 200);

    let resp = r.endpoint.post_form("message=still+alive");
    assert_eq!(resp.status, 200, "{resp:?}");
    let lines = ctl.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("never")));
}

#[test]
fn daemon_down_is_503_and_recovers_when_it_comes_back() {
    let port = ReservedPort::new();
    let r = responder(&port.addr, &[]);
    let resp = r.endpoint.post_form("message=hello");
    assert_eq!(resp.status, 503, "{resp:?}");
    let reason = resp.json()["error"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with("chat server unavailable: cannot connect to 127.0.0.1:"),
        "{reason}"
    );

    // The responder keeps serving; once meteord is back, posts work.
    let ctl = FakeController::start_on(port, Behaviour::Ok);
    let resp = r.endpoint.post_form("message=hello+again");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(ctl.lines().len(), 1);
}

#[test]
fn daemon_err_reply_is_502() {
    let ctl = FakeController::start(Behaviour::Err);
    let r = responder(&ctl.addr, &[]);
    let resp = r.endpoint.post_form("message=hello");
    assert_eq!(resp.status, 502, "{resp:?}");
    assert_eq!(
        resp.json()["error"],
        "chat server refused the message: Invalid command syntax"
    );
}

#[test]
fn silent_daemon_is_503_after_the_timeout_and_not_resent() {
    let ctl = FakeController::start(Behaviour::Silent);
    let r = responder(&ctl.addr, &["--timeout-ms", "300"]);
    let started = Instant::now();
    let resp = r.endpoint.post_form("message=hello");
    let took = started.elapsed();
    assert_eq!(resp.status, 503, "{resp:?}");
    assert!(
        resp.json()["error"]
            .as_str()
            .unwrap()
            .contains("did not confirm"),
        "{resp:?}"
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(ctl.lines().len(), 1, "the line must not be sent twice");
}

#[test]
fn concurrent_requests_are_served_in_parallel() {
    let ctl = FakeController::start(Behaviour::Slow(Duration::from_millis(300)));
    let r = responder(&ctl.addr, &[]);
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let ep = r.endpoint.clone();
            std::thread::spawn(move || ep.post_form(&format!("message=m{i}")).status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    // Serially this would take 8 × 300 ms.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn standalone_tcp_and_environment_settings() {
    let ctl = FakeController::start(Behaviour::Ok);
    // Settings through the environment, as mod_fcgid's FcgidInitialEnv does.
    let (_proc, listen) = spawn_fcgi_chat_on_port_0(
        &["--listen", "127.0.0.1:0"],
        &[
            ("METEOR_CONTROLLER", &ctl.addr),
            ("CHAT_CHANNEL", "room-2"),
            ("CHAT_TZ", "Asia/Tokyo"),
        ],
    );
    let endpoint = Endpoint::Tcp(listen);
    let resp = endpoint.post_form("user=Bob&message=hi");
    assert_eq!(resp.status, 200, "{resp:?}");
    let line = &ctl.lines()[0];
    assert_eq!(
        strip_time(line),
        "ADDMESSAGE room-2 <strong>Bob T</strong> hi\n"
    );
    // The stamp is Tokyo time (UTC+9, no DST).
    let hour: u32 = line[line.find("</strong>").unwrap() - 8..][..2]
        .parse()
        .unwrap();
    let utc_hour = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        % 24) as u32;
    let diff = (hour + 24 - utc_hour) % 24;
    // 8: the UTC hour turned between the post and this check.
    assert!(diff == 9 || diff == 8, "hour {hour} vs UTC {utc_hour}");
}

#[test]
fn unix_socket_mode_and_cleanup_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let ctl = FakeController::start(Behaviour::Ok);
    let dir = TempDir::new("perm");
    let sock = dir.path().join("s.sock");
    // A stale socket file from a crashed run must not prevent start-up.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let listen = format!("unix:{}", sock.display());
    let endpoint = Endpoint::Unix(sock.clone());
    let mut proc = spawn_fcgi_chat(
        &[
            "--listen",
            &listen,
            "--socket-mode",
            "0660",
            "--controller",
            &ctl.addr,
        ],
        &[],
        &endpoint,
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    assert_eq!(endpoint.post_form("message=x").status, 200);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proc.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_for("exit after SIGTERM", || proc.exited());
    assert!(status.success(), "{status}");
    assert!(!sock.exists(), "socket file removed at exit");
}

#[test]
fn inherited_listening_socket_on_fd0_like_mod_fcgid() {
    let ctl = FakeController::start(Behaviour::Ok);
    let dir = TempDir::new("fd0");
    let sock = dir.path().join("fcgid.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut proc = Proc {
        child: Command::new(fcgi_chat_bin())
            .env("METEOR_CONTROLLER", &ctl.addr)
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
        name: "fcgi-chat (fd 0)",
    };
    let endpoint = Endpoint::Unix(sock.clone());
    for i in 1..=3 {
        let resp = endpoint.post_form(&format!("message=via+fd0+{i}"));
        assert_eq!(resp.status, 200, "{resp:?}");
    }
    assert!(proc.exited().is_none());
    assert_eq!(ctl.lines().len(), 3);

    // The same over an inherited TCP listener (spawn-fcgi style).
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = Endpoint::Tcp(tcp.local_addr().unwrap().to_string());
    let _proc = Proc {
        child: Command::new(fcgi_chat_bin())
            .env("METEOR_CONTROLLER", &ctl.addr)
            .stdin(Stdio::from(OwnedFd::from(tcp)))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        name: "fcgi-chat (fd 0 tcp)",
    };
    assert_eq!(endpoint.post_form("message=tcp+fd0").status, 200);
}

#[test]
fn refuses_to_start_without_a_socket_or_with_bad_flags() {
    let run = |args: &[&str]| {
        let out = Command::new(fcgi_chat_bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[]);
    assert_eq!(code, Some(64));
    assert!(err.contains("fd 0 is not a listening socket"), "{err}");
    let (code, err) = run(&["--listen", "127.0.0.1:1", "--timezone", "Nowhere/Void"]);
    assert_eq!(code, Some(64));
    assert!(err.contains("--timezone"), "{err}");
    let (code, err) = run(&["--listen", "127.0.0.1:1", "--channel", "a b"]);
    assert_eq!(code, Some(64));
    assert!(err.contains("--channel"), "{err}");
}

/// Peak resident memory of a process in KiB (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn huge_body_is_refused_without_buffering_it() {
    let ctl = FakeController::start(Behaviour::Ok);
    let dir = TempDir::new("huge");
    let sock = dir.path().join("s.sock");
    let listen = format!("unix:{}", sock.display());
    let endpoint = Endpoint::Unix(sock);
    let proc = spawn_fcgi_chat(
        &["--listen", &listen, "--controller", &ctl.addr],
        &[],
        &endpoint,
    );
    let before = peak_rss_kib(proc.child.id());
    // 64 MiB of body: tokio-fastcgi alone would hold all of it in memory.
    let huge = vec![b'x'; 64 * 1024 * 1024];
    let resp = endpoint.post(Some(FORM), &huge);
    assert_eq!(resp.status, 413, "{resp:?}");
    let after = peak_rss_kib(proc.child.id());
    assert!(
        after < before + 16 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    // And the connection-level state is clean for the next request.
    assert_eq!(endpoint.post_form("message=ok").status, 200);
}

#[test]
fn interoperates_with_libfcgi_cgi_fcgi_client() {
    // Debian's cgi-fcgi (libfcgi-bin) is a second, independent FastCGI
    // client implementation.
    let cgi_fcgi = std::path::Path::new("/usr/bin/cgi-fcgi");
    assert!(
        cgi_fcgi.is_file(),
        "cgi-fcgi not found: install the libfcgi-bin package"
    );
    let ctl = FakeController::start(Behaviour::Ok);
    let r = responder(&ctl.addr, &[]);
    let Endpoint::Unix(sock) = &r.endpoint else {
        unreachable!("responder() listens on a Unix socket")
    };
    let body = "user=libfcgi&message=Gr%C3%BC%C3%9Fe";
    let mut child = Command::new(cgi_fcgi)
        .arg("-bind")
        .arg("-connect")
        .arg(sock)
        .env_clear()
        .env("REQUEST_METHOD", "POST")
        .env("CONTENT_TYPE", FORM)
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n{\"ok\":true,\"id\":1}"), "{text}");
    assert_eq!(
        strip_time(&ctl.lines()[0]),
        "ADDMESSAGE chat <strong>libfcgi T</strong> Gr&#252;&#223;e\n"
    );
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let ctl = FakeController::start(Behaviour::Slow(Duration::from_millis(600)));
    let dir = TempDir::new("drain");
    let sock = dir.path().join("s.sock");
    let listen = format!("unix:{}", sock.display());
    let endpoint = Endpoint::Unix(sock.clone());
    let mut proc = spawn_fcgi_chat(
        &["--listen", &listen, "--controller", &ctl.addr],
        &[],
        &endpoint,
    );
    let ep = endpoint.clone();
    let pending = std::thread::spawn(move || ep.post_form("message=in+flight"));
    wait_for("the line to reach the controller", || {
        (!ctl.lines().is_empty()).then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proc.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let resp = pending.join().unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    let status = wait_for("exit after SIGTERM", || proc.exited());
    assert!(status.success(), "{status}");
    assert!(endpoint.try_connect().is_err(), "no longer accepting");
}
