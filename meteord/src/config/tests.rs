//! Tests of the whole pipeline (text + command line → [`Config`]); the
//! shipped configuration's are in `shipped_tests.rs`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::params::{Kind, PARAMS};
use super::shipped_tests::design_defaults;
use super::*;

pub(super) fn cli(args: &[&str]) -> CommandLine {
    match CommandLine::parse(args.iter().map(|s| s.to_string())) {
        Ok(Invocation::Run(cli)) => cli,
        other => panic!("{args:?}: {other:?}"),
    }
}

pub(super) fn from_text(text: &str) -> Config {
    load_from_text(text, "test.conf", &CommandLine::default()).expect("loads")
}

fn error(text: &str, args: &[&str]) -> String {
    load_from_text(text, "test.conf", &cli(args))
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn load_uses_builtin_when_the_file_is_missing() {
    let config = load(&cli(&["-ConfigFileLocation", "/nonexistent/meteord.conf"])).expect("loads");
    assert_eq!(config.source, None);
    assert_eq!(
        config.config_file_location,
        PathBuf::from("/nonexistent/meteord.conf")
    );
    assert_eq!(config.modes.named.len(), 8);
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "meteord-config-test-{}-{}.conf",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = std::fs::File::create(&path).expect("create temp file");
        file.write_all(contents).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn an_existing_file_alone_decides() {
    let file = TempFile::new(b"SubscriberPort 8080\n[mine]\nPersist 1\n");
    let path = file.0.to_str().expect("utf-8 temp path");
    let config = load(&cli(&["-ConfigFileLocation", path])).expect("loads");
    assert_eq!(config.source.as_deref(), Some(file.0.as_path()));
    assert_eq!(config.subscriber_port, 8080);
    // None of the built-in modes: only the file's own section.
    assert_eq!(config.modes.named.len(), 1);
    assert!(config.modes.get("mine").persist);
    assert_eq!(**config.modes.get("iframe"), design_defaults());
    // Not the shipped StateFile either: the table default (none).
    assert_eq!(config.state_file, None);
}

#[test]
fn a_path_that_is_not_a_regular_file_is_no_file() {
    // The original reads a file only where a regular file exists; a
    // directory or a device means its defaults, ours the built-in file.
    for path in [
        std::env::temp_dir().to_str().expect("utf-8 temp dir"),
        "/dev/zero",
    ] {
        let config = load(&cli(&["-ConfigFileLocation", path])).expect("loads");
        assert_eq!(config.source, None);
        assert_eq!(config.modes.named.len(), 8);
        assert!(config.notes[0].starts_with(&format!("{path} is not a regular file")));
    }
}

#[test]
fn an_oversized_file_is_refused() {
    let file = TempFile::new(&vec![b'#'; 1024 * 1024 + 1]);
    let path = file.0.to_str().expect("utf-8 temp path");
    let err = load(&cli(&["-ConfigFileLocation", path]))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot read configuration file {path}: larger than 1048576 bytes")
    );
}

#[test]
fn invalid_utf8_names_the_line() {
    let file = TempFile::new(b"# ok\nPingMessage caf\xe9\n");
    let path = file.0.to_str().expect("utf-8 temp path");
    let err = load(&cli(&["-ConfigFileLocation", path]))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{path}:2: the configuration file is not valid UTF-8")
    );
}

// --- defaults, layering, sections ----------------------------------------

#[test]
fn empty_file_gives_the_documented_defaults() {
    let c = from_text("");
    assert_eq!(c.subscriber_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.subscriber_port, 4670);
    assert_eq!(c.controller_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.controller_port, 4671);
    assert_eq!(c.udp_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.udp_port, 0);
    assert_eq!(
        c.subscriber_document_root,
        Some(PathBuf::from("/usr/local/meteor/public_html"))
    );
    assert_eq!(c.directory_index, "index.html");
    assert_eq!(c.subscriber_dynamic_page_address, "/push");
    assert_eq!(c.max_message_age, 7200);
    assert_eq!(c.max_messages_per_channel, 250);
    assert_eq!(c.controller_shutdown_msg, "");
    assert_eq!(c.debug, 0);
    assert_eq!(c.log_filename, None);
    assert_eq!(c.log_time_format, "%Y-%m-%d %H:%M:%S");
    assert_eq!(c.syslog_facility.as_deref(), Some("daemon"));
    assert_eq!(c.max_connections, 100_000);
    assert_eq!(c.state_file, None);
    assert_eq!(c.pid_file, Some(PathBuf::from("/var/run/meteord.pid")));
    assert_eq!(c.user, None);
    assert_eq!(c.group, None);
    assert!(!c.foreground);
    assert!(!c.send_channel_info);
    assert_eq!(c.header_timeout, 10);
    assert_eq!(c.write_timeout, 30);
    assert_eq!(c.shutdown_timeout, 5);
    assert_eq!(c.config_file_location, PathBuf::from("/etc/meteord.conf"));
    assert_eq!(c.source, Some(PathBuf::from("test.conf")));
    assert_eq!(*c.modes.default, design_defaults());
    assert!(c.modes.named.is_empty());
}

