//! Listening sockets, accept loops, the connection limit, housekeeping, and
//! the daemon's life cycle (reload, clear, shutdown) driven by [`Control`]
//! messages — from signals in `main`, or directly from tests.
//!
//! [`run`] takes already-bound listeners so that `main` can bind privileged
//! ports before dropping root, and tests can bind port 0.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::clock::{self, unix_now};
use crate::config::Config;
use crate::connections::{Conn, ConnKind, StopReason};
use crate::limits::{self, Limit};
use crate::state::State;
use crate::stats::Stats;
use crate::{controller, subscriber, udp};

/// Pending-connection queue of each listening socket: deep enough for a
/// reconnect storm of tens of thousands of clients.
const LISTEN_BACKLOG: i32 = 8192;
/// File descriptors kept free for documents, logs, the state file and
/// accepting-then-refusing.
const RESERVED_FDS: u64 = 64;
/// How often expired messages and empty channels are swept, as the
/// original does: a channel a poll created (listed as `name(0/0)`) lives
/// until the next sweep. Not configurable, like the original's; tests run
/// the sweep under paused time.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// Pause after an accept error such as running out of file descriptors, so
/// the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The bound sockets the daemon serves.
#[derive(Debug)]
pub struct Listeners {
    pub subscriber: std::net::TcpListener,
    pub controller: std::net::TcpListener,
    pub udp: Option<std::net::UdpSocket>,
    /// The Prometheus `/metrics` listener (MetricsPort 0 = none).
    pub metrics: Option<std::net::TcpListener>,
}

fn bind_tcp(addr: SocketAddr, what: &str) -> io::Result<std::net::TcpListener> {
    let wrap =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"));
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(wrap)?;
    // SO_REUSEADDR lets a restart bind while old connections sit in
    // TIME_WAIT; it does not let two daemons share the port.
    socket.set_reuse_address(true).map_err(wrap)?;
    socket.bind(&addr.into()).map_err(wrap)?;
    socket.listen(LISTEN_BACKLOG).map_err(wrap)?;
    socket.set_nonblocking(true).map_err(wrap)?;
    Ok(socket.into())
}

impl Listeners {
    /// Bind every port the configuration names.
    pub fn bind(config: &Config) -> io::Result<Listeners> {
        let subscriber = bind_tcp(
            SocketAddr::new(config.subscriber_ip, config.subscriber_port),
            "SubscriberIP/SubscriberPort",
        )?;
        let controller = bind_tcp(
            SocketAddr::new(config.controller_ip, config.controller_port),
            "ControllerIP/ControllerPort",
        )?;
        let udp = if config.udp_port == 0 {
            None
        } else {
            let addr = SocketAddr::new(config.udp_ip, config.udp_port);
            let socket = std::net::UdpSocket::bind(addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind UDP {addr} (UDPIP/UDPPort): {e}"),
                )
            })?;
            socket.set_nonblocking(true)?;
            Some(socket)
        };
        let limits = &config.limits;
        let metrics = match limits.metrics_port {
            0 => None,
            port => Some(bind_tcp(
                SocketAddr::new(limits.metrics_ip, port),
                "MetricsIP/MetricsPort",
            )?),
        };
        Ok(Listeners {
            subscriber,
            controller,
            udp,
            metrics,
        })
    }
}

/// What the running daemon can be told to do.
#[derive(Debug)]
pub enum Control {
    /// SIGHUP: switch to this (already validated) configuration.
    Reload(Box<Config>),
    /// SIGUSR1: forget every channel's history.
    ClearChannels,
    /// SIGUSR2: drop the document cache.
    ClearDocuments,
    /// SIGTERM / SIGINT: say goodbye to everyone and stop.
    Shutdown,
}

/// How many connections may be open at once: the configured limit, capped
/// by what the file-descriptor limit allows.
pub fn connection_limit(configured: usize, fd_limit: u64) -> usize {
    let by_fds = fd_limit.saturating_sub(RESERVED_FDS);
    configured
        .min(usize::try_from(by_fds).unwrap_or(usize::MAX))
        .max(1)
}

fn current_fd_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
}

