//! Configuration fidelity against the real binary: every configuration the
//! original Meteor starts on starts ours with the same meaning (observed on
//! the wire), and every one it refuses, ours refuses with exit 64 and a
//! message naming the file and line (issue 10, part 1). Each fact was
//! checked by running the original with the same lines.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::config::{
    LOOPBACK_ANY_PORT, refuse, start_exact, start_exact_logging_to, write_config,
};
use support::process::ReservedPort;
use support::{Client, Daemon};

/// Start on `config` (written to a scratch `meteord.conf`), in the
/// foreground, on loopback ports of the system's choosing; `extra` comes
/// last (and so wins).
fn start_file(name: &str, config: &[u8], extra: &[&str]) -> Daemon {
    let (dir, path) = write_config(name, config);
    let path = path.display().to_string();
    let mut args = vec!["-ConfigFileLocation", path.as_str(), "-Foreground", "1"];
    args.extend_from_slice(LOOPBACK_ANY_PORT);
    args.extend_from_slice(extra);
    let cwd = dir.clone();
    start_exact(dir, &cwd, &args)
}

/// Subscribe to `path` and wait until `channel` counts the subscriber.
fn subscribe(daemon: &Daemon, path: &str, channel: &str) -> Client {
    let client = daemon.get(path);
    daemon.wait_subscribers(channel, 1);
    client
}

fn received(client: &Client) -> &[u8] {
    &client.received
}

// --- the original's distribution configuration, and ours ------------------

