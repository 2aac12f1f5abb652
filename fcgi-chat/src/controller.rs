//! Async client for meteord's controller port: sends one `ADDMESSAGE` line
//! and waits for `OK\t<id>\r\n`.
//!
//! One healthy connection is kept per process and reused; a request that
//! finds none (or finds the kept one in use by a concurrent request) opens a
//! fresh one. Duplicates are the thing to avoid: a line is retried on a
//! fresh connection only when the kept connection failed *before the
//! terminating newline could have left this process* (the daemon had closed
//! it, or the write failed). Once the whole line was written, a lost or late
//! answer is reported as [`SendError::Unconfirmed`] and never resent — the
//! daemon may already have published it.

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// Longest reply line we read. `OK\t<u64>\r\n` is at most 24 bytes and
/// `ERR <reason>` lines are short; anything longer is not meteord.
const MAX_REPLY_LEN: usize = 1024;

/// Why a message did not make it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// Nothing was delivered: could not connect, refused, timed out before
    /// the line was written.
    #[error("chat server unavailable: {0}")]
    Unavailable(String),
    /// The line was written but no answer came back; it may or may not
    /// have been published, so it is not resent.
    #[error("chat server did not confirm the message: {0}")]
    Unconfirmed(String),
    /// The daemon answered `ERR <reason>`.
    #[error("chat server refused the message: {0}")]
    Rejected(String),
    /// The daemon answered something that is neither `OK\t<id>` nor `ERR`.
    #[error("chat server sent an unexpected reply: {0}")]
    BadReply(String),
}

impl SendError {
    /// HTTP status for this failure: 503 when the daemon is unreachable or
    /// silent, 502 when it answered but not with an id.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unavailable(_) | Self::Unconfirmed(_) => 503,
            Self::Rejected(_) | Self::BadReply(_) => 502,
        }
    }
}

/// Outcome of one attempt on one connection.
enum Attempt {
    /// The daemon published the message (`OK`) or refused it (`ERR`); the
    /// connection is in a clean state and can be kept.
    Answered(Result<u64, SendError>, TcpStream),
    /// The newline never left this process; safe to retry elsewhere.
    NotSent(String),
    /// Failed after the line was written (or with a protocol error); the
    /// connection is dropped.
    Failed(SendError),
}

/// Client for one controller address. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Controller {
    addr: String,
    timeout: Duration,
    /// The kept connection. A std mutex is right here: it is only held to
    /// move the `Option` in or out, never across an `.await`.
    idle: std::sync::Mutex<Option<TcpStream>>,
}

impl Controller {
    /// `addr` is `host:port`; `timeout` bounds one whole send (connect,
    /// write and answer).
    pub fn new(addr: impl Into<String>, timeout: Duration) -> Self {
        Self {
            addr: addr.into(),
            timeout,
            idle: std::sync::Mutex::new(None),
        }
    }

    /// The address this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one complete, newline-terminated controller line and returns
    /// the message id meteord assigned.
    pub async fn send(&self, line: &str) -> Result<u64, SendError> {
        let deadline = Instant::now() + self.timeout;
        if let Some(kept) = self.take_idle() {
            match self.attempt(kept, line, deadline).await {
                Attempt::NotSent(why) => {
                    tracing::debug!(addr = %self.addr, "kept controller connection unusable ({why}); reconnecting");
                }
                other => return self.finish(other),
            }
        }
        let fresh = self.connect(deadline).await?;
        match self.attempt(fresh, line, deadline).await {
            Attempt::NotSent(why) => Err(SendError::Unavailable(why)),
            other => self.finish(other),
        }
    }

