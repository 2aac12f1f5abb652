//! The subscriber port: one task per connection. It reads one request head
//! (bounded in size and time), then either serves a static document, handles
//! `/disconnect/<hostid>`, answers 404, or becomes a [`stream::Live`]: it
//! joins the channels and hands the head and replayed backlog to
//! [`stream::Live::start`], and the stream goes on as a task of its own.
//! Every answer but a document's is made by a mode's [`framing`] (the
//! mode's, or the defaults'), as in the original.
//!
//! - `request.rs`: the request grammar (pure); `details.rs`: what a
//!   stream asked for; `query.rs`: query parameters, headers, cookies.
//! - `token.rs`: subscriber tokens, checked for every stream before it
//!   joins a channel (pure).
//! - `mode.rs`: modes compiled per configuration generation.
//! - `framing/`: the transport seam, how a mode speaks on the wire.
//! - `stream/`: the stream and its one writer path (`task.rs`: the
//!   hand-written future an idle stream is).

mod details;
pub mod framing;
pub mod mode;
pub mod query;
pub mod request;
pub mod stream;
pub mod token;

pub use details::StreamDetails;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::channel::Backlog;
use crate::connections::{Conn, StopReason};
use crate::limits::Limit;
use crate::state::State;
use crate::stats::Stats;
use framing::websocket::Handshake;
use framing::{ChannelInfoValues, Framing, HeaderValues};
use mode::CompiledMode;
use request::{Route, StreamRequest};
use stream::{Live, write_out};

/// The mode whose backlog ends the response in the original (by name).
const LONGPOLL: &str = "longpoll";

/// How long the footer for a given-up head may take to write: the client
/// that never finished its request may not read either.
const GIVE_UP_WRITE: Duration = Duration::from_secs(5);

/// Serve one subscriber-port connection: answer it, or set up its stream
/// and hand it to a [`stream::Live`] task of its own.
pub async fn serve(state: Arc<State>, stream: TcpStream, conn: Arc<Conn>) {
    // As in the original, every open subscriber-port connection counts,
    // from accept to close, whatever it asks for.
    Stats::add(&state.stats.current_subscribers, 1);
    match handle(&state, stream, &conn).await {
        Ok(Some(live)) => {
            tokio::spawn(live.run());
            return;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(conn = conn.number, ip = %conn.ip, error = %e, "subscriber connection ended");
        }
    }
    Stats::sub(&state.stats.current_subscribers, 1);
    state.connections.remove(&conn);
}

enum HeadRead {
    Head(request::Head),
    /// Not complete within MaxHeaderBytes (the limit is named), the head
    /// timeout, or the daemon is stopping.
    GaveUp(Option<Limit>),
    Closed,
}

async fn read_head(stream: &mut TcpStream, state: &State, conn: &Conn) -> io::Result<HeadRead> {
    let max_head = state.config().limits.max_header_bytes;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            ready = stream.readable() => ready?,
            // Shutdown: a client still sending its request is not waited
            // for; it gets what the original sends it then, the footer.
            _ = conn.wakeup.wait() => {
                if conn.stop_reason() != StopReason::Running {
                    return Ok(HeadRead::GaveUp(None));
                }
                continue;
            }
        }
        let mut chunk = [0u8; 2048];
        let n = match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(HeadRead::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        Stats::add(&state.stats.total_inbound_bytes, n as u64);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = request::parse_head(&buf) {
            return Ok(HeadRead::Head(head));
        }
        if buf.len() > max_head {
            return Ok(HeadRead::GaveUp(Some(Limit::HeaderBytes)));
        }
    }
}

