//! The Prometheus metrics endpoint (issue 14): `GET /metrics` on its own
//! listener (`MetricsIP`/`MetricsPort`, 0 = off), in the text exposition
//! format. This file owns the listener and the tiny HTTP exchange;
//! `collect.rs` gathers a [`collect::Snapshot`] from the daemon's state,
//! `render.rs` writes it out (pure), `transport.rs` names a framing and
//! keeps the totals of ended streams by transport.
//!
//! The exposition is written by hand, not with the `prometheus-client`
//! crate: every figure already lives in the daemon's own counters and
//! tables, so a registry would only copy them, and the format is a few
//! lines per family (docs/metrics.md lists them).

mod collect;
mod render;
mod transport;

pub use transport::{EndedStreams, transport_name};

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::state::State;

/// Most bytes of a scrape's request head read: a scraper sends a few
/// hundred.
const MAX_REQUEST: usize = 8 * 1024;
/// A scrape (request and answer) must be over within this.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most scrapes answered at once; more wait in the listen queue.
const MAX_CONCURRENT: usize = 8;

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answer scrapes on `listener` until `stop` changes.
pub async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(stream, &state)).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One request, one answer, close.
async fn exchange(mut stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_REQUEST {
            return Ok(());
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let answer = answer(&buf, || render::render(&collect::snapshot(state)));
    stream.write_all(&answer).await?;
    stream.shutdown().await
}

/// The whole answer to a request head: the metrics for `GET /metrics`
/// (a query string allowed), 404 for any other path, 405 for any other
/// method.
fn answer(head: &[u8], body: impl FnOnce() -> String) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", CONTENT_TYPE, body()),
        (b"GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics only\n".to_owned(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nServer: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        crate::SERVER_NAME,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_gets_the_metrics() {
        let text = |head: &[u8]| String::from_utf8(answer(head, || "m 1\n".to_owned())).unwrap();
        assert_eq!(
            text(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nServer: meteord\r\nContent-Type: text/plain; version=0.0.4; \
             charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\nm 1\n"
        );
        assert!(text(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nm 1\n"));
        assert!(text(b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text(b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(text(b"\r\n\r\n").starts_with("HTTP/1.1 405 "));
    }
}
