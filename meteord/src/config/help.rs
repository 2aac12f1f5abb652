//! The `-help` text: usage, the special flags, then every parameter of the
//! table with its description and default.

use super::params;

/// Width `-help` wraps descriptions at.
const HELP_WIDTH: usize = 78;
/// Indentation of a description under its parameter line.
const HELP_INDENT: &str = "      ";

/// The `-help` text: usage, the special flags, then every parameter with
/// its description and default.
pub(crate) fn help_text() -> String {
    let mut out = String::from(
        "Usage: meteord [-Name value]...\n\
         \n\
         meteord: a Meteor-compatible Comet (server push) daemon.\n\
         \n\
         Every parameter below can be given on the command line (-Name value; names\n\
         are case-insensitive and may be shortened to any unique prefix, a prefix\n\
         meaning what it meant in the original Meteor) or in the configuration file\n\
         (Name value, the name at the start of the line; names are case-sensitive\n\
         there). The command line wins over the file. A name followed by another\n\
         -Name, or by nothing, gets the value 1; a value cannot start with a single\n\
         dash. Values understand the escapes \\r \\n \\t \\s (space) \\0 (NUL) and \\\\;\n\
         a value starting with -- loses one dash. Parameters marked [mode] may also be\n\
         set inside a [mode] section of the file, or as -Name.mode value, for that mode\n\
         only; given as -Name they set the default for every mode, and a [mode]\n\
         section of the file still overrides them. Any other parameter inside a\n\
         section is accepted and has no effect (a warning is logged), as in the\n\
         original.\n\
         \n\
         The defaults below are the built-in ones. When no file exists at\n\
         ConfigFileLocation, the shipped conf/meteord.conf (built in) is read as if it\n\
         had been given: it adds the mode sections iframe, xhrinteractive, longpoll,\n\
         smartpoll, simplepoll and flash, and sets StateFile.\n\
         \n\
         \x20 -d                     same as -Debug\n\
         \x20 -help, -h, --help      show this help and exit\n\
         \x20 -v, -version, --version  show the version and exit\n\
         \x20 -manpage               print the meteord(8) manual page (roff) and exit\n\
         \n\
         Parameters:\n",
    );
    for p in params::sorted() {
        out.push_str(&format!("  -{} {}", p.name, p.kind.placeholder()));
        if p.per_mode {
            out.push_str("  [mode]");
        }
        out.push('\n');
        wrap_into(&mut out, p.help);
        if p.default.is_empty() {
            out.push_str(&format!("{HELP_INDENT}Default: (empty)\n"));
        } else {
            out.push_str(&format!("{HELP_INDENT}Default: {}\n", p.default));
        }
    }
    out
}

/// Appends `text` word-wrapped at [`HELP_WIDTH`], indented by [`HELP_INDENT`].
fn wrap_into(out: &mut String, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && HELP_INDENT.len() + line.len() + 1 + word.len() > HELP_WIDTH {
            out.push_str(HELP_INDENT);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(HELP_INDENT);
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_parameter_with_description_and_default() {
        let help = help_text();
        for p in params::PARAMS {
            let head = format!("  -{} {}", p.name, p.kind.placeholder());
            let at = help
                .find(&head)
                .unwrap_or_else(|| panic!("{} not listed", p.name));
            let block = &help[at..];
            let block = &block[..block.find("Default:").expect("default line")];
            let first_word = p.help.split_whitespace().next().expect("help text");
            assert!(
                block.contains(first_word),
                "{} lacks its description",
                p.name
            );
            let default = if p.default.is_empty() {
                "(empty)"
            } else {
                p.default
            };
            assert!(
                help[at..].contains(&format!("Default: {default}\n")),
                "{} lacks its default",
                p.name
            );
        }
        assert!(help.contains("-d "));
        assert!(help.contains("Default: 4670\n"));
        assert!(help.contains(r"Default: HTTP/1.1 ~status~\r\n\r\n~channelinfo~\r\n"));
    }

    #[test]
    fn help_lines_stay_narrow() {
        for line in help_text().lines() {
            // Defaults are printed whole; only prose is wrapped.
            if !line.trim_start().starts_with("Default:") {
                assert!(line.len() <= HELP_WIDTH + 2, "too wide: {line}");
            }
        }
    }
}