/// Answer the request; `Some(live)` when it became a stream that goes on.
async fn handle(
    state: &Arc<State>,
    mut stream: TcpStream,
    conn: &Arc<Conn>,
) -> io::Result<Option<Live>> {
    let config = state.config();
    let header_timeout = Duration::from_secs(config.header_timeout.max(1));
    let read = timeout(header_timeout, read_head(&mut stream, state, conn)).await;
    let read = read.map_or(Ok(HeadRead::GaveUp(Some(Limit::HeaderTimeout))), |result| {
        result
    });
    let head = match read? {
        HeadRead::Closed => return Ok(None),
        HeadRead::GaveUp(limit) => {
            if let Some(limit) = limit {
                state.stats.limits.refused(limit);
            }
            tracing::debug!(ip = %conn.ip, ?limit, "request head never completed");
            give_up(state, &mut stream, conn).await;
            return Ok(None);
        }
        HeadRead::Head(head) => head,
    };
    // What follows the head (a body, a second request) is never read: the
    // first request alone is answered.
    let defaults = state.modes().get("").clone();
    match request::route(&head.text, &config.subscriber_dynamic_page_address) {
        Route::Stream(req) if req.channels.is_empty() => {
            let mode = state.modes().get(&req.mode).clone();
            // The original registers a persistent hostid before it looks at
            // the channels: the older connection is replaced even so.
            if mode.settings.persist {
                let user_agent = request::user_agent(&head.text);
                let _ = conn.details.set(stream_details(&req, &mode, &user_agent));
                state.connections.claim_hostid(conn);
            }
            not_found(state, &mut stream, conn, &mode).await?;
            Ok(None)
        }
        Route::Stream(mut req) => {
            let limits = &config.limits;
            let over = request::over_limits(
                &req,
                limits.max_channels_per_request,
                limits.max_channel_name_length,
            );
            if let Some(limit) = over {
                state.stats.limits.refused(limit);
                let mode = state.modes().get(&req.mode).clone();
                error_page(state, &mut stream, conn, &mode, "400 Bad Request").await?;
                return Ok(None);
            }
            if let Err(refusal) = authorize(state, &head.text, &req) {
                refuse(state, &mut stream, conn, refusal).await?;
                return Ok(None);
            }
            let mode = state.modes().get(&req.mode).clone();
            resume(&mut req, &mode, &head.text);
            serve_stream(state, stream, conn, req, &head.text).await
        }
        Route::Disconnect(hostid) => {
            state.connections.disconnect_hostid(&hostid);
            let mut out = Vec::new();
            defaults
                .framing
                .head(&mut out, &HeaderValues::now("200 OK", b""));
            out.extend_from_slice(defaults.framing.close());
            write_out(state, &mut stream, conn, &out).await?;
            Ok(None)
        }
        Route::Document(path) => serve_document(state, &mut stream, conn, path)
            .await
            .map(|()| None),
        Route::Unknown => {
            not_found(state, &mut stream, conn, &defaults).await?;
            Ok(None)
        }
    }
}

/// An EventSource client that reconnects names the last id it got
/// (`Last-Event-ID`, or `lastEventId=` in the query): every channel of
/// the stream then starts right after it, whatever its marker says. One
/// id is exact for all of them, as they share one id sequence. Other
/// modes keep their markers, as in the original.
fn resume(req: &mut StreamRequest, mode: &CompiledMode, head_text: &[u8]) {
    if !matches!(mode.framing, Framing::EventSource(_)) {
        return;
    }
    if let Some(id) = request::resume_after(head_text) {
        for (_, marker) in &mut req.channels {
            *marker = Backlog::After(id);
        }
    }
}

/// Every channel of the request that needs a token must be covered by the
/// request's token; checked before the stream claims its hostid or joins
/// anything, so a refused request changes nothing.
fn authorize(state: &State, head_text: &[u8], req: &StreamRequest) -> Result<(), token::Refusal> {
    let config = state.config();
    let rules = &config.subscriber_tokens;
    if !rules.active() {
        return Ok(());
    }
    let now = crate::clock::unix_now();
    let token = token::from_head(head_text);
    let channels = req.channels.iter().map(|(name, _)| name.as_str());
    token::authorize_all(rules, token.as_deref(), &req.hostid, channels, now)
}

/// `403` with the refusal's one-line reason and nothing else: no template,
/// no channel content. The token itself is never logged.
async fn refuse(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    refusal: token::Refusal,
) -> io::Result<()> {
    tracing::debug!(conn = conn.number, ip = %conn.ip, reason = refusal.reason(), "token refused");
    Stats::add(&state.stats.errors_served, 1);
    Stats::add(&state.stats.tokens_refused, 1);
    let body = format!("{}\n", refusal.reason());
    let response =
        crate::http::response(crate::http::FORBIDDEN, "text/plain", true, body.as_bytes());
    write_out(state, stream, conn, &response).await?;
    Ok(())
}

fn stream_details(req: &StreamRequest, mode: &CompiledMode, user_agent: &str) -> StreamDetails {
    StreamDetails::new(
        &req.hostid,
        &req.mode,
        user_agent,
        mode.settings.max_time,
        mode.settings.persist,
    )
}

/// A head that never completed: the original's housekeeping closes such a
/// connection after writing the default FooterTemplate (no status line),
/// and so do we — sooner, at the head timeout or size bound.
async fn give_up(state: &State, stream: &mut TcpStream, conn: &Conn) {
    let footer = state.modes().get("").framing.close().clone();
    // The client may be gone or stalled; nothing else to do then.
    let _ = timeout(GIVE_UP_WRITE, write_out(state, stream, conn, &footer)).await;
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
    write_out(state, stream, conn, &response.bytes).await?;
    Ok(())
}

/// 404 rendered with `mode`'s header and footer: for a stream request
/// without a valid channel (its own mode) and for anything the daemon does
/// not serve (the defaults).
async fn not_found(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    mode: &CompiledMode,
) -> io::Result<()> {
    error_page(state, stream, conn, mode, "404 Not Found").await
}

