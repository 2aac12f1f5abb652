//! Tests of the log sinks (file, syslog, stderr), the line format and the
//! runtime reopen.

use super::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use crate::test_support::TempDir;

fn settings() -> LogSettings {
    LogSettings {
        debug: false,
        log_filename: None,
        time_format: "%Y-%m-%d %H:%M:%S".to_owned(),
        facility: Some("daemon".to_owned()),
        rust_log: None,
        syslog_path: None,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn time_format_is_strftime_style() {
    let time = jiff::Timestamp::from_second(1_721_060_699)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC);
    assert_eq!(
        format_time("%Y-%m-%d %H:%M:%S", &time).unwrap(),
        "2024-07-15 16:24:59"
    );
    assert_eq!(
        format_time("%a %b %e %H:%M:%S %Y", &time).unwrap(),
        "Mon Jul 15 16:24:59 2024"
    );
    assert_eq!(
        format_time(SYSLOG_TIME_FORMAT, &time).unwrap(),
        "Jul 15 16:24:59"
    );
    assert_eq!(format_time("", &time).unwrap(), "");
    assert!(format_time("%K", &time).is_err());
}

#[test]
fn invalid_time_format_and_facility_are_init_errors() {
    let dir = TempDir::new("invalid");
    let mut bad = settings();
    bad.log_filename = Some(dir.0.join("x.log"));
    bad.facility = None; // writes its own lines, as with SyslogFacility none
    bad.time_format = "%K".to_owned();
    let err = build(&bad).err().expect("error").to_string();
    assert!(err.contains("LogTimeFormat '%K'"), "{err}");

    let mut bad = settings();
    bad.facility = Some("local9".to_owned());
    let err = build(&bad).err().expect("error").to_string();
    assert!(err.contains("unknown SyslogFacility 'local9'"), "{err}");

    for good in [
        "daemon", "user", "local0", "local7", "syslog", "auth", "LOCAL3",
    ] {
        assert!(parse_facility(good).is_ok(), "{good}");
    }
}

#[test]
fn unopenable_log_file_is_a_clear_error() {
    let dir = TempDir::new("unopenable");
    let mut bad = settings();
    let path = dir.0.join("missing-dir").join("meteord.log");
    bad.log_filename = Some(path.clone());
    bad.facility = None; // writes its own lines, as with SyslogFacility none
    let err = format!("{:#}", build(&bad).err().expect("error"));
    assert!(
        err.contains(&format!("cannot open log file {}", path.display())),
        "{err}"
    );
}

#[test]
fn file_sink_writes_lines_and_reopens_after_rotation() {
    let dir = TempDir::new("file");
    let path = dir.0.join("meteord.log");
    let mut config = settings();
    config.log_filename = Some(path.clone());
    config.facility = None; // writes its own lines, as with SyslogFacility none
    let (subscriber, handle) = build(&config).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(channel = "chat", id = 7, "first line");
        tracing::debug!("hidden at info level");
        let span = tracing::info_span!("conn", ip = "127.0.0.1");
        span.in_scope(|| tracing::warn!(agent = "Mozilla/5.0 (X11)", "with span"));

        std::fs::rename(&path, dir.0.join("meteord.log.1")).unwrap();
        tracing::info!("still to the renamed file");
        handle.apply(&config).unwrap();
        tracing::error!("after reopen");
    });
    let old = read(&dir.0.join("meteord.log.1"));
    let lines: Vec<&str> = old.lines().collect();
    assert_eq!(lines.len(), 3, "{old}");
    // `<date> <time> <LEVEL> <message> key=value…`
    let first: Vec<&str> = lines[0].splitn(4, ' ').collect();
    assert_eq!(first[0].len(), "2024-07-15".len(), "{}", lines[0]);
    assert_eq!(first[1].len(), "16:24:59".len(), "{}", lines[0]);
    assert_eq!(first[2], "INFO");
    assert_eq!(first[3], "first line channel=chat id=7");
    assert!(
        lines[1].ends_with(" WARN with span agent=\"Mozilla/5.0 (X11)\" ip=127.0.0.1"),
        "{}",
        lines[1]
    );
    assert!(lines[2].ends_with(" INFO still to the renamed file"));
    let new = read(&path);
    assert_eq!(new.lines().count(), 1, "{new}");
    assert!(new.ends_with(" ERROR after reopen\n"), "{new}");
}