/// Serve until told to shut down.
pub async fn run(
    listeners: Listeners,
    state: Arc<State>,
    mut control: mpsc::Receiver<Control>,
) -> io::Result<()> {
    let config = state.config();
    let fd_limit = current_fd_limit();
    let limit = connection_limit(config.max_connections, fd_limit);
    let (stop_tx, stop_rx) = watch::channel(false);

    let subscriber = TcpListener::from_std(listeners.subscriber)?;
    let controller = TcpListener::from_std(listeners.controller)?;
    tracing::info!(
        subscriber = %subscriber.local_addr()?,
        controller = %controller.local_addr()?,
        max_connections = limit,
        "meteord listening"
    );
    let mut tasks = vec![
        tokio::spawn(accept_loop(
            subscriber,
            state.clone(),
            ConnKind::Subscriber,
            fd_limit,
            stop_rx.clone(),
        )),
        tokio::spawn(accept_loop(
            controller,
            state.clone(),
            ConnKind::Controller,
            fd_limit,
            stop_rx.clone(),
        )),
        tokio::spawn(housekeeping(state.clone(), stop_rx.clone())),
        tokio::spawn(clock::run(state.clone(), stop_rx.clone())),
    ];
    if let Some(listener) = listeners.metrics {
        let listener = TcpListener::from_std(listener)?;
        tracing::info!(metrics = %listener.local_addr()?, "metrics at GET /metrics");
        tasks.push(tokio::spawn(crate::metrics::serve(
            listener,
            state.clone(),
            stop_rx.clone(),
        )));
    }
    if let Some(socket) = listeners.udp {
        let socket = UdpSocket::from_std(socket)?;
        tracing::info!(udp = %socket.local_addr()?, "UDP publish enabled");
        tasks.push(tokio::spawn(udp::serve(state.clone(), socket)));
    }

    while let Some(message) = control.recv().await {
        match message {
            Control::Reload(new) => reload(&state, *new),
            Control::ClearChannels => {
                tracing::info!("clearing all channel buffers");
                // Channels left without a streaming subscriber go at once;
                // the broker clears what it keeps too (the history file).
                state.broker.clear(&state);
            }
            Control::ClearDocuments => {
                tracing::info!("dropping the document cache");
                state.documents().clear_cache();
            }
            Control::Shutdown => break,
        }
    }

    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for task in &tasks {
        task.abort();
    }
    state.connections.stop_all(StopReason::Shutdown);
    let grace = Duration::from_secs(state.config().shutdown_timeout);
    let deadline = clock::now() + grace;
    while !state.connections.is_empty() && clock::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !state.connections.is_empty() {
        tracing::warn!(
            left = state.connections.len(),
            "shutdown grace ran out; closing the rest"
        );
    }
    if let Err(e) = state.broker.save() {
        tracing::error!(error = %e, "cannot save the message-id state");
    }
    tracing::info!("stopped");
    Ok(())
}

