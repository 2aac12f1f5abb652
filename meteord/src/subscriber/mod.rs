//! The subscriber port: one task per connection. It reads one request head
//! (bounded in size and time), then either serves a static document, handles
//! `/disconnect/<hostid>`, or becomes a stream: header, replayed backlog, live
//! messages, pings, footer — all bytes from the mode's compiled templates.
//!
//! The live loop owns nothing but its cursors: it sleeps until a publish (or
//! a stop request) wakes it, then reads everything after its cursors from
//! the channel histories and writes it in one go. A slow client therefore
//! only delays itself; while it is blocked, messages wait in the shared
//! history, and if it falls out of that history it is closed so the client
//! resumes with `.r<id>`.

pub mod request;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

use crate::channel::{Message, Subscription};
use crate::registry::{Conn, StopReason, StreamDetails};
use crate::state::{State, unix_now};
use crate::stats::Stats;
use crate::template::{ChannelInfoValues, CompiledMode, CompiledModes, HeaderValues};
use request::{HeadError, Route, StreamRequest};

/// Messages read from the histories per wake-up before writing; bounds the
/// per-subscriber buffer (at 400-byte messages about 100 KiB) while still
/// batching bursts into few writes.
const READ_BATCH: usize = 256;

/// Most bytes gathered for one write: bounds what a stalled subscriber
/// holds while its socket is full (the rest waits in the shared history).
const MAX_WRITE: usize = 64 * 1024;

/// Bytes we are willing to read and discard from a streaming client (it has
/// no reason to send anything after its request).
const MAX_IGNORED_INPUT: u64 = 64 * 1024;

/// Serve one subscriber-port connection to its end.
pub async fn serve(state: Arc<State>, stream: TcpStream, conn: Arc<Conn>) {
    if let Err(e) = handle(&state, stream, &conn).await {
        tracing::debug!(conn = conn.number, ip = %conn.ip, error = %e, "subscriber connection ended");
    }
    state.connections.remove(&conn);
}

enum HeadRead {
    Head(request::Head),
    Refused(HeadError),
    Closed,
}

async fn read_head(stream: &mut TcpStream, conn: &Conn) -> io::Result<HeadRead> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        stream.readable().await?;
        let mut chunk = [0u8; 2048];
        let n = match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(HeadRead::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        conn.bytes_read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        buf.extend_from_slice(&chunk[..n]);
        match request::parse_head(&buf) {
            Ok(Some(head)) => return Ok(HeadRead::Head(head)),
            Ok(None) => {}
            Err(e) => return Ok(HeadRead::Refused(e)),
        }
    }
}

async fn handle(state: &Arc<State>, mut stream: TcpStream, conn: &Arc<Conn>) -> io::Result<()> {
    let config = state.config();
    let header_timeout = Duration::from_secs(config.header_timeout.max(1));
    let head = match timeout(header_timeout, read_head(&mut stream, conn)).await {
        Err(_) => {
            tracing::debug!(ip = %conn.ip, "request head timed out");
            return respond_error(
                state,
                &mut stream,
                "408 Request Timeout",
                "request timed out",
            )
            .await;
        }
        Ok(result) => match result? {
            HeadRead::Closed => return Ok(()),
            HeadRead::Refused(e) => {
                tracing::info!(ip = %conn.ip, error = %e, "bad request");
                return respond_error(state, &mut stream, e.status(), &e.to_string()).await;
            }
            HeadRead::Head(head) => head,
        },
    };
    if head.method != "GET" {
        return respond_error(
            state,
            &mut stream,
            "405 Method Not Allowed",
            "only GET is served",
        )
        .await;
    }
    match request::route(&head.target, &config.subscriber_dynamic_page_address) {
        Route::Document(path) => serve_document(state, &mut stream, conn, path).await,
        Route::Disconnect(hostid) => {
            let found = state.connections.disconnect_hostid(&hostid);
            let body = if found {
                "disconnected\n"
            } else {
                "no such subscriber\n"
            };
            write_out(state, &mut stream, conn, &plain_response("200 OK", body)).await
        }
        Route::BadStream => {
            let modes = state.modes();
            not_found_stream(state, &mut stream, conn, modes.get("")).await
        }
        Route::Stream(req) => {
            Box::pin(serve_stream(state, stream, conn, req, head.user_agent)).await
        }
    }
}