#[test]
fn sections_override_the_defaults_wherever_they_are() {
    // A global key after a section header belongs to the section, but a
    // global key before it sets the default for every mode.
    let c = from_text("PingInterval 9\n[a]\nPersist 1\n[b]\n");
    let a = c.modes.get("a");
    assert!(a.persist);
    assert_eq!(a.ping_interval, 9);
    assert_eq!(a.name, "a");
    let b = c.modes.get("b");
    assert_eq!(
        **b,
        ModeSettings {
            name: "b".into(),
            ping_interval: 9,
            ..design_defaults()
        }
    );
    assert_eq!(c.modes.default.ping_interval, 9);
    assert!(!c.modes.default.persist);
}

#[test]
fn an_empty_section_equals_the_defaults() {
    let c = from_text("MaxTime 60\n[empty]\n");
    let empty = c.modes.get("empty");
    assert_eq!(
        **empty,
        ModeSettings {
            name: "empty".into(),
            ..(*c.modes.default).clone()
        }
    );
}

#[test]
fn command_line_wins_over_the_file() {
    let c = load_from_text(
        "SubscriberPort 1\nPingInterval 9\n[a]\nMaxTime 5\n[b]\nPingInterval 7\n",
        "t.conf",
        &cli(&["-subscriberport", "2", "-PingInterval", "3", "-maxt", "10"]),
    )
    .expect("loads");
    assert_eq!(c.subscriber_port, 2);
    assert_eq!(c.modes.default.ping_interval, 3);
    assert_eq!(c.modes.default.max_time, 10);
    // A per-mode value on the command line is the default for every mode;
    // a section that sets the key still decides for its own mode.
    assert_eq!(c.modes.get("a").ping_interval, 3);
    assert_eq!(c.modes.get("a").max_time, 5);
    assert_eq!(c.modes.get("b").ping_interval, 7);
    assert_eq!(c.modes.get("b").max_time, 10);
}

