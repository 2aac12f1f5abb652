//! FastCGI front end (tokio-fastcgi glue): the accept loop over a socket
//! from [`listen`](crate::listen), one task per connection and per
//! request, and rendering a [`Response`] as a
//! CGI `Status:` header block.
//!
//! Body size: every connection's read half goes through
//! [`StdinCap`], so a huge body costs at most the
//! cap plus one record before the handler answers 413.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_fastcgi::{Request, RequestResult, Requests, Role};

use crate::handler::App;
use crate::listen::StdListener;
use crate::response::{Response, reason_phrase};
use crate::stdin_cap::StdinCap;

/// FCGI_MAX_CONNS we advertise (only used in FCGI_GET_VALUES replies).
const ADVERTISED_MAX_CONNS: u8 = 64;
/// FCGI_MAX_REQS we advertise per connection.
const ADVERTISED_MAX_REQS: u8 = 16;
/// Pause after a failed accept (e.g. EMFILE) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections forever (until the future is dropped).
pub async fn serve(listener: StdListener, app: Arc<App>) -> anyhow::Result<()> {
    match listener {
        StdListener::Tcp(l) => {
            l.set_nonblocking(true)?;
            let l = tokio::net::TcpListener::from_std(l)?;
            loop {
                match l.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let (r, w) = stream.into_split();
                        tokio::spawn(connection(r, w, app.clone()));
                    }
                    Err(e) => accept_failed(e).await,
                }
            }
        }
        StdListener::Unix(l, _) => {
            l.set_nonblocking(true)?;
            let l = tokio::net::UnixListener::from_std(l)?;
            loop {
                match l.accept().await {
                    Ok((stream, _)) => {
                        let (r, w) = stream.into_split();
                        tokio::spawn(connection(r, w, app.clone()));
                    }
                    Err(e) => accept_failed(e).await,
                }
            }
        }
    }
}

async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accept failed: {e}; retrying");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// One FastCGI connection: requests are read in order and each is handled
/// in its own task, so a web server that multiplexes is served concurrently.
pub async fn connection<R, W>(r: R, w: W, app: Arc<App>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cap = app.limits().body_cap();
    let mut requests = Requests::new(
        StdinCap::new(r, cap),
        w,
        ADVERTISED_MAX_CONNS,
        ADVERTISED_MAX_REQS,
    );
    loop {
        match requests.next().await {
            Ok(Some(request)) => {
                let app = app.clone();
                let in_flight = app.begin_request();
                tokio::spawn(async move {
                    let _in_flight = in_flight;
                    if let Err(e) = request.process(|req| respond(req, app)).await {
                        // The web server went away mid-answer (client abort).
                        tracing::debug!("FastCGI request not completed: {e}");
                    }
                });
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("FastCGI connection ended: {e}");
                return;
            }
        }
    }
}

async fn respond<W: AsyncWrite + Unpin>(req: Arc<Request<W>>, app: Arc<App>) -> RequestResult {
    if req.role != Role::Responder {
        return RequestResult::UnknownRole;
    }
    let method = req
        .get_str_param("REQUEST_METHOD")
        .unwrap_or("")
        .to_string();
    let content_type = req.get_str_param("CONTENT_TYPE").map(str::to_string);
    let mut body = Vec::new();
    // The stream is complete in memory (and capped by StdinCap), so reading
    // cannot block or fail; the guard is dropped before any await.
    if let Err(e) = req.get_stdin().read_to_end(&mut body) {
        tracing::warn!("reading FastCGI stdin: {e}");
    }
    let query = req.get_str_param("QUERY_STRING").unwrap_or("");
    let response = match app.token_answer(&method, query) {
        Some(response) => response,
        None => app.handle(&method, content_type.as_deref(), &body).await,
    };
    let mut out = req.get_stdout();
    if let Err(e) = out.write(render(&response).as_bytes()).await {
        tracing::debug!("writing FastCGI answer: {e}");
    }
    RequestResult::Complete(0)
}

/// CGI response: `Status:` line, headers, blank line, body.
pub fn render(response: &Response) -> String {
    format!(
        "Status: {} {}\r\n{}\r\n{}",
        response.status,
        reason_phrase(response.status),
        response.header_block(),
        response.body
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_status_header() {
        let r = Response::error(405, "nope");
        let text = render(&r);
        assert!(
            text.starts_with("Status: 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: POST\r\n\r\n{"), "{text}");
    }
}
