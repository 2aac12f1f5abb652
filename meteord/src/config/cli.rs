//! The command line, read as the original reads it: `-Name value` pairs
//! (one dash; names case-insensitive and shortened to any unique prefix,
//! resolved against the original's parameter names first, so a prefix means
//! what it meant there), `-Name.mode value` for one mode, a name followed by
//! another `-Name` (or by nothing) meaning the value `1`, `-d` for `Debug`,
//! `-v` … `-version` (or `--version`) for the version, `-manpage`, and
//! `-help`. The parsed overrides are
//! kept in [`CommandLine`] so a SIGHUP can re-read the file and apply them
//! again.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::help;
use super::params::{self, Param, Resolved};
use super::parse::decode_value;

/// Result of reading the command line.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// Run the daemon with these overrides.
    Run(CommandLine),
    /// `-help` was asked for: print this text and exit 0.
    Help(String),
    /// `-v` (up to `-version`) was given somewhere: print this line and
    /// exit 0, whatever else the command line holds (as the original does).
    Version(String),
}

/// One `-Name value` or `-Name.mode value`.
#[derive(Debug, Clone)]
pub(crate) struct Override {
    pub param: &'static Param,
    /// The mode of `-Name.mode`; `None` = every mode.
    pub mode: Option<String>,
    /// Decoded (escapes, a leading `--`).
    pub value: String,
}

/// Parsed `-Name value` overrides, kept so SIGHUP can re-read the file with
/// them.
#[derive(Debug, Clone)]
pub struct CommandLine {
    /// Where to read the configuration file (`-ConfigFileLocation`).
    config_file_location: PathBuf,
    /// Overrides in command-line order (a later one wins).
    pub(crate) overrides: Vec<Override>,
    /// Arguments accepted but without effect, for the log.
    pub(crate) notes: Vec<String>,
}

