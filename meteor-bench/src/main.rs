//! `meteor-bench`: a load generator for Meteor-protocol push servers
//! (meteord, the Perl original) and for Nchan, like `redis-benchmark` is to
//! Redis. See BENCHMARKS.md for the scenarios and how to run them.
//!
//! The binary: picks the role from the first argument (`--worker`,
//! `--bare-server`, or a run) and hands over to the library.
//!
//! `main` is synchronous: it parses and validates the command line, then
//! builds a current-thread runtime (the generator shares two cores with
//! the server under test, so one thread per process is the budget).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use meteor_bench::{bare, cli, coordinator, worker};

/// Exit status when the run finished but found loss, failures or errors.
const EXIT_RUN_FAILED: u8 = 2;
/// Exit status for bad arguments or a run that could not be carried out.
const EXIT_ERROR: u8 = 1;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--worker") {
        return match worker::main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("meteor-bench worker: {e:#}");
                ExitCode::from(EXIT_ERROR)
            }
        };
    }
    if std::env::args().nth(1).as_deref() == Some("--bare-server") {
        let args = bare::Args::parse_from(std::env::args().skip(1));
        return match bare::main(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("meteor-bench --bare-server: {e:#}");
                ExitCode::from(EXIT_ERROR)
            }
        };
    }
    let args = cli::Args::parse();
    let json_out = args.json_out.clone();
    let settings = match cli::Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("meteor-bench: {e:#}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match run(settings, json_out) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_RUN_FAILED),
        Err(e) => {
            eprintln!("meteor-bench: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(settings: cli::Settings, json_out: Option<std::path::PathBuf>) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let local = tokio::task::LocalSet::new();
    let exe = std::env::current_exe().context("finding my own executable to start workers")?;
    let report = local.block_on(&rt, coordinator::run(settings, &exe))?;
    let line = serde_json::to_string(&report)?;
    eprint!("{}", coordinator::summary(&report));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    if let Some(path) = json_out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.ok)
}
