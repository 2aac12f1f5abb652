//! Configuration errors, and where a value came from ([`Origin`]) so every
//! error can name the file, the line and the parameter.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a setting (or a problem) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The parameter table's built-in default.
    Default,
    /// A `-Name value` pair on the command line.
    CommandLine,
    /// A line of a configuration file (1-based line number).
    File { file: Arc<str>, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::CommandLine => f.write_str("command line"),
            Origin::File { file, line } => write!(f, "{file}:{line}"),
        }
    }
}

/// Everything that can be wrong with a configuration. The daemon exits 64
/// (EX_USAGE) on any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{origin}: the configuration file is not valid UTF-8")]
    NotUtf8 { origin: Origin },

    #[error("{origin}: {reason}: {text:?}")]
    Syntax {
        origin: Origin,
        text: String,
        reason: &'static str,
    },

    #[error("{origin}: unknown parameter {name:?}{hint}")]
    UnknownParameter {
        origin: Origin,
        name: String,
        /// Empty, or a suggestion starting with a separator (" (did you mean …)").
        hint: String,
    },

    #[error("command line: ambiguous parameter -{given}: could be {candidates}")]
    AmbiguousParameter { given: String, candidates: String },

    #[error("command line: unexpected argument {arg:?} (parameters are given as -Name value)")]
    UnexpectedArgument { arg: String },

    #[error(
        "{origin}: parameter {name} cannot be set inside a [mode] section ([{section}]); \
         only {allowed} can"
    )]
    NotPerMode {
        origin: Origin,
        name: &'static str,
        section: String,
        allowed: String,
    },

    #[error(
        "{origin}: ConfigFileLocation cannot be set in a configuration file \
         (give it on the command line: -ConfigFileLocation /path)"
    )]
    ConfigFileLocationInFile { origin: Origin },

    #[error("{origin}: parameter {name}: invalid value {value:?}: {reason}")]
    InvalidValue {
        origin: Origin,
        name: &'static str,
        value: String,
        reason: String,
    },
}
