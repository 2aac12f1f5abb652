//! Tests of the parameter table.

use super::*;

/// Names are unique (case-insensitively) and `-help` and the manual list
/// them alphabetically, whatever order the table's area blocks have.
#[test]
fn names_are_unique_and_listed_sorted() {
    for pair in sorted().windows(2) {
        assert!(
            pair[0].name.to_ascii_lowercase() < pair[1].name.to_ascii_lowercase(),
            "{} / {}",
            pair[0].name,
            pair[1].name
        );
    }
}

#[test]
fn per_mode_set_is_exactly_the_documented_one() {
    let names: Vec<&str> = PARAMS
        .iter()
        .filter(|p| p.per_mode)
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        [
            "ChannelInfoTemplate",
            "CloseOnEvent",
            "FooterTemplate",
            "HeaderTemplate",
            "MaxMessages",
            "MaxTime",
            "MessageTemplate",
            "Persist",
            "PingInterval",
            "PingMessage",
            "SubscriberShutdownMsg",
            "EventSourceRetry"
        ]
    );
}

#[test]
fn every_meteor_and_own_parameter_is_in_the_table() {
    let expected = [
        "ChannelInfoTemplate",
        "CloseOnEvent",
        "ConfigFileLocation",
        "ControllerIP",
        "ControllerPort",
        "ControllerShutdownMsg",
        "Debug",
        "DirectoryIndex",
        "FooterTemplate",
        "HeaderTemplate",
        "LogFilename",
        "LogTimeFormat",
        "MaxMessageAge",
        "MaxMessages",
        "MaxMessagesPerChannel",
        "MaxTime",
        "MessageTemplate",
        "Persist",
        "PingInterval",
        "PingMessage",
        "SubscriberIP",
        "SubscriberPort",
        "SubscriberShutdownMsg",
        "SubscriberDocumentRoot",
        "SubscriberDynamicPageAddress",
        "SyslogFacility",
        "UDPIP",
        "UDPPort",
        "MaxConnections",
        "StateFile",
        "PidFile",
        "User",
        "Group",
        "Foreground",
        "SendChannelInfo",
        "HeaderTimeout",
        "WriteTimeout",
        "ShutdownTimeout",
        "EventSourceAllowOrigin",
        "EventSourceRetry",
        "ClusterRedis",
        // history (issue 14)
        "HistoryFile",
        "HistoryFsync",
        "SubscriberTokenChannels",
        "SubscriberTokenSecret",
        "ControllerAllow",
        "ControllerIdleTimeout",
        "ControllerMaxLine",
        "MaxChannelNameLength",
        "MaxChannelsPerRequest",
        "MaxConnectionsPerIP",
        "MaxHeaderBytes",
        "MaxMessageSize",
        "MetricsIP",
        "MetricsPort",
        "WebSocketMaxMessage",
        "WebSocketMaxRate",
    ];
    assert_eq!(PARAMS.len(), expected.len());
    for name in expected {
        assert!(exact(name).is_some(), "{name} missing");
    }
}

#[test]
fn exact_lookup_is_case_sensitive() {
    assert!(exact("Persist").is_some());
    assert!(exact("persist").is_none());
    assert!(case_hint("persist").contains("did you mean Persist?"));
    assert_eq!(case_hint("Bogus"), "");
}

fn name(given: &str) -> Option<&'static str> {
    match resolve(given) {
        Ok(Resolved::Param(p)) => Some(p.name),
        Ok(Resolved::Help) => Some(HELP_NAME),
        Err(_) => None,
    }
}

#[test]
fn original_names_are_all_ours_or_help() {
    for n in ORIGINAL_NAMES {
        assert!(exact(n).is_some() || *n == HELP_NAME, "{n}");
    }
}

#[test]
fn prefixes_resolve_case_insensitively() {
    assert_eq!(name("subscriberp"), Some("SubscriberPort"));
    assert_eq!(name("SUBSCRIBERPORT"), Some("SubscriberPort"));
    assert_eq!(name("maxmessagesp"), Some("MaxMessagesPerChannel"));
    assert_eq!(name("udpi"), Some("UDPIP"));
    assert_eq!(name("hel"), Some(HELP_NAME));
    // Ours, where no name of the original matches.
    // `maxc` would also be MaxConnectionsPerIP and MaxChannel…: the
    // whole name is needed since those exist (issue 14).
    assert_eq!(name("maxconnections"), Some("MaxConnections"));
    assert_eq!(name("maxconnectionsp"), Some("MaxConnectionsPerIP"));
    assert_eq!(name("st"), Some("StateFile"));
    assert_eq!(name("for"), Some("Foreground"));
}

#[test]
fn abbreviations_mean_what_they_meant_in_the_original() {
    // Unique among the original's names, though ours add more names
    // they abbreviate (Foreground, HeaderTimeout, MaxMessages).
    assert_eq!(name("f"), Some("FooterTemplate"));
    assert_eq!(name("fo"), Some("FooterTemplate"));
    assert_eq!(name("hea"), Some("HeaderTemplate"));
    assert_eq!(name("headert"), Some("HeaderTemplate"));
    assert_eq!(name("maxmessages"), Some("MaxMessagesPerChannel"));
    assert_eq!(name("MaxMessages"), Some("MaxMessagesPerChannel"));
}

#[test]
fn ambiguous_prefix_lists_candidates() {
    let err = resolve("subscriber").unwrap_err().to_string();
    assert!(err.contains("ambiguous parameter -subscriber"), "{err}");
    for c in [
        "-SubscriberIP",
        "-SubscriberPort",
        "-SubscriberDocumentRoot",
    ] {
        assert!(err.contains(c), "{err}");
    }
    let err = resolve("maxmessage").unwrap_err().to_string();
    assert!(
        err.contains("-MaxMessageAge, -MaxMessagesPerChannel"),
        "{err}"
    );
    // Ambiguous in the original: refused even where ours alone would
    // not be.
    assert_eq!(
        resolve("D").unwrap_err().to_string(),
        "command line: ambiguous parameter -D: could be -Debug, -DirectoryIndex"
    );
    assert_eq!(
        resolve("he").unwrap_err().to_string(),
        "command line: ambiguous parameter -he: could be -HeaderTemplate, -Help"
    );
    assert!(resolve("Pi").is_err());
}

#[test]
fn unknown_command_line_name_is_named() {
    let err = resolve("bogus").unwrap_err().to_string();
    assert_eq!(err, "command line: unknown parameter \"bogus\" (see -help)");
    // `--Name` is the name `-Name`, which no parameter starts with.
    let err = resolve("-Persist").unwrap_err().to_string();
    assert_eq!(
        err,
        "command line: unknown parameter \"-Persist\" (parameters take one dash: -Persist)"
    );
}