impl Default for CommandLine {
    /// No arguments: the default file location, no overrides.
    fn default() -> Self {
        CommandLine {
            config_file_location: PathBuf::from(params::CONFIG_FILE_LOCATION.default),
            overrides: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Whether `arg` asks for the version: `-v`, `-ve`, … `-version` (any of
/// them, anywhere, even where a value is expected; case matters).
fn is_version(arg: &str) -> bool {
    arg.len() >= 2 && "-version".starts_with(arg)
}

/// The spellings of ours that show the help besides the original's `-help`
/// and `-hel` (which resolve to its `Help` parameter).
fn is_help_spelling(arg: &str) -> bool {
    ["-h", "--help", "-?"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(arg))
}

/// Whether the argument after a name is its value: anything but a word
/// starting with a single dash (so `--x` is the value `-x`).
fn is_value(next: &str) -> bool {
    !next.starts_with('-') || next.starts_with("--")
}

impl CommandLine {
    /// Reads the arguments; `args` excludes `argv[0]`.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, ConfigError> {
        let args: Vec<String> = args.into_iter().collect();
        if args.iter().any(|a| is_version(a)) {
            return Ok(Invocation::Version(format!(
                "meteord {}\n",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let mut cli = CommandLine::default();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            if is_help_spelling(&arg) {
                return Ok(Invocation::Help(help::help_text()));
            }
            // The man page, from the same table as -help (packaging ships
            // it); and the GNU spelling of -version, in a name's place only
            // (as a value, --version is the text "-version").
            if arg == "-manpage" {
                return Ok(Invocation::Help(super::manpage::man_page()));
            }
            if arg == "--version" {
                return Ok(Invocation::Version(format!(
                    "meteord {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            let name = arg
                .strip_prefix('-')
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ConfigError::UnexpectedArgument { arg: arg.clone() })?;
            // `-d` is Debug; checked before a mode suffix is split off, so
            // `-d.x` is the (ambiguous) prefix `d`, as in the original.
            let name = if name == "d" { "Debug" } else { name };
            let (base, mode) = match name.split_once('.') {
                Some((base, mode)) if !mode.is_empty() => (base, Some(mode.to_string())),
                _ => (name, None),
            };
            let param = match params::resolve(base)? {
                Resolved::Help => return Ok(Invocation::Help(help::help_text())),
                Resolved::Param(param) => param,
            };
            let value = match args.next_if(|next| is_value(next)) {
                Some(raw) => decode_value(&raw),
                None => "1".to_string(),
            };
            let is_location = param.name == params::CONFIG_FILE_LOCATION.name;
            match mode {
                None if is_location => cli.config_file_location = PathBuf::from(value),
                Some(mode) if is_location || !param.per_mode => cli.notes.push(format!(
                    "command line: -{}.{mode} has no effect ({} is not a per-mode parameter)",
                    param.name, param.name
                )),
                mode => cli.overrides.push(Override { param, mode, value }),
            }
        }
        Ok(Invocation::Run(cli))
    }

    /// The configuration file this command line asks for (empty = none).
    pub fn config_file_location(&self) -> &Path {
        &self.config_file_location
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<CommandLine, ConfigError> {
        match CommandLine::parse(args.iter().map(|s| s.to_string()))? {
            Invocation::Run(cli) => Ok(cli),
            other => panic!("unexpected {other:?} for {args:?}"),
        }
    }

    fn pairs(cli: &CommandLine) -> Vec<(&'static str, &str)> {
        cli.overrides
            .iter()
            .map(|o| (o.param.name, o.value.as_str()))
            .collect()
    }

    #[test]
    fn no_arguments_is_the_default_file() {
        let cli = run(&[]).expect("parses");
        assert_eq!(cli.config_file_location(), Path::new("/etc/meteord.conf"));
        assert!(cli.overrides.is_empty());
    }

    #[test]
    fn contract_command_line_parses() {
        let cli = run(super::super::CONTRACT_ARGS).expect("parses");
        assert_eq!(cli.config_file_location(), Path::new("/nonexistent"));
        assert_eq!(
            pairs(&cli),
            [
                ("Foreground", "1"),
                ("SubscriberIP", "127.0.0.1"),
                ("SubscriberPort", "34670"),
                ("ControllerPort", "34671"),
                ("SubscriberDocumentRoot", "/srv/meteord/public"),
                ("StateFile", "/tmp/x.state"),
            ]
        );
    }

    #[test]
    fn names_are_case_insensitive_prefixes() {
        let cli = run(&[
            "-subscriberp",
            "80",
            "-CONTROLLERPORT",
            "81",
            "-maxmessagesp",
            "3",
        ])
        .expect("parses");
        assert_eq!(
            pairs(&cli),
            [
                ("SubscriberPort", "80"),
                ("ControllerPort", "81"),
                ("MaxMessagesPerChannel", "3")
            ]
        );
    }

    #[test]
    fn two_dashes_are_refused_as_by_the_original() {
        // The original strips one dash and finds no parameter "-Persist".
        let err = run(&["--Persist", "1"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "command line: unknown parameter \"-Persist\" (parameters take one dash: -Persist)"
        );
    }

    #[test]
    fn ambiguous_prefix_is_an_error_listing_candidates() {
        let err = run(&["-Max", "3"]).unwrap_err().to_string();
        assert!(
            err.starts_with("command line: ambiguous parameter -Max: could be "),
            "{err}"
        );
        assert!(
            err.contains("-MaxMessageAge") && err.contains("-MaxTime"),
            "{err}"
        );
    }

    #[test]
    fn d_is_debug_and_takes_a_value_like_any_name() {
        let cli = run(&["-d", "-SubscriberPort", "5"]).expect("parses");
        assert_eq!(pairs(&cli), [("Debug", "1"), ("SubscriberPort", "5")]);
        let cli = run(&["-d"]).expect("parses");
        assert_eq!(pairs(&cli), [("Debug", "1")]);
        // The original: `-d 0` is Debug 0.
        let cli = run(&["-d", "0"]).expect("parses");
        assert_eq!(pairs(&cli), [("Debug", "0")]);
        let cli = run(&["-de", "2"]).expect("parses");
        assert_eq!(pairs(&cli), [("Debug", "2")]);
        // Only lower-case `d`: `D` abbreviates Debug and DirectoryIndex.
        let err = run(&["-D"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "command line: ambiguous parameter -D: could be -Debug, -DirectoryIndex"
        );
    }

    #[test]
    fn a_name_without_a_value_is_1() {
        let cli = run(&["-Persist", "-MaxTime", "5", "-CloseOnEvent"]).expect("parses");
        assert_eq!(
            pairs(&cli),
            [("Persist", "1"), ("MaxTime", "5"), ("CloseOnEvent", "1")]
        );
        let cli = run(&["-SubscriberPort"]).expect("parses");
        assert_eq!(pairs(&cli), [("SubscriberPort", "1")]);
    }

    #[test]
    fn a_value_cannot_start_with_one_dash() {
        // `-x` is the next name, as in the original; `--x` is the value -x.
        let err = run(&["-PingMessage", "-x"]).unwrap_err().to_string();
        assert_eq!(err, "command line: unknown parameter \"x\" (see -help)");
        let cli = run(&["-PingMessage", "--x", "-FooterTemplate", "--"]).expect("parses");
        assert_eq!(
            pairs(&cli),
            [("PingMessage", "-x"), ("FooterTemplate", "-")]
        );
    }

    #[test]
    fn a_mode_suffix_sets_one_mode() {
        let cli =
            run(&["-Persist.iframe", "1", "-maxt.a.b", "9", "-Persist", "0"]).expect("parses");
        let got: Vec<(&str, Option<&str>, &str)> = cli
            .overrides
            .iter()
            .map(|o| (o.param.name, o.mode.as_deref(), o.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Persist", Some("iframe"), "1"),
                ("MaxTime", Some("a.b"), "9"),
                ("Persist", None, "0")
            ]
        );
        // A parameter that is not per mode: accepted, no effect.
        let cli = run(&["-SubscriberPort.iframe", "80"]).expect("parses");
        assert!(cli.overrides.is_empty());
        assert_eq!(
            cli.notes,
            [
                "command line: -SubscriberPort.iframe has no effect (SubscriberPort is not a \
              per-mode parameter)"
            ]
        );
        // A trailing dot is part of the name.
        assert!(run(&["-Persist.", "1"]).is_err());
    }

    #[test]
    fn help_in_every_spelling() {
        for spelling in ["-help", "-h", "--help", "-HELP", "-?", "-hel", "-Help.x"] {
            match CommandLine::parse([spelling.to_string()]) {
                Ok(Invocation::Help(text)) => assert!(text.contains("-SubscriberPort")),
                other => panic!("{spelling}: {other:?}"),
            }
        }
        // Help wins over anything after it.
        assert!(matches!(
            CommandLine::parse(["-help".to_string(), "-Bogus".to_string()]),
            Ok(Invocation::Help(_))
        ));
        // `-he` abbreviates HeaderTemplate and Help.
        assert!(run(&["-he", "x"]).is_err());
    }

    #[test]
    fn version_anywhere_wins() {
        for spelling in ["-v", "-ver", "-version"] {
            match CommandLine::parse(["-Bogus".to_string(), spelling.to_string()]) {
                Ok(Invocation::Version(text)) => {
                    assert_eq!(text, format!("meteord {}\n", env!("CARGO_PKG_VERSION")));
                }
                other => panic!("{spelling}: {other:?}"),
            }
        }
        // Case matters, and longer words are not the version.
        assert!(run(&["-V"]).is_err());
        assert!(run(&["-versions", "1"]).is_err());
    }

    #[test]
    fn values_are_decoded_like_file_values() {
        let cli = run(&[
            "-PingMessage",
            r"a\r\n\s",
            "-ControllerShutdownMsg",
            "--bye",
        ])
        .expect("parses");
        assert_eq!(
            pairs(&cli),
            [("PingMessage", "a\r\n "), ("ControllerShutdownMsg", "-bye")]
        );
    }

    #[test]
    fn stray_words_are_errors() {
        let err = run(&["-Persist", "1", "extra"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "command line: unexpected argument \"extra\" (parameters are given as -Name value)"
        );
        assert!(run(&["-"]).is_err());
        assert!(run(&["--"]).is_err());
    }

    #[test]
    fn unknown_name_is_an_error() {
        let err = run(&["-Bogus", "1"]).unwrap_err().to_string();
        assert!(err.contains("unknown parameter \"Bogus\""), "{err}");
    }

    #[test]
    fn config_file_location_empty_is_no_file_and_last_wins() {
        let cli = run(&["-ConfigFileLocation", ""]).expect("parses");
        assert_eq!(cli.config_file_location(), Path::new(""));
        let cli = run(&["-ConfigFileLocation", "/a", "-conf", "/b"]).expect("parses");
        assert_eq!(cli.config_file_location(), Path::new("/b"));
        assert!(cli.overrides.is_empty());
    }
}