fn plain_response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nServer: {}\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-cache, no-store, must-revalidate\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        crate::SERVER_NAME,
        body.len()
    )
    .into_bytes()
}

async fn respond_error(
    state: &State,
    stream: &mut TcpStream,
    status: &str,
    reason: &str,
) -> io::Result<()> {
    Stats::add(&state.stats.errors_served, 1);
    let mut response = plain_response(status, &format!("{reason}\n"));
    if status.starts_with("405") {
        let at = response.len() - reason.len() - 3;
        response.splice(at..at, b"\r\nAllow: GET".iter().copied());
    }
    // The client may already be gone; nothing else to do then.
    let _ = timeout(Duration::from_secs(5), stream.write_all(&response)).await;
    Ok(())
}

async fn write_out(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    bytes: &[u8],
) -> io::Result<()> {
    let limit = Duration::from_secs(state.config().write_timeout.max(1));
    conn.write_pending
        .store(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let result = timeout(limit, stream.write_all(bytes)).await;
    conn.write_pending
        .store(0, std::sync::atomic::Ordering::Relaxed);
    match result {
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => {
            let n = bytes.len() as u64;
            conn.bytes_written
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            Stats::add(&state.stats.total_outbound_bytes, n);
            Ok(())
        }
    }
}

async fn serve_document(
    state: &Arc<State>,
    stream: &mut TcpStream,
    conn: &Conn,
    path: String,
) -> io::Result<()> {
    let documents = state.documents();
    let response = tokio::task::spawn_blocking(move || documents.respond(&path))
        .await
        .map_err(io::Error::other)?;
    let counter = if response.status == 200 {
        &state.stats.documents_served
    } else {
        &state.stats.documents_not_found
    };
    Stats::add(counter, 1);
    write_out(state, stream, conn, &response.bytes).await
}

async fn not_found_stream(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    mode: &CompiledMode,
) -> io::Result<()> {
    Stats::add(&state.stats.errors_served, 1);
    let mut out = Vec::new();
    mode.render_header(
        &mut out,
        &HeaderValues {
            status: "404 Not Found",
            server_time: unix_now(),
            channel_info: b"",
        },
    );
    out.extend_from_slice(&mode.footer);
    write_out(state, stream, conn, &out).await
}

/// Leaves every channel when the stream ends, however it ends.
struct Membership<'a> {
    state: &'a State,
    subscriptions: Vec<Subscription>,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        for subscription in self.subscriptions.drain(..) {
            self.state.channels.unsubscribe(subscription);
        }
        Stats::sub(&self.state.stats.current_subscribers, 1);
    }
}

/// Bytes for one write: a single message's shared rendering (no copy), or
/// several messages concatenated.
enum Output {
    Shared(Bytes),
    Owned(Vec<u8>),
}

/// Progress of one stream against its mode's limits.
struct Progress {
    /// Replaced when SIGHUP brings new templates (see `refresh`).
    mode: Arc<CompiledMode>,
    sent: u64,
}

impl Progress {
    /// Pick up a reloaded configuration: a connected subscriber gets the
    /// new templates from its next write on. One atomic load when nothing
    /// changed.
    fn refresh(&mut self, state: &State, mode_name: &str) -> bool {
        if state.modes_generation() == self.mode.generation {
            return false;
        }
        self.mode = state.modes().get(mode_name).clone();
        true
    }

    fn max_reached(&self) -> bool {
        let max = self.mode.settings.max_messages;
        max > 0 && self.sent >= max
    }

    /// Whether the response ends after what has been sent so far.
    fn finished(&self) -> bool {
        let settings = &self.mode.settings;
        !settings.persist || (settings.close_on_event && self.sent > 0) || self.max_reached()
    }

    /// Render the head of `messages` for one write, bounded by
    /// [`MAX_WRITE`] and the mode's limits; returns the bytes and how many
    /// messages they hold.
    fn render_batch(&mut self, messages: &[Arc<Message>]) -> (Output, usize) {
        if messages.len() == 1 && !self.max_reached() {
            self.sent += 1;
            return (
                Output::Shared(CompiledModes::message_bytes(&self.mode, &messages[0])),
                1,
            );
        }
        let mut out = Vec::new();
        let mut taken = 0;
        for message in messages {
            if self.max_reached() || (taken > 0 && out.len() >= MAX_WRITE) {
                break;
            }
            out.extend_from_slice(&CompiledModes::message_bytes(&self.mode, message));
            self.sent += 1;
            taken += 1;
        }
        (Output::Owned(out), taken)
    }

