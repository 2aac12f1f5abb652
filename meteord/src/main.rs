//! `meteord`: a synchronous `main` that reads the configuration, binds the
//! ports, detaches and drops privileges, and only then builds the tokio
//! runtime — a runtime created before `fork()` is dead in the child, and
//! privileged ports must be bound while still root.

use std::sync::Arc;

use meteord::broker::{RedisBroker, redact_url};
use meteord::config::{self, CommandLine, Config, Invocation};
use meteord::ids::Ids;
use meteord::log::LogHandle;
use meteord::server::{self, Control, Listeners};
use meteord::state::State;
use meteord::{daemon, log, persist};
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Exit status for a bad command line or configuration (EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// How long a cluster node waits at start to load the shared history
/// before it serves anyway (Redis unreachable).
const CLUSTER_STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// jemalloc instead of glibc's malloc: its size classes fit the daemon's
/// per-connection allocations (tokio's 128-byte-aligned task cells and I/O
/// records) without padding, which makes an idle subscriber about a fifth
/// smaller (BENCHMARKS.md: 1,012 → ~800 B at 19,000). Build with
/// `--no-default-features` for the system allocator.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match CommandLine::parse(std::env::args().skip(1)) {
        Ok(Invocation::Help(text) | Invocation::Version(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run(cli)) => cli,
        Err(e) => {
            eprintln!("meteord: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = match config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("meteord: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match start(cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            // When detached, this reaches the terminal of whoever started us.
            daemon::report_startup_failure(&format!("{e:#}"));
            eprintln!("meteord: {e:#}");
            if e.downcast_ref::<persist::LoadError>().is_some() {
                return ExitCode::from(persist::EXIT_HISTORY_FILE);
            }
            ExitCode::FAILURE
        }
    }
}

fn start(cli: CommandLine, config: Config) -> anyhow::Result<()> {
    // Before binding: the connection limit is sized by it (daemon.rs).
    let fd_limit = meteor_proto::fd_limit::raise_fd_limit();
    // Read (and refused if damaged) before anything is bound.
    let history = persist::load(&config)?;
    let listeners = Listeners::bind(&config)?;
    let under_systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
    let detach = !(config.foreground || config.debug > 0 || under_systemd);
    if detach {
        daemon::daemonize(config.pid_file.as_deref())?;
    }
    daemon::drop_privileges(config.user.as_deref(), config.group.as_deref())?;
    let log = log::init(&config)?;
    for note in &config.notes {
        tracing::warn!("{note}");
    }
    let ids = open_ids(&config)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source.as_deref().map_or("built-in".into(), |p| p.display().to_string()),
        fd_limit,
        first_id = ids.peek(),
        "meteord starting"
    );
    let pid_file = config.pid_file.clone().filter(|_| detach);
    let cluster = match config.cluster_redis.as_deref() {
        Some(url) => {
            // The clock floor: a node's first ids lie above anything a
            // cluster that lost its Redis data could have handed out.
            let floor = Ids::open(None)?.peek().max(ids.peek()).saturating_sub(1);
            let broker = RedisBroker::new(url, floor)
                .map_err(|e| anyhow::anyhow!("ClusterRedis {}: {e}", redact_url(url)))?;
            tracing::info!(redis = %redact_url(url), "cluster node: ids and history in Redis");
            Some(Arc::new(broker))
        }
        None => None,
    };
    let (state, history) = match &cluster {
        Some(broker) => {
            if history.is_some() {
                tracing::warn!(
                    "HistoryFile is not used by a cluster node: Redis holds the history"
                );
            }
            (Arc::new(State::with_broker(config, broker.clone())), None)
        }
        None => {
            // Histories refilled before the runtime accepts anybody.
            let (state, history) = persist::start(config, ids, history)?;
            // Ids below the next one were handed out by an earlier run: a
            // channel not restored cannot vouch for them, so a resume from
            // there is a gap. (A cluster node learns what the shared
            // histories hold as it loads them: redis_feed.rs.)
            state.channels.set_known_from(state.broker.next_id());
            (state, history)
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("meteord")
        .build()?;
    let result = runtime.block_on(async move {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(forward_signals(tx, cli, log));
        if let Some(broker) = cluster {
            // Before the accept loops: a late node has the shared history
            // before it serves a resume.
            broker.start(state.clone(), CLUSTER_STARTUP_WAIT).await;
        }
        if let Some(history) = history {
            tokio::spawn(persist::compaction::run(state.clone(), history));
        }
        daemon::notify_ready("serving");
        server::run(listeners, state, rx).await
    });
    if let Some(path) = pid_file {
        daemon::remove_pid_file(&path);
    }
    result?;
    Ok(())
}

/// The id sequence. A state file whose directory is missing or not ours
/// (plain `meteord` run by a user, with the shipped StateFile) is not fatal:
/// ids then start from the clock, which still never goes back. A state
/// file with garbage in it is fatal: guessing could reuse ids.
fn open_ids(config: &Config) -> anyhow::Result<Ids> {
    let Some(path) = config.state_file.as_deref() else {
        return Ok(Ids::open(None)?);
    };
    match Ids::open(Some(path)) {
        Ok(ids) => Ok(ids),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            tracing::warn!(file = %path.display(), error = %e,
                "cannot use the state file; message ids start from the clock");
            Ok(Ids::open(None)?)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot use the message-id state file {}: {e}",
            path.display()
        )),
    }
}

/// Turn signals into [`Control`] messages. SIGHUP re-reads the configuration
/// here, so a bad file is reported and the running one kept.
async fn forward_signals(tx: mpsc::Sender<Control>, cli: CommandLine, log: LogHandle) {
    let streams = (
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    let (Ok(mut hup), Ok(mut usr1), Ok(mut usr2), Ok(mut term), Ok(mut int)) = streams else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let mut stopping = false;
    loop {
        let message = tokio::select! {
            _ = hup.recv() => {
                daemon::notify_reloading();
                let message = match config::load(&cli) {
                    Ok(config) => {
                        if let Err(e) = log.reopen(&config) {
                            tracing::error!(error = %e, "cannot reopen the log");
                        }
                        Some(Control::Reload(Box::new(config)))
                    }
                    Err(e) => {
                        tracing::error!("reload refused, keeping the running configuration: {e}");
                        None
                    }
                };
                daemon::notify_ready("serving");
                message
            }
            _ = usr1.recv() => Some(Control::ClearChannels),
            _ = usr2.recv() => Some(Control::ClearDocuments),
            _ = term.recv() => Some(Control::Shutdown),
            _ = int.recv() => Some(Control::Shutdown),
        };
        let Some(message) = message else { continue };
        if matches!(message, Control::Shutdown) {
            if stopping {
                // A second SIGTERM/SIGINT: the operator does not want to wait.
                tracing::warn!("second stop signal: exiting at once");
                std::process::exit(1);
            }
            stopping = true;
            daemon::notify_stopping();
        }
        if tx.send(message).await.is_err() {
            return;
        }
    }
}