    fn take_idle(&self) -> Option<TcpStream> {
        // A poisoned lock only means another task panicked while moving an
        // Option; the Option itself is always valid.
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn finish(&self, attempt: Attempt) -> Result<u64, SendError> {
        match attempt {
            Attempt::Answered(result, conn) => {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.is_none() {
                    *idle = Some(conn);
                }
                result
            }
            Attempt::Failed(err) => Err(err),
            Attempt::NotSent(why) => Err(SendError::Unavailable(why)),
        }
    }

    async fn connect(&self, deadline: Instant) -> Result<TcpStream, SendError> {
        match timeout_at(deadline, TcpStream::connect(&self.addr)).await {
            Err(_) => Err(SendError::Unavailable(format!(
                "connecting to {} timed out after {} ms",
                self.addr,
                self.timeout.as_millis()
            ))),
            Ok(Err(e)) => Err(SendError::Unavailable(format!(
                "cannot connect to {}: {e}",
                self.addr
            ))),
            Ok(Ok(stream)) => {
                // Lines are tiny and latency matters more than packet count.
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
        }
    }

    async fn attempt(&self, mut conn: TcpStream, line: &str, deadline: Instant) -> Attempt {
        // A kept connection the daemon closed meanwhile shows up as EOF (or
        // a reset) right away; catching it here, before writing, is what
        // makes the retry safe.
        let mut probe = [0u8; 1];
        match conn.try_read(&mut probe) {
            Ok(0) => return Attempt::NotSent("closed by the daemon".into()),
            Ok(_) => return Attempt::NotSent("unexpected data from the daemon".into()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Attempt::NotSent(e.to_string()),
        }

        // If write_all fails or times out, its last chunk — the one holding
        // the newline — was not accepted by the kernel, so meteord cannot
        // have a complete command.
        match timeout_at(deadline, conn.write_all(line.as_bytes())).await {
            Err(_) => {
                return Attempt::NotSent(format!(
                    "writing to {} timed out after {} ms",
                    self.addr,
                    self.timeout.as_millis()
                ));
            }
            Ok(Err(e)) => return Attempt::NotSent(format!("writing to {}: {e}", self.addr)),
            Ok(Ok(())) => {}
        }

        let reply = match timeout_at(deadline, read_reply(&mut conn)).await {
            Err(_) => {
                return Attempt::Failed(SendError::Unconfirmed(format!(
                    "no answer from {} within {} ms",
                    self.addr,
                    self.timeout.as_millis()
                )));
            }
            Ok(Err(why)) => return Attempt::Failed(SendError::Unconfirmed(why)),
            Ok(Ok(reply)) => reply,
        };
        match parse_reply(&reply) {
            Reply::Ok(id) => Attempt::Answered(Ok(id), conn),
            Reply::Err(reason) => Attempt::Answered(Err(SendError::Rejected(reason)), conn),
            Reply::Other(text) => Attempt::Failed(SendError::BadReply(text)),
        }
    }
}

/// Reads one reply line (without its line end).
async fn read_reply(conn: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(32);
    let mut chunk = [0u8; 256];
    loop {
        let n = conn
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            return Err("connection closed before the answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            // Bytes after our one reply line would mean the connection is
            // out of step; treat the reply as garbage so it is not kept.
            if nl + 1 != buf.len() {
                return Ok(b"(more than one reply line)".to_vec());
            }
            buf.truncate(nl);
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(buf);
        }
        if buf.len() > MAX_REPLY_LEN {
            return Ok(b"(reply line too long)".to_vec());
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Ok(u64),
    Err(String),
    Other(String),
}

fn parse_reply(line: &[u8]) -> Reply {
    if let Some(id) = meteor_proto::reply::parse_ok_reply(line) {
        return Reply::Ok(id);
    }
    let text = String::from_utf8_lossy(line);
    if let Some(reason) = text.strip_prefix("ERR") {
        let reason = reason.trim();
        return Reply::Err(if reason.is_empty() {
            "(no reason given)".into()
        } else {
            reason.escape_debug().to_string()
        });
    }
    Reply::Other(text.escape_debug().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_parsing() {
        assert_eq!(parse_reply(b"OK\t42"), Reply::Ok(42));
        assert_eq!(parse_reply(b"OK 42"), Reply::Other("OK 42".into()));
        assert_eq!(parse_reply(b"OK\tx"), Reply::Other("OK\\tx".into()));
        assert_eq!(parse_reply(b"ERR"), Reply::Err("(no reason given)".into()));
        assert_eq!(parse_reply(b"ERR bad\x01"), Reply::Err("bad\\u{1}".into()));
    }
}
