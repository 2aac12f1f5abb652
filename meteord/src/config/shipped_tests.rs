//! Tests of the shipped `conf/meteord.conf` (also the built-in
//! configuration) against DESIGN.md's templates and defaults.

use std::path::Path;

use super::params::PARAMS;
use super::tests::from_text;
use super::*;

fn builtin() -> Config {
    load_builtin(&CommandLine::default()).expect("the shipped configuration loads")
}

/// DESIGN.md "Defaults outside sections".
pub(super) fn design_defaults() -> ModeSettings {
    ModeSettings {
        name: String::new(),
        persist: false,
        close_on_event: false,
        max_messages: 0,
        max_time: 0,
        ping_interval: 5,
        header_template: "HTTP/1.1 ~status~\r\n\r\n~channelinfo~\r\n".into(),
        message_template: "<script>p(~id~,\"~channel~\",\"~text~\");</script>\r\n".into(),
        channel_info_template: "<script>ch(\"~name~\", ~lastMsgID~);</script>\r\n".into(),
        ping_message: "<script>p(-1,\"\");</script>\r\n".into(),
        footer_template: "</body></html>".into(),
        subscriber_shutdown_msg: "<script>eof();</script>\r\n".into(),
        event_source_retry: 3000,
        event_source_allow_origin: "*".into(),
    }
}

/// DESIGN.md's poll modes (`simplepoll`, `smartpoll`, `longpoll`).
fn design_poll(name: &str, persist: bool, close_on_event: bool) -> ModeSettings {
    ModeSettings {
        name: name.into(),
        persist,
        close_on_event,
        header_template:
            "HTTP/1.1 ~status~\r\nContent-Type: text/html; charset=utf-8\r\n\r\n~channelinfo~"
                .into(),
        message_template: "Meteor.process(~id~,\"~channel~\",\"~text~\");\r\n".into(),
        channel_info_template: "Meteor.channelInfo(\"~name~\", ~lastMsgID~);\r\n".into(),
        footer_template: "Meteor.clearpoll();\r\n".into(),
        ping_message: "Meteor.process(-1);\r\n".into(),
        // Ours: the default shutdown message is HTML, which would break the
        // JavaScript a poll answers; the footer still ends the poll.
        subscriber_shutdown_msg: String::new(),
        ..design_defaults()
    }
}

// --- the shipped configuration -------------------------------------------

#[test]
fn shipped_conf_has_exactly_its_modes() {
    let config = builtin();
    let mut names: Vec<&str> = config.modes.named.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "eventsource",
            "flash",
            "iframe",
            "longpoll",
            "simplepoll",
            "smartpoll",
            "websocket",
            "xhrinteractive"
        ]
    );
    assert_eq!(config.source, None);
}

#[test]
fn shipped_defaults_equal_design_defaults() {
    let config = builtin();
    assert_eq!(*config.modes.default, design_defaults());
    // An unknown mode gets them.
    assert_eq!(**config.modes.get("nosuchmode"), design_defaults());
    // Mode names are case-sensitive.
    assert_eq!(**config.modes.get("IFRAME"), design_defaults());
}

#[test]
fn shipped_xhrinteractive() {
    let config = builtin();
    let header = format!(
        "HTTP/1.1 ~status~\r\n\r\n{}\r\n~channelinfo~\r\n",
        ".".repeat(1024)
    );
    let expected = ModeSettings {
        name: "xhrinteractive".into(),
        persist: true,
        header_template: header,
        ..design_defaults()
    };
    assert_eq!(**config.modes.get("xhrinteractive"), expected);
}

#[test]
fn shipped_poll_modes() {
    let config = builtin();
    assert_eq!(
        **config.modes.get("simplepoll"),
        design_poll("simplepoll", false, false)
    );
    assert_eq!(
        **config.modes.get("smartpoll"),
        design_poll("smartpoll", false, false)
    );
    assert_eq!(
        **config.modes.get("longpoll"),
        design_poll("longpoll", true, true)
    );
}

