//! The command line: Meteor's `-Name value` pairs (names case-insensitive,
//! any unique prefix, `--Name` accepted too), `-d` for `-Debug 1`, and
//! `-help`. The parsed overrides are kept in [`CommandLine`] so a SIGHUP can
//! re-read the file and apply them again.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::params::{self, Param};
use super::parse::decode_value;

/// Result of reading the command line.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// Run the daemon with these overrides.
    Run(CommandLine),
    /// `-help` was asked for: print this text and exit 0.
    Help(String),
}

/// Parsed `-Name value` overrides, kept so SIGHUP can re-read the file with
/// them.
#[derive(Debug, Clone)]
pub struct CommandLine {
    /// Where to read the configuration file (`-ConfigFileLocation`).
    config_file_location: PathBuf,
    /// Overrides in command-line order (a later one wins), values decoded.
    pub(crate) overrides: Vec<(&'static Param, String)>,
}

impl Default for CommandLine {
    /// No arguments: the default file location, no overrides.
    fn default() -> Self {
        CommandLine {
            config_file_location: PathBuf::from(params::CONFIG_FILE_LOCATION.default),
            overrides: Vec::new(),
        }
    }
}

impl CommandLine {
    /// Reads the arguments; `args` excludes `argv[0]`.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, ConfigError> {
        let mut cli = CommandLine::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let name = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-'))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ConfigError::UnexpectedArgument { arg: arg.clone() })?;
            let lower = name.to_ascii_lowercase();
            if matches!(lower.as_str(), "help" | "h" | "?") {
                return Ok(Invocation::Help(params::help_text()));
            }
            if lower == "d" {
                cli.overrides.push((&params::DEBUG, "1".to_string()));
                continue;
            }
            let param = params::by_prefix(name)?;
            let raw = args
                .next()
                .ok_or(ConfigError::MissingValue { name: param.name })?;
            let value = decode_value(&raw);
            if param.name == params::CONFIG_FILE_LOCATION.name {
                if value.is_empty() {
                    return Err(ConfigError::InvalidValue {
                        origin: super::error::Origin::CommandLine,
                        name: param.name,
                        value,
                        reason: "a file name is required".to_string(),
                    });
                }
                cli.config_file_location = PathBuf::from(value);
            } else {
                cli.overrides.push((param, value));
            }
        }
        Ok(Invocation::Run(cli))
    }

    /// The configuration file this command line asks for.
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
            Invocation::Help(_) => panic!("unexpected help for {args:?}"),
        }
    }

    fn pairs(cli: &CommandLine) -> Vec<(&'static str, &str)> {
        cli.overrides
            .iter()
            .map(|(p, v)| (p.name, v.as_str()))
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
            "--CONTROLLERPORT",
            "81",
            "-maxmessages",
            "3",
        ])
        .expect("parses");
        assert_eq!(
            pairs(&cli),
            [
                ("SubscriberPort", "80"),
                ("ControllerPort", "81"),
                ("MaxMessages", "3")
            ]
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
            err.contains("-MaxConnections") && err.contains("-MaxTime"),
            "{err}"
        );
    }

    #[test]
    fn d_means_debug_1_and_takes_no_value() {
        let cli = run(&["-d", "-SubscriberPort", "5"]).expect("parses");
        assert_eq!(pairs(&cli), [("Debug", "1"), ("SubscriberPort", "5")]);
        let cli = run(&["-D"]).expect("parses");
        assert_eq!(pairs(&cli), [("Debug", "1")]);
        // Longer prefixes of Debug are ordinary and take a value.
        let cli = run(&["-de", "2"]).expect("parses");
        assert_eq!(pairs(&cli), [("Debug", "2")]);
    }

    #[test]
    fn help_in_every_spelling() {
        for spelling in ["-help", "-h", "--help", "-HELP", "-?"] {
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
    fn missing_value_names_the_parameter() {
        let err = run(&["-SubscriberPort"]).unwrap_err().to_string();
        assert_eq!(err, "command line: parameter -SubscriberPort needs a value");
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
    fn empty_config_file_location_is_an_error() {
        let err = run(&["-ConfigFileLocation", ""]).unwrap_err().to_string();
        assert!(err.contains("ConfigFileLocation"), "{err}");
    }
}
