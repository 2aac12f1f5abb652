//! Development HTTP mode (like `php -S`): serves the chat page's files from
//! `--chat-root`, a generated `/config.js`, and `POST /chat.php` through the
//! very same [`App::handle`] the FastCGI front end uses. One request per
//! connection (`Connection: close`), `Content-Length` bodies only, every
//! read bounded in size and time. Not meant to face the internet.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::handler::App;
use crate::response::{Response, reason_phrase};

/// Largest request head (request line + headers) we read.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines we parse; browsers send about 20.
const MAX_HEADERS: usize = 64;
/// Time a client gets to send its whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest static file we serve (the chat page's assets are a few KiB).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Pause after a failed accept so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Settings of the dev server.
#[derive(Debug)]
pub struct DevHttp {
    /// Directory with index.html and its assets.
    pub root: PathBuf,
    /// `--push-url`, the base URL of meteord given to the page.
    pub push_url: Option<String>,
    /// The chat handler.
    pub app: Arc<App>,
}

/// A finished HTTP answer.
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn from_chat(r: Response) -> Self {
        Self {
            status: r.status,
            headers: r.header_block(),
            body: r.body.into_bytes(),
        }
    }

    fn content(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: format!(
                "Content-Type: {content_type}\r\nCache-Control: no-cache\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body,
        }
    }

    fn text(status: u16, text: &str) -> Self {
        Self::content(
            status,
            "text/plain; charset=utf-8",
            format!("{text}\n").into_bytes(),
        )
    }

    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n{}X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
            self.status,
            reason_phrase(self.status),
            self.headers
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, dev: Arc<DevHttp>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, dev.clone()));
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, dev: Arc<DevHttp>) {
    let _in_flight = dev.app.begin_request();
    let (reply, head_only) = match timeout(REQUEST_TIMEOUT, request(&mut stream, &dev)).await {
        Ok(r) => r,
        Err(_) => (Reply::text(408, "request timed out"), false),
    };
    if let Err(e) = stream.write_all(&reply.to_bytes(head_only)).await {
        tracing::debug!("dev http: writing answer: {e}");
    }
    let _ = stream.shutdown().await;
}

