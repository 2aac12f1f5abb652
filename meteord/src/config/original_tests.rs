//! The original's reading of a configuration, through the whole pipeline
//! (text + command line → [`Config`]): what each value it accepts means,
//! and the constructs of its distribution file. Each fact was checked by
//! running the original (issue 10); tests/config_fidelity.rs shows the
//! same facts on the wire.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::build::{HUMAN_TIME_FORMAT, UNIX_TIME_FORMAT};
use super::tests::{cli, from_text};
use super::*;

/// The fixture reproducing every construct of the original's
/// meteord.conf.dist (in our own words).
const DIST_CONSTRUCTS: &str = include_str!("../../tests/fixtures/config/dist-constructs.conf");

#[test]
fn the_distribution_constructs_parse_with_their_meaning() {
    let c = from_text(DIST_CONSTRUCTS);
    let mut names: Vec<&str> = c.modes.named.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "flash",
            "iframe",
            "longpoll",
            "simplepoll",
            "smartpoll",
            "xhrinteractive"
        ]
    );
    assert_eq!(c.debug, 1);
    assert_eq!(c.log_filename, Some(PathBuf::from("meteord-debug.log")));
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    for mode in c.modes.named.values().chain([&c.modes.default]) {
        // Globals before the first section apply to every mode.
        assert_eq!(mode.max_time, 120, "{}", mode.name);
        assert_eq!(mode.ping_interval, 4, "{}", mode.name);
    }
    let flash = c.modes.get("flash");
    assert!(flash.persist);
    assert_eq!(flash.header_template, "~channelinfo~");
    assert_eq!(flash.message_template, "~id~/~channel~/~text~\0");
    assert_eq!(flash.ping_message, ".\0");
    assert_eq!(flash.subscriber_shutdown_msg, "x\0");
    assert_eq!(flash.channel_info_template, "CH/~name~/~lastMsgID~\0");
    let iframe = c.modes.get("iframe");
    assert!(iframe.persist && !iframe.close_on_event);
    assert!(iframe.header_template.starts_with(
        "HTTP/1.1 ~status~\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head>\
         <script type=\"text/javascript\">\r\n"
    ));
    assert!(
        iframe
            .header_template
            .ends_with(&format!("<!--{}-->\r\n~channelinfo~\r\n", ".".repeat(600)))
    );
    let longpoll = c.modes.get("longpoll");
    assert!(longpoll.persist && longpoll.close_on_event);
    assert_eq!(longpoll.footer_template, "Meteor.clearpoll();\r\n");
    let simplepoll = c.modes.get("simplepoll");
    assert!(!simplepoll.persist);
    assert_eq!(
        simplepoll.message_template,
        "Meteor.process(~id~,\"~channel~\",\"~text~\");\r\n"
    );
    assert_eq!(
        **c.modes.get("smartpoll"),
        ModeSettings {
            name: "smartpoll".into(),
            ..(**simplepoll).clone()
        }
    );
}