#[test]
fn contract_command_line_over_the_builtin() {
    let args: Vec<&str> = CONTRACT_ARGS.iter().copied().chain(["-d"]).collect();
    let config = load(&cli(&args)).expect("loads");
    assert!(config.foreground);
    assert_eq!(config.debug, 1);
    assert_eq!(config.subscriber_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(config.subscriber_port, 34670);
    assert_eq!(config.controller_port, 34671);
    assert_eq!(
        config.subscriber_document_root,
        Some(PathBuf::from("/srv/meteord/public"))
    );
    assert_eq!(config.state_file, Some(PathBuf::from("/tmp/x.state")));
    assert_eq!(config.modes.named.len(), 8);
}

#[test]
fn last_repeated_key_wins_on_the_command_line_too() {
    let c = load_from_text(
        "",
        "t",
        &cli(&["-SubscriberPort", "1", "-SubscriberPort", "2"]),
    )
    .expect("loads");
    assert_eq!(c.subscriber_port, 2);
}

#[test]
fn empty_values_mean_none_for_optional_paths() {
    let c = from_text("PidFile\nStateFile /s\nLogFilename /l\nUser nobody\nGroup nogroup\n");
    assert_eq!(c.pid_file, None);
    assert_eq!(c.state_file, Some(PathBuf::from("/s")));
    assert_eq!(c.log_filename, Some(PathBuf::from("/l")));
    assert_eq!(c.user.as_deref(), Some("nobody"));
    assert_eq!(c.group.as_deref(), Some("nogroup"));
}

#[test]
fn escapes_reach_the_templates() {
    let c =
        from_text("[x]\nMessageTemplate ~id~\\t~text~\\0\nPingMessage \\s\nFooterTemplate --end\n");
    let x = c.modes.get("x");
    assert_eq!(x.message_template, "~id~\t~text~\0");
    assert_eq!(x.ping_message, " ");
    assert_eq!(x.footer_template, "-end");
}

#[test]
fn config_file_location_inside_a_file_is_refused() {
    // The original refuses to start on it.
    assert_eq!(
        error("# c\nConfigFileLocation /elsewhere.conf\n", &[]),
        "test.conf:2: ConfigFileLocation cannot be set in a configuration file (give it on \
         the command line: -ConfigFileLocation /path)"
    );
}

#[test]
fn numbers_ports_and_addresses_tolerate_surrounding_blanks() {
    let c = from_text("SubscriberPort 80  \nMaxTime\t 7 \nSubscriberIP ::1 \n");
    assert_eq!(c.subscriber_port, 80);
    assert_eq!(c.modes.default.max_time, 7);
    assert_eq!(c.subscriber_ip, "::1".parse::<IpAddr>().expect("ip"));
}

// --- errors ----------------------------------------------------------------

#[test]
fn bad_values_name_origin_parameter_and_value() {
    // Our own parameters are checked; the original's are read as it reads
    // them (see tests of `values_are_read_as_the_original_reads_them`).
    assert_eq!(
        error("# c\nMaxConnections x\n", &[]),
        "test.conf:2: parameter MaxConnections: invalid value \"x\": expected a whole number of 0 or more"
    );
    assert_eq!(
        error("ShutdownTimeout -1\n", &[]),
        "test.conf:1: parameter ShutdownTimeout: invalid value \"-1\": expected a whole number of 0 or more"
    );
    assert_eq!(
        error("ControllerIP no-such-host.invalid\n", &[]),
        "test.conf:1: parameter ControllerIP: invalid value \"no-such-host.invalid\": not an \
         address, and no IPv4 address found for it as a host name"
    );
    assert_eq!(
        error("SubscriberPort\n", &[]),
        "test.conf:1: parameter SubscriberPort: invalid value \"\": a port number is required"
    );
    assert_eq!(
        error("", &["-Foreground", "maybe"]),
        "command line: parameter Foreground: invalid value \"maybe\": expected 0 or 1 (or yes/no, true/false, on/off)"
    );
    assert_eq!(
        error("MaxConnections 0\n", &[]),
        "test.conf:1: parameter MaxConnections: invalid value \"0\": must be at least 1"
    );
    assert!(error("User a b\n", &[]).starts_with("test.conf:1: parameter User"));
}

#[test]
fn a_bad_value_in_one_mode_names_that_line() {
    assert!(
        error("[a]\nMaxMessages 1\n[b]\nMaxMessages x\n", &[])
            .starts_with("test.conf:4: parameter MaxMessages")
    );
}

#[test]
fn unknown_parameters_are_errors_misplaced_ones_have_no_effect() {
    assert_eq!(
        error("\n\nFoo bar\n", &[]),
        "test.conf:3: unknown parameter \"Foo\""
    );
    // The original accepts a known parameter in any section and ignores it
    // there.
    let c = from_text("[a]\nDebug 1\n");
    assert_eq!(c.debug, 0);
    assert_eq!(c.notes.len(), 1);
    assert!(
        c.notes[0].starts_with("test.conf:2: Debug inside [a] has no effect"),
        "{:?}",
        c.notes
    );
    let err = CommandLine::parse(["-Nope".to_string(), "1".to_string()])
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "command line: unknown parameter \"Nope\" (see -help)"
    );
}

#[test]
fn every_parameter_is_wired_into_the_config() {
    // Each parameter set in a file must change the Config (text kinds: the
    // marker value itself shows up). Catches a table entry that the builder
    // forgets.
    let base = format!("{:?}", from_text(""));
    for p in PARAMS {
        if p.name == "ConfigFileLocation" {
            continue;
        }
        let marker = format!("zz{}zz", p.name);
        let value = match p.kind {
            Kind::Text | Kind::Path | Kind::OptionalPath | Kind::OptionalName | Kind::UrlPath => {
                marker.clone()
            }
            Kind::TimeFormat => format!("%Y {marker}"),
            Kind::Bool | Kind::Flag if p.default == "1" => "0".to_string(),
            Kind::Bool | Kind::Flag => "1".to_string(),
            Kind::Number | Kind::Count { .. } | Kind::Seconds { .. } | Kind::Port | Kind::Level => {
                "12345".to_string()
            }
            Kind::Ip => "10.1.2.3".to_string(),
            Kind::Facility => "local5".to_string(),
            Kind::RedisUrl => format!("redis://{marker}:6379/0"),
            Kind::Choice { words, .. } => words
                .iter()
                .find(|w| **w != p.default)
                .map_or_else(String::new, |w| w.to_string()),
            Kind::Networks => "10.0.0.0/8".to_string(),
        };
        let c = format!("{:?}", from_text(&format!("{} {value}\n", p.name)));
        assert_ne!(c, base, "{} is not used", p.name);
        if p.name == "SubscriberTokenSecret" {
            // Used (the dump differs), and kept out of every dump.
            assert!(!c.contains(&marker), "the secret shows in {c}");
            continue;
        }
        if value.contains(&marker) {
            assert!(c.contains(&marker), "{} is not used", p.name);
        }
    }
}