#[test]
fn shipped_flash_has_no_http_header() {
    let config = builtin();
    let expected = ModeSettings {
        name: "flash".into(),
        persist: true,
        header_template: "~channelinfo~".into(),
        message_template: "~id~/~channel~/~text~\0".into(),
        channel_info_template: "CH/~name~/~lastMsgID~\0".into(),
        ping_message: ".\0".into(),
        subscriber_shutdown_msg: "x\0".into(),
        // Ours: the default footer is HTML; a socket client wants nothing.
        footer_template: String::new(),
        ..design_defaults()
    };
    assert_eq!(**config.modes.get("flash"), expected);
}

#[test]
fn shipped_iframe_is_a_padded_page_registering_with_the_parent() {
    let config = builtin();
    let iframe = config.modes.get("iframe");
    assert_eq!(iframe.name, "iframe");
    assert!(iframe.persist);
    assert!(!iframe.close_on_event);
    let header = &iframe.header_template;
    assert!(
        header.starts_with(
            "HTTP/1.1 ~status~\r\nServer: ~server~\r\nContent-Type: text/html; charset=utf-8\r\n"
        ),
        "{header:?}"
    );
    let (head, body) = header.split_once("\r\n\r\n").expect("headers end");
    for line in head.split("\r\n").skip(1) {
        assert!(line.contains(": "), "not a header line: {line:?}");
    }
    assert!(body.starts_with("<!DOCTYPE html>"));
    assert!(body.contains("parent.Meteor.register(this);"));
    assert!(body.contains(&format!("<!--{}-->", " ".repeat(1024))));
    assert!(body.len() > 1024 && body.len() < 2048, "{}", body.len());
    assert!(body.ends_with("~channelinfo~"));
    // Messages, pings and the end are the defaults' script calls.
    assert_eq!(
        iframe.message_template,
        "<script>p(~id~,\"~channel~\",\"~text~\");</script>\r\n"
    );
    assert_eq!(iframe.footer_template, "</body></html>");
    assert_eq!(iframe.ping_message, design_defaults().ping_message);
    assert_eq!(
        iframe.subscriber_shutdown_msg,
        design_defaults().subscriber_shutdown_msg
    );
    // The page defines what the message scripts call.
    for f in ["function p(", "function ch(", "function eof("] {
        assert!(body.contains(f), "{f}");
    }
}

#[test]
fn shipped_globals() {
    let config = builtin();
    assert_eq!(
        config.state_file.as_deref(),
        Some(Path::new("/var/lib/meteord/meteord.state"))
    );
    // Everything else is the table default.
    let defaults = from_text("");
    assert_eq!(config.subscriber_port, defaults.subscriber_port);
    assert_eq!(config.controller_ip, defaults.controller_ip);
    assert_eq!(config.pid_file, defaults.pid_file);
}

#[test]
fn shipped_conf_documents_every_parameter_with_its_default() {
    // Each parameter appears either as "# Name default" (its commented
    // default) or as an active "Name value" line, after a comment.
    let lines: Vec<&str> = BUILTIN_CONF.lines().collect();
    for p in PARAMS {
        let commented = format!("# {} {}", p.name, p.default);
        let commented = commented.trim_end();
        let active = format!("{} ", p.name);
        let at = lines
            .iter()
            .position(|l| *l == commented || l.starts_with(&active))
            .unwrap_or_else(|| panic!("conf/meteord.conf does not document {}", p.name));
        assert!(
            at > 0 && lines[at - 1].starts_with('#'),
            "{} has no comment above it",
            p.name
        );
    }
}

#[test]
fn shipped_conf_has_no_trailing_blanks() {
    // Trailing blanks are part of values; in the shipped file they would be
    // invisible mistakes.
    for (i, line) in BUILTIN_CONF.lines().enumerate() {
        assert!(
            !line.ends_with([' ', '\t']),
            "line {} ends in a blank",
            i + 1
        );
    }
}