#[test]
fn original_distribution_constructs_start_with_their_meaning() {
    let config = include_bytes!("fixtures/config/dist-constructs.conf");
    let (dir, path) = write_config("dist", config);
    let path = path.display().to_string();
    let mut args = vec!["-ConfigFileLocation", path.as_str()];
    args.extend_from_slice(LOOPBACK_ANY_PORT);
    // Debug 1 with a LogFilename: the lines go to that file, not stderr.
    let log_file = dir.join("meteord-debug.log");
    let mut daemon = start_exact_logging_to(dir.clone(), &dir, &args, &log_file);

    // [flash]: no HTTP header at all, NUL-terminated messages.
    let mut flash = subscribe(&daemon, "/push/f/flash/fc", "fc");
    let id = daemon.publish("fc", "hi");
    let want = format!("{id}/fc/hi\0");
    flash.wait_for(&want);
    assert_eq!(received(&flash), want.as_bytes());

    // [xhrinteractive]: the padded header, then the default message script.
    let mut xhr = subscribe(&daemon, "/push/x/xhrinteractive/xc", "xc");
    let id = daemon.publish("xc", "m");
    let want = format!(
        "HTTP/1.1 200 OK\r\n\r\n{}\r\n\r\n<script>p({id},\"xc\",\"m\");</script>\r\n",
        ".".repeat(900)
    );
    xhr.wait_for(&format!("p({id},"));
    assert_eq!(String::from_utf8_lossy(received(&xhr)), want);

    // [longpoll]: Persist 1 with CloseOnEvent 1 ends after the first message.
    let mut long = subscribe(&daemon, "/push/l/longpoll/lc", "lc");
    let id = daemon.publish("lc", "x");
    assert_eq!(
        long.read_to_close(),
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             Meteor.process({id},\"lc\",\"x\");\r\nMeteor.clearpoll();\r\n"
        )
    );

    // [simplepoll]: no Persist, so the answer ends at once with the footer.
    let mut poll = daemon.get("/push/s/simplepoll/sc");
    assert_eq!(
        poll.read_to_close(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\nMeteor.clearpoll();\r\n"
    );
    assert_eq!(daemon.stop(), Some(0));
}

/// Every configuration file we ship (conf/*.conf).
fn shipped_configs() -> Vec<PathBuf> {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&conf)
        .expect("conf/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_configuration_starts() {
    let files = shipped_configs();
    assert!(
        files.iter().any(|f| f.ends_with("meteord.conf")),
        "{files:?}"
    );
    for file in files {
        let config = std::fs::read(&file).expect("read shipped config");
        let mut daemon = start_file("shipped", &config, &[]);
        let mut iframe = subscribe(&daemon, "/push/h/iframe/c", "c");
        iframe.wait_for("parent.Meteor.register(this);");
        assert!(
            received(&iframe).starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{}",
            file.display()
        );
        assert_eq!(daemon.stop(), Some(0), "{}", file.display());
    }
}

#[test]
fn a_path_that_is_not_a_regular_file_starts_on_the_built_in_configuration() {
    // The original reads only a regular file; /dev/null means its defaults.
    let dir = support::scratch("devnull");
    let mut args = vec!["-ConfigFileLocation", "/dev/null", "-Foreground", "1"];
    args.extend_from_slice(LOOPBACK_ANY_PORT);
    let cwd = dir.clone();
    let mut daemon = start_exact(dir, &cwd, &args);
    let mut iframe = subscribe(&daemon, "/push/h/iframe/c", "c");
    iframe.wait_for("parent.Meteor.register(this);");
    assert!(
        daemon
            .log_text()
            .contains("/dev/null is not a regular file: using the built-in configuration"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(daemon.stop(), Some(0));
}

// --- accepted constructs, with their meaning --------------------------------

#[test]
fn section_headers_with_blanks_apply_to_their_mode() {
    let config = b"[ iframe ]\nHeaderTemplate <~status~>\\r\\n\nFooterTemplate |end\n\
                   [\tx ]\nFooterTemplate |x\n";
    let daemon = start_file("blanks", config, &[]);
    assert_eq!(
        daemon.get("/push/h/iframe/c").read_to_close(),
        "<200 OK>\r\n|end"
    );
    assert_eq!(
        daemon.get("/push/h/x/c").read_to_close(),
        "HTTP/1.1 200 OK\r\n\r\n\r\n|x"
    );
    assert_eq!(
        daemon.get("/push/h/other/c").read_to_close(),
        "HTTP/1.1 200 OK\r\n\r\n\r\n</body></html>"
    );
}

#[test]
fn syslog_facility_none_stays_in_the_foreground_and_logs_to_stderr() {
    // No Debug, no Foreground: the original neither detaches nor opens
    // syslog, and writes its log lines itself.
    let (dir, path) = write_config("nosyslog", b"SyslogFacility none\nLogTimeFormat unix\n");
    let path = path.display().to_string();
    let mut args = vec!["-ConfigFileLocation", path.as_str()];
    args.extend_from_slice(LOOPBACK_ANY_PORT);
    let cwd = dir.clone();
    let mut daemon = start_exact(dir, &cwd, &args);
    assert_eq!(
        daemon.get("/push/h/m/c").read_to_close(),
        "HTTP/1.1 200 OK\r\n\r\n\r\n</body></html>"
    );
    // The process we started is the one serving: it did not fork away and
    // exit (which would leave it a zombie until we reap it).
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).expect("status");
    let state = status
        .lines()
        .find(|l| l.starts_with("State:"))
        .expect("state line");
    assert!(!state.contains('Z'), "{state}");
    let log = daemon.log_text();
    let listening = log
        .lines()
        .find(|l| l.contains("meteord listening"))
        .expect("listening line");
    // LogTimeFormat unix: seconds since the epoch.
    let (time, rest) = listening.split_once(' ').expect("time field");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let time: u64 = time.parse().expect("unix time");
    assert!(time.abs_diff(now) < 60, "{listening}");
    assert!(rest.starts_with("INFO meteord listening"), "{listening}");
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn an_empty_document_root_serves_no_document() {
    for value in ["", " /"] {
        // The working directory holds the files: an empty root must not
        // mean "here".
        let (dir, path) = write_config(
            "noroot",
            format!("SubscriberDocumentRoot{value}\n").as_bytes(),
        );
        std::fs::write(dir.join("index.html"), "here\n").expect("write index");
        std::fs::create_dir_all(dir.join("docs")).expect("docs dir");
        std::fs::write(dir.join("docs").join("index.html"), "docs\n").expect("write docs index");
        let path = path.display().to_string();
        let mut args = vec!["-ConfigFileLocation", path.as_str(), "-Foreground", "1"];
        args.extend_from_slice(LOOPBACK_ANY_PORT);
        let cwd = dir.clone();
        let daemon = start_exact(dir.clone(), &cwd, &args);
        let not_found = daemon.get("/index.html").read_to_close();
        assert!(
            not_found.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{value:?}: {not_found:?}"
        );
        for other in ["/", "/docs/index.html", "/docs/"] {
            assert_eq!(
                daemon.get(other).read_to_close(),
                not_found,
                "{value:?} {other}"
            );
        }
        // The same files under a real root: served, and a missing one gets
        // the very answer every request got above.
        let root = dir.join("docs").display().to_string();
        let served = start_file("root", b"", &["-SubscriberDocumentRoot", &root]);
        let ok = served.get("/index.html").read_to_close();
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("docs\n"),
            "{ok:?}"
        );
        assert_eq!(served.get("/missing.html").read_to_close(), not_found);
    }
}

#[test]
fn an_empty_dynamic_page_address_serves_streams_at_the_root() {
    let config =
        b"SubscriberDynamicPageAddress\n[ iframe ]\nHeaderTemplate X~status~\\r\\n\\r\\n\n";
    let daemon = start_file("rootstreams", config, &[]);
    // The original's bytes for the same request and configuration.
    assert_eq!(
        daemon.get("/h1/iframe/c").read_to_close(),
        "X200 OK\r\n\r\n</body></html>"
    );
}

#[test]
fn misplaced_parameters_and_help_are_accepted_without_effect() {
    let config = b"[iframe]\nSubscriberDynamicPageAddress /elsewhere\nHelp\nDebug 1\n";
    let daemon = start_file("misplaced", config, &[]);
    // Still /push: the section's address means nothing.
    assert_eq!(
        daemon.get("/push/h/iframe/c").read_to_close(),
        "HTTP/1.1 200 OK\r\n\r\n\r\n</body></html>"
    );
    let log = daemon.log_text();
    for line in [
        "meteord.conf:2: SubscriberDynamicPageAddress inside [iframe] has no effect",
        "meteord.conf:3: Help has no effect in a file",
        "meteord.conf:4: Debug inside [iframe] has no effect",
    ] {
        assert!(log.contains(line), "{line} not logged: {log}");
    }
}

#[test]
fn crlf_files_and_perl_white_space() {
    let config = b"# comment\r\n\r\n \t\r\n[ flash ]\r\nHeaderTemplate ~channelinfo~\r\n\
                   MessageTemplate ~text~;\r\r\nPersist\x0c1\r\n";
    let daemon = start_file("crlf", config, &[]);
    let mut flash = subscribe(&daemon, "/push/h/flash/c", "c");
    daemon.publish("c", "a");
    daemon.publish("c", "b");
    flash.wait_for("b;");
    assert_eq!(received(&flash), b"a;b;");
}

#[test]
fn switches_and_numbers_mean_what_perl_makes_of_them() {
    // `off` is true text; MaxTime -5 is no limit; `yes` is true.
    let config = b"[p]\nPersist off\nMaxTime -5\n[q]\nPersist 0.0\nCloseOnEvent yes\n";
    let daemon = start_file("perl", config, &[]);
    let mut p = subscribe(&daemon, "/push/a/p/pc", "pc");
    let id = daemon.publish("pc", "m");
    p.wait_for(&format!("p({id},"));
    assert!(
        p.idle_for(Duration::from_millis(300)),
        "Persist off persists"
    );
    let mut q = subscribe(&daemon, "/push/b/q/qc", "qc");
    let id = daemon.publish("qc", "m");
    assert!(
        q.read_to_close().ends_with(&format!(
            "<script>p({id},\"qc\",\"m\");</script>\r\n</body></html>"
        )),
        "CloseOnEvent yes closes after the message"
    );
}

#[test]
fn command_line_as_the_original_reads_it() {
    // -Name.mode over the file's section; -f and -hea abbreviate as in the
    // original; a name followed by another -Name is 1.
    let daemon = start_file(
        "cli",
        b"[iframe]\nPersist 1\n",
        &[
            "-Persist.iframe",
            "0",
            "-f",
            "|F",
            "-CloseOnEvent",
            "-hea",
            "H~status~\\r\\n",
        ],
    );
    assert_eq!(
        daemon.get("/push/h/iframe/c").read_to_close(),
        "H200 OK\r\n|F"
    );
    // CloseOnEvent (no value = 1) with the default Persist 0 is a poll.
    assert_eq!(daemon.get("/push/h/x/c").read_to_close(), "H200 OK\r\n|F");
}

#[test]
fn host_names_and_empty_addresses() {
    let (dir, path) = write_config("hosts", b"");
    let path = path.display().to_string();
    let args = [
        "-ConfigFileLocation",
        path.as_str(),
        "-Foreground",
        "1",
        "-SubscriberIP",
        "localhost",
        "-SubscriberPort",
        "0",
        "-ControllerIP",
        "",
        "-ControllerPort",
        "0",
    ];
    let cwd = dir.clone();
    let daemon = start_exact(dir, &cwd, &args);
    let log = daemon.log_text();
    assert!(log.contains("subscriber=127.0.0.1:"), "{log}");
    // Empty: every local address, as the original.
    assert!(log.contains("controller=0.0.0.0:"), "{log}");
    assert!(daemon.publish("c", "x") > 0);
}

#[test]
fn version_is_printed_whatever_else_is_given() {
    let output = std::process::Command::new(support::bin())
        .args(["-Bogus", "-ver"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("meteord {}\n", env!("CARGO_PKG_VERSION"))
    );
}

// --- refusals ---------------------------------------------------------------

#[test]
fn what_the_original_refuses_ours_refuses_naming_file_and_line() {
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "cfl",
            b"# ok\nConfigFileLocation /etc/other.conf\n",
            ":2: ConfigFileLocation cannot be set in a configuration file (give it on the \
             command line: -ConfigFileLocation /path)",
        ),
        (
            "cfl-section",
            b"[iframe]\nConfigFileLocation /etc/other.conf\n",
            ":2: ConfigFileLocation cannot be set in a configuration file (give it on the \
             command line: -ConfigFileLocation /path)",
        ),
        (
            "indented",
            b"Persist 1\n  MaxTime 5\n",
            ":2: a parameter name must start at the beginning of the line: \"  MaxTime 5\"",
        ),
        (
            "unknown",
            b"[iframe]\nPersistence 1\n",
            ":2: unknown parameter \"Persistence\" (in section [iframe])",
        ),
        (
            "case",
            b"\npersist 1\n",
            ":2: unknown parameter \"persist\" (did you mean Persist? names in the \
             configuration file are case-sensitive)",
        ),
        (
            "header",
            b"[a b]\n",
            ":1: a section header must be [mode] with a mode name without blanks or ]: \"[a b]\"",
        ),
        (
            "header-empty",
            b"Persist 1\n[ ]\n",
            ":2: a section header must be [mode] with a mode name without blanks or ]: \"[ ]\"",
        ),
        (
            "address",
            b"UDPIP no-such-host.invalid\n",
            ":1: parameter UDPIP: invalid value \"no-such-host.invalid\": not an address, and no \
             IPv4 address found for it as a host name",
        ),
    ];
    for &(name, config, message) in cases {
        let (refusal, path) = refuse(name, Some(config), &[]);
        assert_eq!(refusal.code, Some(64), "{name}: {}", refusal.stderr);
        assert_eq!(
            refusal.stderr,
            format!("meteord: {}{message}\n", path.display()),
            "{name}"
        );
    }
}

#[test]
fn command_lines_the_original_refuses_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--Persist", "1"],
            "command line: unknown parameter \"-Persist\" (parameters take one dash: -Persist)",
        ),
        (
            &["-D"],
            "command line: ambiguous parameter -D: could be -Debug, -DirectoryIndex",
        ),
        (
            &["-Pi", "3"],
            "command line: ambiguous parameter -Pi: could be -PingInterval, -PingMessage",
        ),
        (
            &["-PingMessage", "-x"],
            "command line: unknown parameter \"x\" (see -help)",
        ),
        (
            &["-ControllerPort", ""],
            "command line: parameter ControllerPort: invalid value \"\": a port number is required",
        ),
        (
            &["stray"],
            "command line: unexpected argument \"stray\" (parameters are given as -Name value)",
        ),
    ];
    for &(args, message) in cases {
        let (refusal, _) = refuse("cli", None, args);
        assert_eq!(refusal.code, Some(64), "{args:?}: {}", refusal.stderr);
        assert_eq!(refusal.stderr, format!("meteord: {message}\n"), "{args:?}");
    }
}