/// An error `status` rendered with `mode`'s header and footer, as the
/// original renders its 404 (400 is a request over a named limit).
async fn error_page(
    state: &State,
    stream: &mut TcpStream,
    conn: &Conn,
    mode: &CompiledMode,
    status: &str,
) -> io::Result<()> {
    Stats::add(&state.stats.errors_served, 1);
    let mut out = Vec::new();
    mode.framing.head(&mut out, &HeaderValues::now(status, b""));
    out.extend_from_slice(mode.framing.close());
    write_out(state, stream, conn, &out).await?;
    Ok(())
}

fn channel_info(state: &State, mode: &CompiledMode, req: &StreamRequest) -> Vec<u8> {
    let mut info = Vec::new();
    if !state.config().send_channel_info {
        return info;
    }
    for (name, _) in &req.channels {
        let summary = state.channels.summary(name);
        mode.framing.channel_info(
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

/// Send the header and backlog; `Some(live)` when the stream goes on.
async fn serve_stream(
    state: &Arc<State>,
    mut stream: TcpStream,
    conn: &Arc<Conn>,
    req: StreamRequest,
    request_head: &[u8],
) -> io::Result<Option<Live>> {
    let mode = state.modes().get(&req.mode).clone();
    // An upgrade that cannot be granted is answered before anything else:
    // it takes no hostid over and joins nothing.
    let accept = match mode.framing.handshake(request_head) {
        None => None,
        Some(Handshake::Accept(accept)) => Some(accept),
        Some(Handshake::Refuse(response)) => {
            Stats::add(&state.stats.errors_served, 1);
            write_out(state, &mut stream, conn, &response).await?;
            return Ok(None);
        }
    };
    let user_agent = request::user_agent(request_head);
    let settings = mode.settings.clone();
    let _ = conn.details.set(stream_details(&req, &mode, &user_agent));
    if settings.persist {
        state.connections.claim_hostid(conn);
    }

    let info = channel_info(state, &mode, &req);
    let mut live = Live::new(state.clone(), stream, conn.clone(), mode.clone());
    let mut backlog = Vec::new();
    let mut gaps = Vec::new();
    for (name, marker) in &req.channels {
        live.join(name, *marker, &mut backlog, &mut gaps);
    }
    let mut head = Vec::with_capacity(settings.header_template.len() + 256);
    let values = HeaderValues {
        upgrade_accept: accept.as_deref(),
        ..HeaderValues::now("200 OK", &info)
    };
    mode.framing.head(&mut head, &values);
    // Gaps come before any message: a client learns what it lost first.
    head.extend_from_slice(&gaps);
    live.start(head, backlog).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every idle subscriber is one of these tasks, and its future is most
    /// of a subscriber's memory: pin its size so it cannot creep up.
    #[tokio::test]
    async fn an_idle_stream_task_stays_small() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = Arc::new(State::new(config, crate::ids::Ids::starting_at(1)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let ip = stream.local_addr().unwrap().ip();
        let conn = Arc::new(Conn::new(
            1,
            crate::connections::ConnKind::Subscriber,
            ip,
            0,
        ));
        let live = Live::new(state.clone(), stream, conn, state.modes().get("").clone());
        let size = std::mem::size_of_val(&live.run());
        assert!(size <= 128, "the live task's future grew to {size} bytes");
    }

    /// The backlog and a live message reach the socket through the same
    /// writer, in order, rendered by the mode's framing: the head and the
    /// backlog in `start`, the live message in the task.
    #[tokio::test]
    async fn backlog_and_live_messages_take_one_writer_path() {
        use tokio::io::AsyncReadExt;

        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = Arc::new(State::new(config, crate::ids::Ids::starting_at(1)));
        let ids = crate::ids::Ids::starting_at(100);
        let publish = |text: &'static str| {
            let ctx = state.publish_context();
            state
                .channels
                .publish("c", bytes::Bytes::from_static(text.as_bytes()), &ids, ctx)
        };
        let old = publish("old");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let conn = Arc::new(Conn::new(
            1,
            crate::connections::ConnKind::Subscriber,
            peer.ip(),
            0,
        ));
        let details = StreamDetails::new("h", "xhrinteractive", "-", 0, true);
        conn.details.set(details).unwrap();
        let mode = state.modes().get("xhrinteractive").clone();
        let mut live = Live::new(state.clone(), server, conn, mode.clone());
        let mut backlog = Vec::new();
        live.join(
            "c",
            crate::channel::Backlog::All,
            &mut backlog,
            &mut Vec::new(),
        );
        let live = live.start(b"HEAD|".to_vec(), backlog).await.unwrap();
        let live = live.expect("a persistent mode goes on after its backlog");
        tokio::spawn(live.run());
        let new = publish("new");

        let mut expected = b"HEAD|".to_vec();
        expected.extend_from_slice(&mode.message_bytes(&old));
        expected.extend_from_slice(&mode.message_bytes(&new));
        let mut got = vec![0; expected.len()];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got));
        read.await.expect("both messages arrive").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
        assert!(String::from_utf8_lossy(&got).contains("old"));
    }
}