#[test]
fn reopen_can_raise_the_level() {
    let dir = TempDir::new("level");
    let path = dir.0.join("meteord.log");
    let mut config = settings();
    config.log_filename = Some(path.clone());
    config.facility = None; // writes its own lines, as with SyslogFacility none
    config.time_format = String::new();
    let (subscriber, handle) = build(&config).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!("before");
        config.rust_log = Some("debug".to_owned());
        handle.apply(&config).unwrap();
        tracing::debug!("after");
        // A failed reopen keeps the working sink.
        let mut broken = config.clone();
        broken.log_filename = Some(dir.0.join("no-dir").join("x.log"));
        assert!(handle.apply(&broken).is_err());
        tracing::debug!("kept");
    });
    assert_eq!(read(&path), "DEBUG after\nDEBUG kept\n");
}

#[test]
fn control_characters_cannot_forge_lines() {
    let dir = TempDir::new("escape");
    let path = dir.0.join("meteord.log");
    let mut config = settings();
    config.log_filename = Some(path.clone());
    config.facility = None; // writes its own lines, as with SyslogFacility none
    config.time_format = String::new();
    let (subscriber, _handle) = build(&config).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let agent = "evil\nINFO forged";
        tracing::info!(agent, "bad {}", "a\rb");
        tracing::info!(empty = "", "x");
    });
    assert_eq!(
        read(&path),
        "INFO bad a\\rb agent=\"evil\\nINFO forged\"\nINFO x empty=\"\"\n"
    );
}

/// Receive one datagram (bounded wait).
fn recv(socket: &UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn syslog_sink_sends_priority_tag_pid_and_reconnects() {
    let dir = TempDir::new("syslog");
    let socket_path = dir.0.join("log.sock");
    let server = UnixDatagram::bind(&socket_path).unwrap();
    let mut config = settings();
    config.facility = Some("local3".to_owned());
    config.syslog_path = Some(socket_path.clone());
    let (subscriber, _handle) = build(&config).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(id = 1, "hello");
        let line = recv(&server);
        // local3 (19 << 3) | info (6) = 158.
        assert!(line.starts_with("<158>"), "{line}");
        let tag = format!(" meteord[{}]: hello id=1", std::process::id());
        assert!(line.ends_with(&tag), "{line}");

        tracing::error!("boom");
        assert!(recv(&server).starts_with("<155>"));

        // The syslog daemon restarts: its socket is recreated.
        drop(server);
        std::fs::remove_file(&socket_path).unwrap();
        let server = UnixDatagram::bind(&socket_path).unwrap();
        tracing::warn!("after restart");
        let line = recv(&server);
        assert!(line.starts_with("<156>"), "{line}");
        assert!(line.ends_with(": after restart"), "{line}");
    });
}

#[test]
fn debug_writes_to_log_filename_or_else_stderr() {
    let dir = TempDir::new("debug-sink");
    let mut config = settings();
    config.debug = true;
    let (_subscriber, handle) = build(&config).unwrap();
    assert_eq!(lock(&handle.sink).kind_name(), "stderr");
    // The original's distribution config: Debug 1 with a LogFilename.
    config.log_filename = Some(dir.0.join("meteord-debug"));
    let (_subscriber, handle) = build(&config).unwrap();
    assert_eq!(lock(&handle.sink).kind_name(), "file");
}

#[test]
fn without_debug_or_none_log_filename_is_not_used_and_syslog_is() {
    let dir = TempDir::new("syslog-not-file");
    let mut config = settings();
    config.log_filename = Some(dir.0.join("never.log"));
    let (_subscriber, handle) = build(&config).unwrap();
    assert_eq!(lock(&handle.sink).kind_name(), "syslog");
    assert!(
        !dir.0.join("never.log").exists(),
        "the file is not even created"
    );
}

#[test]
fn facility_none_means_no_syslog() {
    let dir = TempDir::new("nosyslog");
    let socket_path = dir.0.join("log.sock");
    let server = UnixDatagram::bind(&socket_path).unwrap();
    let mut config = settings();
    config.facility = None;
    config.syslog_path = Some(socket_path);
    let (subscriber, handle) = build(&config).unwrap();
    assert_eq!(lock(&handle.sink).kind_name(), "stderr");
    tracing::subscriber::with_default(subscriber, || tracing::info!("not for syslog"));
    server.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    assert!(server.recv(&mut buf).is_err(), "nothing reached syslog");
    // With a log file, the file.
    config.log_filename = Some(dir.0.join("m.log"));
    let (_subscriber, handle) = build(&config).unwrap();
    assert_eq!(lock(&handle.sink).kind_name(), "file");
}