#[test]
fn log_filename_is_written_only_with_debug_or_syslog_facility_none() {
    // SyslogFacility none + LogFilename: the daemon's lines go to the file.
    let (dir, path) = write_config(
        "logfile-none",
        b"SyslogFacility none\nLogFilename own.log\n",
    );
    let path = path.display().to_string();
    let mut args = vec!["-ConfigFileLocation", path.as_str()];
    args.extend_from_slice(LOOPBACK_ANY_PORT);
    let log_file = dir.join("own.log");
    // (start_exact_logging_to waits for the "listening" line in that file.)
    let mut daemon = start_exact_logging_to(dir.clone(), &dir, &args, &log_file);
    assert_eq!(daemon.stop(), Some(0));
    let written = std::fs::read_to_string(&log_file).expect("log file");
    assert!(written.contains("meteord listening"), "{written}");

    // Without either, the original logs to syslog and never opens the file;
    // ours too (the one-time note is a unit test: `original_tests`). The
    // ports are reserved, as the log line that reports them goes to syslog.
    let dir = support::scratch("logfile-syslog");
    let (sub, ctl) = (ReservedPort::new(), ReservedPort::new());
    let mut child = std::process::Command::new(support::bin())
        .args(support::BUILTIN)
        .args(support::LOOPBACK_ANY_PORT)
        .args(["-SubscriberPort", &sub.arg(), "-ControllerPort", &ctl.arg()])
        .args(["-Foreground", "1", "-LogFilename"])
        .arg(dir.join("never.log"))
        .arg("-StateFile")
        .arg(dir.join("ids"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn meteord");
    // Serving: the reserved port refuses until the daemon listens on it.
    let deadline = std::time::Instant::now() + support::WAIT;
    while std::net::TcpStream::connect(ctl.addr()).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "meteord never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut ctl_client = support::Controller::connect(ctl.addr());
    assert_eq!(ctl_client.command("COUNTSUBSCRIBERS c"), "OK 0\r\n");
    let _ = child.kill();
    let _ = child.wait();
    assert!(!dir.join("never.log").exists(), "the file was not created");
    let _ = std::fs::remove_dir_all(dir);
}
