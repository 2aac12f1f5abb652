//! fcgi-chat binary: parse and validate the command line, set up logging,
//! bind (or adopt) the listening socket, and only then build the tokio
//! runtime and serve until SIGTERM/SIGINT. Exit 64 on bad configuration.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use fcgi_chat::cli::{Cli, Mode};
use fcgi_chat::controller::Controller;
use fcgi_chat::devhttp::{self, DevHttp};
use fcgi_chat::fastcgi;
use fcgi_chat::handler::App;
use fcgi_chat::listen::{self, StdListener};
use tracing_subscriber::EnvFilter;

/// sysexits EX_USAGE: bad command line or configuration.
const EXIT_CONFIG: u8 = 64;
/// Runtime failure after start-up.
const EXIT_FAILURE: u8 = 1;
/// How long shutdown waits for requests in flight: longer than the default
/// publish timeout (3 s) so a request waiting on meteord can still answer.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Front end, bound before the runtime exists.
enum Bound {
    FastCgi(StdListener),
    Http(std::net::TcpListener, DevHttp),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // stderr is what mod_fcgid copies into Apache's error log; no colours.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("configuration error: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let app = Arc::new(App::new(
        settings.chat.clone(),
        Controller::new(settings.controller.clone(), settings.timeout),
    ));

    let bound = match bind(settings.mode, app.clone()) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    tracing::info!(
        listen = %bound.local_addr(),
        controller = %settings.controller,
        channel = %settings.chat.channel,
        "fcgi-chat {} ready",
        env!("CARGO_PKG_VERSION")
    );
    match runtime.block_on(run(bound, app)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

impl Bound {
    /// The address actually bound, for the ready line: with port 0 the
    /// kernel chose it, and tests (or an operator) read it from there.
    fn local_addr(&self) -> String {
        match self {
            Bound::FastCgi(listener) => listener.local_addr(),
            Bound::Http(listener, _) => listener
                .local_addr()
                .map_or_else(|e| format!("(unknown: {e})"), |a| a.to_string()),
        }
    }
}

fn bind(mode: Mode, app: Arc<App>) -> anyhow::Result<Bound> {
    match mode {
        Mode::Inherited => match listen::adopt_stdin_listener()? {
            Some(l) => Ok(Bound::FastCgi(l)),
            None => anyhow::bail!(
                "fd 0 is not a listening socket: run under a FastCGI spawner (Apache \
                 mod_fcgid, spawn-fcgi) or pass --listen HOST:PORT|unix:/path or --http HOST:PORT \
                 (see --help)"
            ),
        },
        Mode::Listen(addr, perms) => Ok(Bound::FastCgi(listen::bind(&addr, perms)?)),
        Mode::Http {
            addr,
            root,
            push_url,
        } => {
            use anyhow::Context as _;
            let l =
                std::net::TcpListener::bind(&addr).with_context(|| format!("binding {addr}"))?;
            if !root.join("index.html").is_file() {
                tracing::warn!("{} has no index.html", root.display());
            }
            Ok(Bound::Http(
                l,
                DevHttp {
                    root,
                    push_url,
                    app,
                },
            ))
        }
    }
}

async fn run(bound: Bound, app: Arc<App>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cleanup = match &bound {
        Bound::FastCgi(listener) => listener.cleanup_path().map(ToOwned::to_owned),
        Bound::Http(..) => None,
    };
    let serve = async {
        match bound {
            Bound::FastCgi(listener) => fastcgi::serve(listener, app.clone()).await,
            Bound::Http(listener, dev) => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                tracing::info!("dev HTTP server on http://{}/", listener.local_addr()?);
                devhttp::serve(listener, Arc::new(dev)).await;
                Ok(())
            }
        }
    };
    let result = tokio::select! {
        r = serve => r,
        _ = term.recv() => Ok(()),
        _ = int.recv() => Ok(()),
    };
    // Stop accepting (the listener is gone with `serve`), let requests in
    // flight finish; a second signal exits at once.
    tracing::info!("shutting down");
    tokio::select! {
        left = app.drain(DRAIN_LIMIT) => if left > 0 {
            tracing::warn!("{left} request(s) still running after {DRAIN_LIMIT:?}; exiting anyway");
        },
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    if let Some(path) = cleanup {
        let _ = std::fs::remove_file(path);
    }
    result
}
