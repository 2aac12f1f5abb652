//! The subscriber port: one task per connection. It reads one request head
//! (bounded in size and time), then either serves a static document, handles
//! `/disconnect/<hostid>`, or becomes a stream: header and replayed backlog
//! here, then live messages, pings and the footer in [`stream::Live`] — all
//! bytes from the mode's compiled templates.

pub mod request;
pub mod stream;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::registry::{Conn, StopReason, StreamDetails};
use crate::state::{State, unix_now};
use crate::stats::Stats;
use crate::template::{ChannelInfoValues, CompiledMode, HeaderValues};
use request::{HeadError, Route, StreamRequest};
use stream::{Joined, Live, Progress, count_sent, write_out};

/// Serve one subscriber-port connection: answer it, or set up its stream
/// and hand it to a [`stream::Live`] task of its own.
pub async fn serve(state: Arc<State>, stream: TcpStream, conn: Arc<Conn>) {
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
    state.connections.remove(&conn);
}

enum HeadRead {
    Head(request::Head),
    Refused(HeadError),
    Closed,
}

async fn read_head(stream: &mut TcpStream, state: &State, conn: &Conn) -> io::Result<HeadRead> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            ready = stream.readable() => ready?,
            // Shutdown: a client still sending its request is not waited for.
            _ = conn.wakeup.wait() => {
                if conn.stop_reason() != StopReason::Running {
                    return Ok(HeadRead::Closed);
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
        match request::parse_head(&buf) {
            Ok(Some(head)) => return Ok(HeadRead::Head(head)),
            Ok(None) => {}
            Err(e) => return Ok(HeadRead::Refused(e)),
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
    let head = match timeout(header_timeout, read_head(&mut stream, state, conn)).await {
        Err(_) => {
            tracing::debug!(ip = %conn.ip, "request head timed out");
            respond_error(
                state,
                &mut stream,
                "408 Request Timeout",
                "request timed out",
            )
            .await;
            return Ok(None);
        }
        Ok(result) => match result? {
            HeadRead::Closed => return Ok(None),
            HeadRead::Refused(e) => {
                tracing::info!(ip = %conn.ip, error = %e, "bad request");
                respond_error(state, &mut stream, e.status(), &e.to_string()).await;
                return Ok(None);
            }
            HeadRead::Head(head) => head,
        },
    };
    if head.method != "GET" {
        respond_error(
            state,
            &mut stream,
            "405 Method Not Allowed",
            "only GET is served",
        )
        .await;
        return Ok(None);
    }
    match request::route(&head.target, &config.subscriber_dynamic_page_address) {
        Route::Document(path) => serve_document(state, &mut stream, conn, path)
            .await
            .map(|()| None),
        Route::Disconnect(hostid) => {
            let found = state.connections.disconnect_hostid(&hostid);
            let body = if found {
                "disconnected\n"
            } else {
                "no such subscriber\n"
            };
            write_out(state, &mut stream, conn, &plain_response("200 OK", body)).await?;
            Ok(None)
        }
        Route::BadStream => {
            let modes = state.modes();
            not_found_stream(state, &mut stream, conn, modes.get("")).await?;
            Ok(None)
        }
        Route::Stream(req) => serve_stream(state, stream, conn, req, head.user_agent).await,
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

async fn respond_error(state: &State, stream: &mut TcpStream, status: &str, reason: &str) {
    Stats::add(&state.stats.errors_served, 1);
    let mut response = plain_response(status, &format!("{reason}\n"));
    if status.starts_with("405") {
        let at = response.len() - reason.len() - 3;
        response.splice(at..at, b"\r\nAllow: GET".iter().copied());
    }
    // The client may already be gone; nothing else to do then.
    let _ = timeout(Duration::from_secs(5), stream.write_all(&response)).await;
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

/// Send the header and backlog; `Some(live)` when the stream goes on.
async fn serve_stream(
    state: &Arc<State>,
    mut stream: TcpStream,
    conn: &Arc<Conn>,
    req: StreamRequest,
    user_agent: String,
) -> io::Result<Option<Live>> {
    let mode = state.modes().get(&req.mode).clone();
    if req.channels.is_empty() {
        not_found_stream(state, &mut stream, conn, &mode).await?;
        return Ok(None);
    }
    let settings = mode.settings.clone();
    let _ = conn.details.set(StreamDetails::new(
        &req.hostid,
        &req.mode,
        &user_agent,
        settings.max_time,
        settings.persist,
    ));
    if settings.persist {
        state.connections.claim_hostid(conn);
    }

    Stats::add(&state.stats.current_subscribers, 1);
    let info = channel_info(state, &mode, &req);
    let mut backlog = Vec::new();
    // From here on, dropping `live` (on any error too) leaves the channels.
    let mut live = Live {
        state: state.clone(),
        stream,
        conn: conn.clone(),
        subscriptions: Joined::default(),
        progress: Progress {
            mode: mode.clone(),
            sent: 0,
        },
        woken: false,
        ignored_input: 0,
    };
    for (name, marker) in &req.channels {
        let subscription = state.channels.subscribe(name, *marker, conn, &mut backlog);
        live.subscriptions.push(subscription);
    }
    if live.subscriptions.len() > 1 {
        backlog.sort_by_key(|m| m.id);
    }

    let mut out = Vec::with_capacity(settings.header_template.len() + 256);
    mode.render_header(
        &mut out,
        &HeaderValues {
            status: "200 OK",
            server_time: unix_now(),
            channel_info: &info,
        },
    );
    // The whole backlog goes out with the header, in one write.
    let replayed = live.progress.append(&mut out, &backlog, usize::MAX) as u64;
    live.subscriptions.advance(&backlog[..replayed as usize]);
    drop(backlog);
    let finished = live.progress.finished();
    if finished {
        out.extend_from_slice(&mode.footer);
    }
    live.woken |= write_out(state, &mut live.stream, conn, &out).await?;
    count_sent(state, conn, replayed);
    if finished {
        let _ = live.stream.shutdown().await;
        return Ok(None);
    }
    Ok(Some(live))
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
        let conn = Arc::new(Conn::new(1, crate::registry::ConnKind::Subscriber, ip, 0));
        let live = Live {
            state: state.clone(),
            stream,
            conn,
            subscriptions: Joined::default(),
            progress: Progress {
                mode: state.modes().get("").clone(),
                sent: 0,
            },
            woken: false,
            ignored_input: 0,
        };
        let size = std::mem::size_of_val(&live.run());
        assert!(size <= 128, "the live task's future grew to {size} bytes");
    }
}