#[test]
fn values_are_read_as_the_original_reads_them() {
    let ports: &[(&str, u16)] = &[
        ("4670", 4670),
        ("70000", 4464),
        ("abc", 0),
        ("15001abc", 15001),
        (" 80 ", 80),
        ("8.9", 8),
    ];
    for &(text, port) in ports {
        let c = from_text(&format!("SubscriberPort {text}\n"));
        assert_eq!(c.subscriber_port, port, "{text:?}");
    }
    for (text, port) in [("abc", 0), ("-3", 0), ("0", 0), ("9999", 9999), ("1.5", 1)] {
        let c = from_text(&format!("UDPPort {text}\n"));
        assert_eq!(c.udp_port, port, "UDPPort {text:?}");
    }
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for (text, ip) in [
        ("", IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        (" localhost", loopback),
        (" 127.1", loopback),
        (" 127.0.0.1 ", loopback),
    ] {
        assert_eq!(
            from_text(&format!("ControllerIP{text}\n")).controller_ip,
            ip,
            "{text:?}"
        );
    }
    for (text, age) in [
        ("7200", 7200),
        ("0", 0),
        ("-5", 0),
        ("abc", 0),
        ("90.5", 90),
    ] {
        let c = from_text(&format!("MaxMessageAge {text}\n"));
        assert_eq!(c.max_message_age, age, "MaxMessageAge {text:?}");
    }
    for (text, keep) in [
        ("250", 250),
        ("0", usize::MAX),
        ("abc", usize::MAX),
        ("-1", 0),
    ] {
        let c = from_text(&format!("MaxMessagesPerChannel {text}\n"));
        assert_eq!(c.max_messages_per_channel, keep, "{text:?}");
    }
    for (text, time) in [("240", 240), ("-5", 0), ("x", 0), ("", 0)] {
        let c = from_text(&format!("MaxTime {text}\n"));
        assert_eq!(c.modes.default.max_time, time, "MaxTime {text:?}");
    }
    for (text, ping) in [("5", 5), ("3", 3), ("2", 0), ("x", 0), ("-4", 0)] {
        let c = from_text(&format!("PingInterval {text}\n"));
        assert_eq!(c.modes.default.ping_interval, ping, "PingInterval {text:?}");
    }
    for (text, on) in [
        ("1", true),
        ("0", false),
        ("", false),
        ("maybe", true),
        ("off", true),
        ("0.0", true),
        ("00", true),
    ] {
        let c = from_text(&format!("[m]\nPersist {text}\n"));
        assert_eq!(c.modes.get("m").persist, on, "Persist {text:?}");
    }
    for (text, level) in [("0", 0), ("", 0), ("1", 1), ("yes", 1), ("7", 7)] {
        assert_eq!(
            from_text(&format!("Debug {text}\n")).debug,
            level,
            "Debug {text:?}"
        );
    }
}

#[test]
fn logging_values() {
    let none = from_text("SyslogFacility none\n");
    assert_eq!(none.syslog_facility, None);
    assert!(
        none.foreground,
        "no syslog: the original stays in the foreground"
    );
    let empty = from_text("SyslogFacility\n");
    assert_eq!(empty.syslog_facility.as_deref(), Some("daemon"));
    assert!(!empty.foreground);
    assert_eq!(
        from_text("SyslogFacility bogus\n")
            .syslog_facility
            .as_deref(),
        Some("user")
    );
    assert_eq!(
        from_text("LogTimeFormat unix\n").log_time_format,
        UNIX_TIME_FORMAT
    );
    assert_eq!(
        from_text("LogTimeFormat human\n").log_time_format,
        HUMAN_TIME_FORMAT
    );
    assert_eq!(from_text("LogTimeFormat %H\n").log_time_format, "%H");
}

#[test]
fn empty_values_of_documents_and_addresses() {
    assert_eq!(
        from_text("SubscriberDocumentRoot\n").subscriber_document_root,
        None
    );
    assert_eq!(
        from_text("SubscriberDocumentRoot /\n").subscriber_document_root,
        None
    );
    assert_eq!(
        from_text("SubscriberDynamicPageAddress\n").subscriber_dynamic_page_address,
        ""
    );
    assert_eq!(from_text("DirectoryIndex\n").directory_index, "");
    // As the original: no check of the URL prefix's shape.
    assert_eq!(
        from_text("SubscriberDynamicPageAddress push\n").subscriber_dynamic_page_address,
        "push"
    );
}

#[test]
fn values_read_differently_from_how_they_look_are_noted() {
    let c = from_text("SubscriberPort 70000\n[m]\nPersist maybe\n");
    assert_eq!(
        c.notes,
        [
            "test.conf:3: Persist \"maybe\" is read as 1 (on), as the original reads it",
            "test.conf:1: SubscriberPort \"70000\" is read as 4464, as the original reads it",
        ]
    );
}

#[test]
fn command_line_modes_layer_over_the_file() {
    let c = load_from_text(
        "MaxTime 1\n[iframe]\nMaxTime 5\nPersist 1\n",
        "t.conf",
        &cli(&["-MaxTime.iframe", "9", "-Persist.fresh", "-MaxTime", "2"]),
    )
    .expect("loads");
    let iframe = c.modes.get("iframe");
    assert_eq!(iframe.max_time, 9);
    assert!(iframe.persist);
    // A mode only the command line names exists, over the global values.
    let fresh = c.modes.get("fresh");
    assert_eq!(fresh.name, "fresh");
    assert!(fresh.persist);
    assert_eq!(fresh.max_time, 2);
    assert_eq!(c.modes.default.max_time, 2);
    assert!(!c.modes.default.persist);
}

#[test]
fn an_empty_config_file_location_is_no_file() {
    let c = load(&cli(&["-ConfigFileLocation", ""])).expect("loads");
    assert_eq!(c.source, None);
    assert_eq!(c.modes.named.len(), 8, "the built-in configuration");
}

#[test]
fn log_filename_without_debug_or_none_is_noted_once() {
    let note = "LogFilename is used only with Debug on or SyslogFacility none";
    let c = from_text("LogFilename /var/log/m.log\n");
    assert_eq!(
        c.notes.iter().filter(|n| n.contains(note)).count(),
        1,
        "{:?}",
        c.notes
    );
    for text in [
        "LogFilename /var/log/m.log\nDebug 1\n",
        "LogFilename /var/log/m.log\nSyslogFacility none\n",
        "Debug 0\n",
    ] {
        assert!(
            !from_text(text).notes.iter().any(|n| n.contains(note)),
            "{text:?}"
        );
    }
}