    /// Append `messages` (in order) while the mode allows more.
    fn append(&mut self, out: &mut Vec<u8>, messages: &[Arc<Message>]) -> u64 {
        let before = self.sent;
        for message in messages {
            if self.max_reached() {
                break;
            }
            out.extend_from_slice(&CompiledModes::message_bytes(&self.mode, message));
            self.sent += 1;
        }
        self.sent - before
    }
}

fn channel_info(state: &State, mode: &CompiledMode, req: &StreamRequest) -> Vec<u8> {
    let mut info = Vec::new();
    if !state.config().send_channel_info {
        return info;
    }
    for (name, _) in &req.channels {
        let summary = state.channels.summary(name);
        mode.render_channel_info(
            &mut info,
            &ChannelInfoValues {
                name,
                last_msg_id: summary.as_ref().map_or(0, |s| s.last_id),
                subscriber_count: summary.as_ref().map_or(0, |s| s.subscribers),
                message_count: summary.as_ref().map_or(0, |s| s.messages),
            },
        );
    }
    info
}

async fn serve_stream(
    state: &Arc<State>,
    mut stream: TcpStream,
    conn: &Arc<Conn>,
    req: StreamRequest,
    user_agent: String,
) -> io::Result<()> {
    let modes = state.modes();
    let mode = modes.get(&req.mode).clone();
    drop(modes);
    if req.channels.is_empty() {
        return not_found_stream(state, &mut stream, conn, &mode).await;
    }
    let settings = mode.settings.clone();
    let _ = conn.details.set(StreamDetails {
        hostid: req.hostid.as_str().into(),
        mode: req.mode.as_str().into(),
        user_agent: user_agent.into(),
        max_time: settings.max_time,
        persist: settings.persist,
    });
    if settings.persist {
        state.connections.claim_hostid(conn);
    }

    Stats::add(&state.stats.current_subscribers, 1);
    let info = channel_info(state, &mode, &req);
    let mut backlog = Vec::new();
    let mut membership = Membership {
        state,
        subscriptions: Vec::with_capacity(req.channels.len()),
    };
    for (name, marker) in &req.channels {
        let subscription = state
            .channels
            .subscribe(name, *marker, &conn.notify, &mut backlog);
        membership.subscriptions.push(subscription);
    }
    if membership.subscriptions.len() > 1 {
        backlog.sort_by_key(|m| m.id);
    }
    drop(req);

    let mut out = Vec::with_capacity(settings.header_template.len() + 256);
    mode.render_header(
        &mut out,
        &HeaderValues {
            status: "200 OK",
            server_time: unix_now(),
            channel_info: &info,
        },
    );
    drop(info);
    let mut progress = Progress {
        mode: mode.clone(),
        sent: 0,
    };
    let replayed = progress.append(&mut out, &backlog);
    drop(backlog);
    let finished = progress.finished();
    if finished {
        out.extend_from_slice(&mode.footer);
    }
    write_out(state, &mut stream, conn, &out).await?;
    drop(out);
    count_sent(state, conn, replayed);
    if finished {
        return Ok(());
    }
    live(state, &mut stream, conn, &mut membership, &mut progress).await
}

fn count_sent(state: &State, conn: &Conn, n: u64) {
    if n > 0 {
        conn.messages
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Stats::add(&state.stats.messages_served, n);
    }
}

/// How the live loop ended.
enum End {
    /// Write the footer and close.
    Footer,
    /// Write the shutdown message and the footer, then close.
    Shutdown,
    /// Nothing more to write: the client went away, or the response is
    /// already complete.
    Done,
}