/// Reads and answers one request; the bool says "HEAD: no body".
async fn request(stream: &mut TcpStream, dev: &DevHttp) -> (Reply, bool) {
    let mut buf = Vec::with_capacity(2048);
    let head_len = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return (Reply::text(431, "request head too large"), false);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return (Reply::text(400, "incomplete request"), false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(
        req.parse(&buf[..head_len]),
        Ok(httparse::Status::Complete(_))
    ) {
        return (Reply::text(400, "malformed request"), false);
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("");
    let path = target.split(['?', '#']).next().unwrap_or("").to_string();
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let content_type = header("content-type");
    let content_length = header("content-length");
    let chunked = header("transfer-encoding").is_some();
    let head_only = method == "HEAD";

    if path == "/chat.php" {
        let query = target.split_once('?').map_or("", |(_, q)| q);
        if let Some(r) = dev.app.token_answer(&method, query) {
            return (Reply::from_chat(r), false);
        }
        if method != "POST" {
            return (
                Reply::from_chat(dev.app.handle(&method, None, b"").await),
                false,
            );
        }
        if chunked {
            return (Reply::text(411, "send the body with Content-Length"), false);
        }
        let Some(len) = content_length.and_then(|v| v.trim().parse::<usize>().ok()) else {
            return (Reply::text(411, "Content-Length required"), false);
        };
        let cap = dev.app.limits().body_cap();
        if len > cap {
            // Refused before reading a byte of it.
            let r = Response::error(413, &format!("request body too large (limit {cap} bytes)"));
            return (Reply::from_chat(r), false);
        }
        let mut body = buf.split_off(head_len);
        if body.len() < len {
            let mut rest = vec![0u8; len - body.len()];
            if stream.read_exact(&mut rest).await.is_err() {
                return (Reply::text(400, "body shorter than Content-Length"), false);
            }
            body.extend_from_slice(&rest);
        }
        body.truncate(len);
        let r = dev
            .app
            .handle(&method, content_type.as_deref(), &body)
            .await;
        return (Reply::from_chat(r), false);
    }

    if method != "GET" && !head_only {
        let mut r = Reply::text(405, "method not allowed");
        r.headers.push_str("Allow: GET, HEAD\r\n");
        return (r, false);
    }
    if path == "/config.js" {
        return (
            config_js(dev.push_url.as_deref(), dev.app.tokens_on()),
            head_only,
        );
    }
    (static_file(&dev.root, &path).await, head_only)
}

/// `window.CHAT_CONFIG = {...};` with pushBase = `--push-url` (or null,
/// which makes the page derive `//data.<host>`), and with tokens on the
/// `tokenUrl` the page asks for its subscriber token.
fn config_js(push_url: Option<&str>, tokens: bool) -> Reply {
    let push_base = match push_url {
        Some(url) => serde_json::Value::String(url.to_string()),
        None => serde_json::Value::Null,
    };
    // serde_json escapes quotes and control characters; `<` is escaped too
    // so the text could even be inlined in a <script> element.
    let token_url = if tokens {
        ", \"tokenUrl\": \"chat.php?token=1\""
    } else {
        ""
    };
    let js = format!(
        "window.CHAT_CONFIG = {{\"pushBase\": {push_base}, \"postUrl\": \"chat.php\"{token_url}}};\n"
    )
    .replace('<', "\\u003c");
    Reply::content(200, "text/javascript; charset=utf-8", js.into_bytes())
}

/// Maps a URL path to a file under `root`, or `None` when the path is not
/// plainly safe: only `[A-Za-z0-9._/-]` (meteord's rule,
/// [`meteor_proto::path`]), no segment starting with a dot
/// (which rules out `..` and hidden files), no empty segments.
pub fn safe_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = url_path.strip_prefix('/')?;
    if !meteor_proto::path::valid_path_bytes(rel.as_bytes()) {
        return None;
    }
    let mut path = root.to_path_buf();
    let (dirs, leaf) = match rel.rsplit_once('/') {
        Some((dirs, leaf)) => (Some(dirs), leaf),
        None => (None, rel),
    };
    for seg in dirs.into_iter().flat_map(|d| d.split('/')) {
        if seg.is_empty() || seg.starts_with('.') {
            return None;
        }
        path.push(seg);
    }
    if leaf.starts_with('.') {
        return None;
    }
    path.push(if leaf.is_empty() { "index.html" } else { leaf });
    Some(path)
}

fn content_type_for(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn static_file(root: &Path, url_path: &str) -> Reply {
    let Some(mut path) = safe_path(root, url_path) else {
        return Reply::text(404, "not found");
    };
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_dir() => {
            path.push("index.html");
            tokio::fs::metadata(&path).await
        }
        other => other,
    };
    match meta {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE_BYTES => {}
        Ok(m) if m.is_file() => return Reply::text(500, "file too large for the dev server"),
        _ => return Reply::text(404, "not found"),
    }
    match tokio::fs::read(&path).await {
        Ok(body) => Reply::content(200, content_type_for(&path), body),
        Err(e) => {
            tracing::warn!("dev http: reading {}: {e}", path.display());
            Reply::text(404, "not found")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        let root = Path::new("/srv/chat");
        assert_eq!(safe_path(root, "/"), Some("/srv/chat/index.html".into()));
        assert_eq!(
            safe_path(root, "/css/a.css"),
            Some("/srv/chat/css/a.css".into())
        );
        assert_eq!(
            safe_path(root, "/img/"),
            Some("/srv/chat/img/index.html".into())
        );
        for bad in [
            "",
            "x",
            "/../etc/passwd",
            "/a/../../b",
            "/.git/config",
            "/%2e%2e/x",
            "//etc",
            "/a//b",
            "/a\\b",
            "/..",
        ] {
            assert_eq!(safe_path(root, bad), None, "{bad}");
        }
    }

    #[test]
    fn config_js_shape() {
        let r = config_js(Some("http://127.0.0.1:4670"), false);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "window.CHAT_CONFIG = {\"pushBase\": \"http://127.0.0.1:4670\", \"postUrl\": \"chat.php\"};\n"
        );
        let r = config_js(Some("</script>\""), false);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains(r#""\u003c/script>\"""#), "{body}");
        let r = config_js(None, false);
        assert!(
            String::from_utf8(r.body)
                .unwrap()
                .contains("\"pushBase\": null,")
        );
        let r = config_js(None, true);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "window.CHAT_CONFIG = {\"pushBase\": null, \"postUrl\": \"chat.php\", \"tokenUrl\": \"chat.php?token=1\"};\n"
        );
    }
}