fn reload(state: &State, new: Config) {
    let old = state.config();
    if (
        old.subscriber_ip,
        old.subscriber_port,
        old.controller_ip,
        old.controller_port,
        old.udp_ip,
        old.udp_port,
        (old.limits.metrics_ip, old.limits.metrics_port),
    ) != (
        new.subscriber_ip,
        new.subscriber_port,
        new.controller_ip,
        new.controller_port,
        new.udp_ip,
        new.udp_port,
        (new.limits.metrics_ip, new.limits.metrics_port),
    ) {
        tracing::warn!(
            "listening addresses changed in the configuration; they take effect after a restart"
        );
    }
    if (&old.history_file, old.history_fsync) != (&new.history_file, new.history_fsync) {
        // The file is opened, and its sync thread started, once at start.
        tracing::warn!(
            "HistoryFile or HistoryFsync changed in the configuration; they take effect after a restart"
        );
    }
    state.apply_reload(new);
    tracing::info!("configuration reloaded");
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    kind: ConnKind,
    fd_limit: u64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ECONNABORTED…: never fatal.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // The table of open connections is the count MaxConnections
        // limits (the two accept loops may overshoot it by one or two); read
        // per accept so a reload can change MaxConnections.
        let config = state.config();
        let limit = connection_limit(config.max_connections, fd_limit);
        if state.connections.len() >= limit {
            Stats::add(&state.stats.connections_refused, 1);
            state.stats.limits.refused(Limit::MaxConnections);
            tokio::spawn(refuse(stream, kind));
            continue;
        }
        if let Some(limit) = admission(&state, &config, kind, peer.ip()) {
            state.stats.limits.refused(limit);
            match limit {
                // Not a publisher we know: nothing to tell it.
                Limit::ControllerAllow => drop(stream),
                _ => {
                    Stats::add(&state.stats.connections_refused, 1);
                    tokio::spawn(refuse(stream, kind));
                }
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let number = u64::try_from(stream.as_raw_fd()).unwrap_or(0);
        let conn = Arc::new(Conn::new(number, kind, peer.ip(), unix_now()));
        state.connections.insert(conn.clone());
        let state = state.clone();
        match kind {
            ConnKind::Subscriber => {
                Stats::add(&state.stats.subscriber_connections_accepted, 1);
                tokio::spawn(subscriber::serve(state, stream, conn));
            }
            ConnKind::Controller => {
                Stats::add(&state.stats.controller_connections_accepted, 1);
                tokio::spawn(controller::serve(state, stream, conn));
            }
        }
    }
}

/// The limit that refuses a new connection from `ip` on `kind`'s port, if
/// any: ControllerAllow for the controller port (logged once per address
/// per minute), MaxConnectionsPerIP for the subscriber port.
fn admission(state: &State, config: &Config, kind: ConnKind, ip: IpAddr) -> Option<Limit> {
    match kind {
        ConnKind::Controller => {
            if limits::allowed(&config.limits.controller_allow, ip) {
                return None;
            }
            if state.stats.limits.should_log(ip, unix_now()) {
                tracing::warn!(%ip, "controller connection refused: not in ControllerAllow");
            }
            Some(Limit::ControllerAllow)
        }
        ConnKind::Subscriber => {
            let max = config.limits.max_connections_per_ip;
            (max > 0 && state.connections.count_for_ip(ip) >= max)
                .then_some(Limit::MaxConnectionsPerIp)
        }
    }
}

/// Over the connection limit: say so briefly and close. The original has no
/// limit, so no answer of its own to copy: a subscriber gets a 503 in the
/// header set of the original's own fixed answers (its static 404), with an
/// empty body — a complete HTTP answer, before its request is even read.
async fn refuse(mut stream: TcpStream, kind: ConnKind) {
    let subscriber;
    let reply: &[u8] = match kind {
        ConnKind::Subscriber => {
            subscriber = crate::http::empty(crate::http::SERVICE_UNAVAILABLE);
            &subscriber
        }
        ConnKind::Controller => b"ERR Too many connections\r\n",
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(reply)).await;
}

/// Every [`HOUSEKEEPING_INTERVAL`], the first one interval after the
/// start: age out messages, free channels with neither messages nor
/// streaming subscribers, forget old pollers.
async fn housekeeping(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let start = clock::now() + HOUSEKEEPING_INTERVAL;
    let mut tick = tokio::time::interval_at(start, HOUSEKEEPING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = unix_now();
                state.channels.housekeep(now);
                state.connections.recent_pollers(now);
            }
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channel::Backlog;
    use crate::subscriber::StreamDetails;

    fn poll_on(state: &State, channel: &str) {
        let conn = Arc::new(Conn::new(
            9,
            ConnKind::Subscriber,
            std::net::Ipv4Addr::LOCALHOST.into(),
            0,
        ));
        let details = StreamDetails::new("h", "simplepoll", "", 0, false);
        conn.details.set(details).unwrap();
        let mut backlog = Vec::new();
        let subscription = state
            .channels
            .subscribe(channel, Backlog::All, &conn, &mut backlog);
        state.channels.unsubscribe(subscription);
    }

    fn names(state: &State) -> Vec<String> {
        let list = state.channels.list();
        list.iter()
            .map(|c| format!("{}({}/{})", c.name, c.messages, c.subscribers))
            .collect()
    }

    /// The sweep itself, on the daemon's own schedule in paused time: a
    /// channel a poll created stays `name(0/0)` until the next sweep, one
    /// interval after the start and every interval after that.
    #[tokio::test(start_paused = true)]
    async fn housekeeping_frees_polled_channels_every_interval() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = Arc::new(State::new(config, crate::ids::Ids::starting_at(1)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(housekeeping(state.clone(), stop_rx));
        let step = |secs| async move {
            tokio::time::advance(Duration::from_secs(secs)).await;
            tokio::task::yield_now().await;
        };
        step(0).await;
        poll_on(&state, "polled");
        assert_eq!(names(&state), ["polled(0/0)"]);
        step(HOUSEKEEPING_INTERVAL.as_secs() - 1).await;
        assert_eq!(names(&state), ["polled(0/0)"], "not before the interval");
        step(1).await;
        assert!(names(&state).is_empty(), "gone at the first sweep");
        step(10).await;
        poll_on(&state, "again");
        step(HOUSEKEEPING_INTERVAL.as_secs() - 11).await;
        assert_eq!(names(&state), ["again(0/0)"]);
        step(1).await;
        assert!(names(&state).is_empty(), "and at every sweep after");
        stop_tx.send(true).unwrap();
        task.await.unwrap();
    }

    #[test]
    fn limit_is_capped_by_fds() {
        assert_eq!(
            connection_limit(100_000, 20_000),
            20_000 - RESERVED_FDS as usize
        );
        assert_eq!(connection_limit(500, 20_000), 500);
        assert_eq!(connection_limit(500, 10), 1);
    }
}