async fn live(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    membership: &mut Membership<'_>,
    progress: &mut Progress,
) -> io::Result<()> {
    let mode_name = conn.details.get().map_or("", |d| &d.mode);
    let (mut ping_every, mut deadline) = timers(&progress.mode, conn);
    let mut next_ping = ping_every.map(|p| Instant::now() + p);
    let mut ignored_input = 0u64;
    let end = loop {
        if conn.stop_reason() != StopReason::Running {
            break End::Shutdown;
        }
        if progress.refresh(state, mode_name) {
            (ping_every, deadline) = timers(&progress.mode, conn);
            next_ping = ping_every.map(|p| Instant::now() + p);
        }
        if let Some(end) = drain(state, stream, conn, membership, progress).await? {
            break end;
        }
        tokio::select! {
            _ = conn.notify.notified() => {}
            _ = sleep_until(next_ping.unwrap_or_else(far_future)), if next_ping.is_some() => {
                let mut ping = Vec::new();
                progress.mode.render_ping(&mut ping, &HeaderValues { status: "200 OK", server_time: unix_now(), channel_info: b"" });
                write_out(state, stream, conn, &ping).await?;
                next_ping = ping_every.map(|p| Instant::now() + p);
            }
            _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => break End::Footer,
            ready = stream.readable() => {
                ready?;
                let mut sink = [0u8; 512];
                match stream.try_read(&mut sink) {
                    Ok(0) => break End::Done,
                    Ok(n) => {
                        ignored_input += n as u64;
                        if ignored_input > MAX_IGNORED_INPUT {
                            break End::Done;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    };
    let mode = &progress.mode;
    let mut tail = Vec::new();
    match end {
        End::Done => return Ok(()),
        End::Shutdown => mode.render_shutdown(
            &mut tail,
            &HeaderValues {
                status: "200 OK",
                server_time: unix_now(),
                channel_info: b"",
            },
        ),
        End::Footer => {}
    }
    tail.extend_from_slice(&mode.footer);
    write_out(state, stream, conn, &tail).await?;
    let _ = stream.shutdown().await;
    Ok(())
}

/// The ping period and the MaxTime deadline of `mode` for `conn`.
fn timers(mode: &CompiledMode, conn: &Conn) -> (Option<Duration>, Option<Instant>) {
    let settings = &mode.settings;
    let ping_every =
        (settings.ping_interval > 2).then(|| Duration::from_secs(settings.ping_interval));
    let deadline = (settings.max_time > 0).then(|| {
        let age = unix_now().saturating_sub(conn.started);
        Instant::now() + Duration::from_secs(settings.max_time.saturating_sub(age))
    });
    (ping_every, deadline)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}

/// Send everything after the cursors; `Some(end)` when the stream is over.
async fn drain(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    membership: &mut Membership<'_>,
    progress: &mut Progress,
) -> io::Result<Option<End>> {
    let mut batch: Vec<Arc<Message>> = Vec::new();
    loop {
        batch.clear();
        for subscription in &membership.subscriptions {
            if subscription
                .channel
                .read_after(subscription.cursor, READ_BATCH, &mut batch)
                .is_err()
            {
                Stats::add(&state.stats.subscribers_lagged, 1);
                tracing::info!(conn = conn.number, ip = %conn.ip, channel = %subscription.channel.name,
                    "subscriber fell out of the history; closing so it resumes");
                return Ok(Some(End::Footer));
            }
        }
        if batch.is_empty() {
            return Ok(None);
        }
        if membership.subscriptions.len() > 1 {
            batch.sort_by_key(|m| m.id);
        }
        let (out, taken) = progress.render_batch(&batch);
        // Only what was written moves the cursors; the rest is read again.
        for message in &batch[..taken] {
            if let Some(subscription) = membership
                .subscriptions
                .iter_mut()
                .find(|s| Arc::ptr_eq(&s.channel.name, &message.channel))
            {
                subscription.cursor = subscription.cursor.max(message.id);
            }
        }
        let finished = progress.finished();
        match out {
            Output::Shared(bytes) if !finished => write_out(state, stream, conn, &bytes).await?,
            Output::Shared(bytes) => {
                let mut out = bytes.to_vec();
                out.extend_from_slice(&progress.mode.footer);
                write_out(state, stream, conn, &out).await?;
            }
            Output::Owned(mut out) => {
                if finished {
                    out.extend_from_slice(&progress.mode.footer);
                }
                write_out(state, stream, conn, &out).await?;
            }
        }
        count_sent(state, conn, taken as u64);
        if finished {
            let _ = stream.shutdown().await;
            return Ok(Some(End::Done));
        }
        if taken == batch.len() && batch.len() < READ_BATCH {
            return Ok(None);
        }
    }
}
