//! Tests of how settings become the configuration.

use super::*;

#[test]
fn booleans_accept_words() {
    for t in ["1", "yes", "TRUE", "On", " 1 "] {
        assert_eq!(parse_bool(t), Ok(true), "{t}");
    }
    for f in ["0", "No", "false", "OFF"] {
        assert_eq!(parse_bool(f), Ok(false), "{f}");
    }
    for bad in ["2", "", "y", "-1"] {
        assert!(parse_bool(bad).is_err(), "{bad}");
    }
}

fn file_setting(value: &str) -> Setting {
    Setting {
        value: value.to_string(),
        origin: Origin::File {
            file: Arc::from("t.conf"),
            line: 1,
        },
    }
}

#[test]
fn debug_levels_follow_perl_truth() {
    assert_eq!(debug_level("0"), 0);
    assert_eq!(debug_level(""), 0);
    assert_eq!(debug_level("3"), 3);
    assert_eq!(debug_level("yes"), 1);
    assert_eq!(debug_level("0.0"), 1);
    assert_eq!(debug_level("-2"), 1);
    assert_eq!(debug_level("999"), 255);
}

#[test]
fn facilities_as_the_original_reads_them() {
    let mut notes = Notes::default();
    let mut f = |v: &str| facility(&file_setting(v), &mut notes);
    assert_eq!(f("daemon").as_deref(), Some("daemon"));
    assert_eq!(f("LOCAL3").as_deref(), Some("local3"));
    assert_eq!(f("none"), None);
    assert_eq!(f("").as_deref(), Some("daemon"));
    assert_eq!(f("0").as_deref(), Some("daemon"));
    assert_eq!(f("nonsense").as_deref(), Some("user"));
    // `none` is a word the original compares exactly.
    assert_eq!(f("None").as_deref(), Some("user"));
    assert_eq!(notes.0.len(), 2, "{:?}", notes.0);
    assert_eq!(
        notes.0[0],
        "t.conf:1: SyslogFacility \"nonsense\" is read as user (not a syslog facility), \
         as the original reads it"
    );
}

#[test]
fn time_formats_unix_human_or_strftime() {
    let mut notes = Notes::default();
    let mut t = |v: &str| time_format(&file_setting(v), &mut notes);
    assert_eq!(t("unix"), "%s");
    assert_eq!(t("human"), HUMAN_TIME_FORMAT);
    assert_eq!(t(""), HUMAN_TIME_FORMAT);
    assert_eq!(t("%Y-%m-%d"), "%Y-%m-%d");
    assert_eq!(t("iso"), HUMAN_TIME_FORMAT);
    assert_eq!(t("%Y %K"), HUMAN_TIME_FORMAT);
    assert_eq!(notes.0.len(), 2, "{:?}", notes.0);
}

#[test]
fn ports_take_the_low_16_bits() {
    assert_eq!(low_16_bits(4670), 4670);
    assert_eq!(low_16_bits(70000), 4464);
    assert_eq!(low_16_bits(65536), 0);
    assert_eq!(low_16_bits(-1), 65535);
}

#[test]
fn document_root_none_when_empty_or_slash() {
    assert_eq!(document_root(""), None);
    assert_eq!(document_root("/"), None);
    assert_eq!(document_root("/srv"), Some(PathBuf::from("/srv")));
    assert_eq!(document_root("//"), Some(PathBuf::from("//")));
}

#[test]
fn pings_above_two_seconds() {
    assert_eq!(ping_interval(5.0), 5);
    assert_eq!(ping_interval(2.0), 0);
    assert_eq!(ping_interval(2.5), 3);
    assert_eq!(ping_interval(-1.0), 0);
    assert_eq!(ping_interval(f64::NAN), 0);
}
