//! The configuration file reader: Meteor's `Name value` lines, `#`
//! comments, `[mode]` sections, and the value escapes shared with the
//! command line ([`decode_value`]).
//!
//! This only checks the *shape* of the file (known names, names allowed in
//! sections); the values are checked when the [`super::Config`] is built,
//! with the file and line kept in each [`Setting`] for the error message.

use std::collections::HashMap;
use std::sync::Arc;

use super::error::{ConfigError, Origin};
use super::params::{self, Param};

/// One value as given, decoded, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// Values keyed by canonical parameter name; a later assignment replaces an
/// earlier one (last repeated key wins).
pub(crate) type Settings = HashMap<&'static str, Setting>;

/// A `[mode]` section: its keys override the defaults for that mode.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// Case-sensitive, as modes are looked up.
    pub name: String,
    pub values: Settings,
}

/// A parsed configuration file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Document {
    /// Keys outside any section, wherever in the file they are.
    pub globals: Settings,
    /// Sections in order of first appearance; a repeated `[mode]` header
    /// continues the same section.
    pub sections: Vec<Section>,
    /// Lines accepted but without effect, for the log (`file:line: …`).
    pub notes: Vec<String>,
}

/// Decodes a raw value the way Meteor does: a leading `--` becomes `-`
/// (so a value can start with a dash on the command line), then `\r \n \t`
/// are CR, LF and TAB, `\s` a space, `\0` a NUL, and `\X` any other
/// character `X` itself (so `\\` is one backslash). A lone trailing
/// backslash is kept.
pub(crate) fn decode_value(raw: &str) -> String {
    let raw = if raw.starts_with("--") {
        &raw[1..]
    } else {
        raw
    };
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('s') => out.push(' '),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// White space as the original's file reader sees it (Perl's `\s`: ASCII
/// blanks, line breaks, vertical tab and form feed). It separates a name
/// from its value and makes a line blank.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// The mode name of a section header line: `[`, optional blanks, a name of
/// anything but blanks and `]`, optional blanks, `]`, optional blanks, as
/// the original matches it (so `[ iframe ]` is `iframe`, and `[a/b]` is a
/// section no request can name). `None` if the line is not a header.
fn section_name(line: &str) -> Option<&str> {
    let inner = line
        .trim_start_matches(is_space)
        .strip_prefix('[')?
        .trim_end_matches(is_space)
        .strip_suffix(']')?
        .trim_matches(is_space);
    (!inner.is_empty() && !inner.contains(|c| c == ']' || is_space(c))).then_some(inner)
}

/// Parses configuration file text. `file` names it in error messages.
///
/// The grammar is the original's: a line that is empty or white space, or
/// whose first non-blank is `#`, is skipped; line ends (any run of CR and LF)
/// are not part of the line; a section header starts a section that lasts
/// until the next one; any other line is a name starting in the first column,
/// then blanks, then the value (the rest of the line, trailing blanks
/// included; possibly empty). Inside a section, a known parameter that is
/// not per mode (and `Help`) is accepted and has no effect, as in the
/// original; each such line is reported in [`Document::notes`].
pub(crate) fn parse_document(text: &str, file: &str) -> Result<Document, ConfigError> {
    let file: Arc<str> = Arc::from(file);
    let mut doc = Document::default();
    // Index into `doc.sections` of the section being read; `None` = outside.
    let mut current: Option<usize> = None;

    for (index, line) in text.split('\n').enumerate() {
        let origin = Origin::File {
            file: Arc::clone(&file),
            line: index + 1,
        };
        let content = line.trim_start_matches(is_space);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        // A file edited on Windows: its CRs are line-end noise, not value
        // text (a value that must end in CR says so with `\r`).
        let line = line.trim_end_matches('\r');

        if let Some(name) = section_name(line) {
            current = Some(match doc.sections.iter().position(|s| s.name == name) {
                Some(existing) => existing,
                None => {
                    doc.sections.push(Section {
                        name: name.to_string(),
                        values: Settings::new(),
                    });
                    doc.sections.len() - 1
                }
            });
            continue;
        }
        if line.starts_with(is_space) {
            return Err(ConfigError::Syntax {
                origin,
                text: line.to_string(),
                reason: "a parameter name must start at the beginning of the line",
            });
        }
        if line.starts_with('[') {
            return Err(ConfigError::Syntax {
                origin,
                text: line.to_string(),
                reason: "a section header must be [mode] with a mode name without blanks or ]",
            });
        }

        let (name, raw) = match line.find(is_space) {
            Some(at) => (&line[..at], line[at..].trim_start_matches(is_space)),
            None => (line, ""),
        };
        let section = current.and_then(|i| doc.sections.get(i));
        if name == params::HELP_NAME {
            // The original lists Help among its parameters, so a file may
            // set it; it means nothing there.
            doc.notes
                .push(format!("{origin}: Help has no effect in a file"));
            continue;
        }
        let param: &'static Param =
            params::exact(name).ok_or_else(|| ConfigError::UnknownParameter {
                origin: origin.clone(),
                name: name.to_string(),
                hint: match section {
                    Some(s) if params::case_hint(name).is_empty() => {
                        format!(" (in section [{}])", s.name)
                    }
                    _ => params::case_hint(name),
                },
            })?;
        if param.name == params::CONFIG_FILE_LOCATION.name {
            return Err(ConfigError::ConfigFileLocationInFile { origin });
        }
        let setting = Setting {
            value: decode_value(raw),
            origin: origin.clone(),
        };
        match current.and_then(|i| doc.sections.get_mut(i)) {
            Some(section) if !param.per_mode => {
                doc.notes.push(format!(
                    "{origin}: {} inside [{}] has no effect (only {} apply per mode)",
                    param.name,
                    section.name,
                    params::per_mode_names()
                ));
            }
            Some(section) => {
                section.values.insert(param.name, setting);
            }
            None => {
                doc.globals.insert(param.name, setting);
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(settings: &'a Settings, name: &str) -> Option<&'a str> {
        settings.get(name).map(|s| s.value.as_str())
    }

    #[test]
    fn escapes_decode() {
        assert_eq!(decode_value(r"a\r\nb"), "a\r\nb");
        assert_eq!(decode_value(r"\t\s\0"), "\t \0");
        assert_eq!(decode_value(r"\\"), "\\");
        assert_eq!(decode_value(r"\x\~\\n"), "x~\\n");
        assert_eq!(decode_value(r"end\"), "end\\");
        assert_eq!(decode_value("ü\\sß"), "ü ß");
    }

    #[test]
    fn leading_double_dash_loses_one_dash() {
        assert_eq!(decode_value("--x"), "-x");
        assert_eq!(decode_value("---"), "--");
        assert_eq!(decode_value("-x"), "-x");
        assert_eq!(decode_value("a--b"), "a--b");
        assert_eq!(decode_value(r"--\s"), "- ");
    }

    #[test]
    fn name_value_with_trailing_spaces_kept() {
        let doc = parse_document("PingMessage   ping  \nDirectoryIndex\tx.html\n", "t.conf")
            .expect("parses");
        assert_eq!(value(&doc.globals, "PingMessage"), Some("ping  "));
        assert_eq!(value(&doc.globals, "DirectoryIndex"), Some("x.html"));
    }

    #[test]
    fn name_without_value_is_empty() {
        let doc =
            parse_document("ControllerShutdownMsg\nPingMessage \n", "t.conf").expect("parses");
        assert_eq!(value(&doc.globals, "ControllerShutdownMsg"), Some(""));
        assert_eq!(value(&doc.globals, "PingMessage"), Some(""));
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let text = "# a comment\n\n   \n\t# indented comment\n\x0c\r\n \r\nPersist 1\n#Persist 0\n";
        let doc = parse_document(text, "t.conf").expect("parses");
        assert_eq!(doc.globals.len(), 1);
        assert_eq!(value(&doc.globals, "Persist"), Some("1"));
    }

    #[test]
    fn hash_inside_a_value_is_text() {
        let doc = parse_document("PingMessage a # b\n", "t.conf").expect("parses");
        assert_eq!(value(&doc.globals, "PingMessage"), Some("a # b"));
    }

    #[test]
    fn crlf_line_ends_are_not_part_of_values() {
        let doc =
            parse_document("PingMessage x\r\n[flash]\r\nPersist 1\r\n", "t.conf").expect("parses");
        assert_eq!(value(&doc.globals, "PingMessage"), Some("x"));
        assert_eq!(doc.sections[0].name, "flash");
    }

    #[test]
    fn escapes_and_dashes_apply_to_file_values() {
        let doc = parse_document("HeaderTemplate --a\\r\\n\\s\n", "t.conf").expect("parses");
        assert_eq!(value(&doc.globals, "HeaderTemplate"), Some("-a\r\n "));
    }

    #[test]
    fn last_repeated_key_wins() {
        let text = "PingInterval 3\nPingInterval 9\n[a]\nPersist 1\nPersist 0\n";
        let doc = parse_document(text, "t.conf").expect("parses");
        assert_eq!(value(&doc.globals, "PingInterval"), Some("9"));
        let setting = doc.globals.get("PingInterval").expect("set");
        assert_eq!(
            setting.origin,
            Origin::File {
                file: Arc::from("t.conf"),
                line: 2
            }
        );
        assert_eq!(value(&doc.sections[0].values, "Persist"), Some("0"));
    }

    #[test]
    fn sections_collect_their_keys_and_globals_may_follow_nowhere() {
        // Keys after a section header belong to the section until the next
        // header; there is no way back to the global scope, as in Meteor.
        let text = "Persist 0\n[iframe]\nPersist 1\n[longpoll]\nCloseOnEvent 1\n[empty]\n";
        let doc = parse_document(text, "t.conf").expect("parses");
        assert_eq!(value(&doc.globals, "Persist"), Some("0"));
        let names: Vec<&str> = doc.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["iframe", "longpoll", "empty"]);
        assert_eq!(value(&doc.sections[0].values, "Persist"), Some("1"));
        assert_eq!(value(&doc.sections[1].values, "CloseOnEvent"), Some("1"));
        assert!(doc.sections[2].values.is_empty());
    }

    #[test]
    fn repeated_section_header_continues_the_section() {
        let text = "[a]\nPersist 1\n[b]\nPersist 0\n[a]\nMaxTime 5\nPersist 0\n";
        let doc = parse_document(text, "t.conf").expect("parses");
        assert_eq!(doc.sections.len(), 2);
        assert_eq!(value(&doc.sections[0].values, "MaxTime"), Some("5"));
        assert_eq!(value(&doc.sections[0].values, "Persist"), Some("0"));
    }

    #[test]
    fn section_names_are_case_sensitive() {
        let doc = parse_document("[IFrame]\n[iframe]\n", "t.conf").expect("parses");
        assert_eq!(doc.sections.len(), 2);
    }

    #[test]
    fn names_are_case_sensitive_in_the_file() {
        let err = parse_document("Persist 1\n\npersist 1\n", "/etc/m.conf").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/m.conf:3: unknown parameter \"persist\" (did you mean Persist? names \
             in the configuration file are case-sensitive)"
        );
    }

    #[test]
    fn unknown_parameter_names_file_and_line() {
        let err = parse_document("# x\nBogus 12\n", "my.conf").unwrap_err();
        assert_eq!(err.to_string(), "my.conf:2: unknown parameter \"Bogus\"");
    }

    #[test]
    fn global_only_key_in_a_section_is_accepted_without_effect() {
        // The original stores it under the mode and never reads it there.
        let doc = parse_document(
            "[iframe]\nPersist 1\nSubscriberPort 80\nDebug 1\n",
            "m.conf",
        )
        .expect("parses");
        assert!(doc.globals.is_empty());
        assert_eq!(doc.sections[0].values.len(), 1);
        assert_eq!(doc.notes.len(), 2);
        assert!(
            doc.notes[0]
                .starts_with("m.conf:3: SubscriberPort inside [iframe] has no effect (only "),
            "{:?}",
            doc.notes
        );
    }

    #[test]
    fn help_is_accepted_without_effect() {
        let doc = parse_document("Help\nHelp 1\n[x]\nHelp\n", "m.conf").expect("parses");
        assert!(doc.globals.is_empty());
        assert_eq!(doc.notes.len(), 3);
        assert_eq!(doc.notes[0], "m.conf:1: Help has no effect in a file");
    }

    #[test]
    fn config_file_location_in_a_file_is_refused() {
        for text in [
            "ConfigFileLocation /x\n",
            "# c\n[iframe]\nConfigFileLocation /x\n",
        ] {
            let err = parse_document(text, "m.conf").unwrap_err().to_string();
            assert!(
                err.ends_with(
                    ": ConfigFileLocation cannot be set in a configuration file (give it on the \
                     command line: -ConfigFileLocation /path)"
                ),
                "{err}"
            );
        }
        let err = parse_document("# c\n[iframe]\nConfigFileLocation\n", "m.conf").unwrap_err();
        assert!(err.to_string().starts_with("m.conf:3: "), "{err}");
    }

    #[test]
    fn a_name_must_start_the_line() {
        let err = parse_document("# x\n  Persist 1\n", "m.conf").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.conf:2: a parameter name must start at the beginning of the line: \"  Persist 1\""
        );
        assert!(parse_document("\tPersist 1\n", "m.conf").is_err());
    }

    #[test]
    fn unknown_parameter_in_a_section_names_the_section() {
        let err = parse_document("[iframe]\nBogus 1\n", "m.conf").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.conf:2: unknown parameter \"Bogus\" (in section [iframe])"
        );
    }

    #[test]
    fn section_headers_as_the_original_reads_them() {
        let text = "[ iframe ]\nPersist 1\n[\tlongpoll]\t\n[a/b]\n[a[b]\n [x?]\r\n";
        let doc = parse_document(text, "m.conf").expect("parses");
        let names: Vec<&str> = doc.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["iframe", "longpoll", "a/b", "a[b", "x?"]);
        assert_eq!(value(&doc.sections[0].values, "Persist"), Some("1"));
    }

    #[test]
    fn blanks_between_name_and_value_are_any_white_space() {
        let doc = parse_document("Persist\x0c\t 1\nMaxTime\x0b7\n", "m.conf").expect("parses");
        assert_eq!(value(&doc.globals, "Persist"), Some("1"));
        assert_eq!(value(&doc.globals, "MaxTime"), Some("7"));
    }

    #[test]
    fn every_trailing_cr_is_line_end() {
        let doc = parse_document("PingMessage x \r\r\n", "m.conf").expect("parses");
        assert_eq!(value(&doc.globals, "PingMessage"), Some("x "));
        // A CR inside the line is text.
        let doc = parse_document("PingMessage a\rb\n", "m.conf").expect("parses");
        assert_eq!(value(&doc.globals, "PingMessage"), Some("a\rb"));
    }

    #[test]
    fn malformed_section_headers_are_errors() {
        for bad in ["[iframe", "[]", "[a b]", "[x]]", "[ ]"] {
            let err = parse_document(&format!("Persist 1\n{bad}\n"), "m.conf").unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with("m.conf:2: a section header must be [mode]"),
                "{bad}: {msg}"
            );
        }
    }

    /// Writes `value` in file syntax (the inverse of [`decode_value`]).
    fn encode_value(value: &str) -> String {
        let mut out = String::new();
        if value.starts_with('-') {
            out.push('-');
        }
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\0' => out.push_str("\\0"),
                ' ' => out.push_str("\\s"),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        /// Any text, written with escapes, reads back byte for byte from a
        /// file line.
        #[test]
        fn any_value_round_trips_through_a_file_line(v in "\\PC*|[-\\\\ \r\n\t\0a]{0,12}") {
            let text = format!("# x\n[m]\nMessageTemplate {}\n", encode_value(&v));
            let doc = parse_document(&text, "p.conf").expect("parses");
            proptest::prop_assert_eq!(value(&doc.sections[0].values, "MessageTemplate"), Some(v.as_str()));
        }

        /// The reader never panics, whatever the file holds.
        #[test]
        fn arbitrary_text_never_panics(text in "(\\PC|[\\[\\] \r\n\t#\\\\])*") {
            let _ = parse_document(&text, "p.conf");
        }
    }

    #[test]
    fn section_header_may_have_surrounding_blanks() {
        let doc = parse_document("  [flash]  \n", "m.conf").expect("parses");
        assert_eq!(doc.sections[0].name, "flash");
    }
}
