//! The publisher: one connection that sends timestamped, sequenced messages
//! round-robin over the run's channels, either at a fixed rate or as fast
//! as acknowledgements come back (a window of unacknowledged messages).
//!
//! Meteor: `ADDMESSAGE <chan> <payload>\n` to the controller, each answered
//! by `OK\t<id>\r\n`. Nchan: pipelined `POST <pub-prefix><chan>` requests
//! to the HTTP port, each answered by 201/202 with a short body.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

use meteor_proto::reply::parse_ok_reply;

use crate::cli::Settings;
use crate::payload;

/// Most messages put into one write when the window allows.
const MAX_BATCH: usize = 256;
/// Bound on waiting for the last acknowledgements after the send phase.
const ACK_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest acknowledgement line / response head accepted.
const MAX_REPLY: usize = 64 * 1024;

/// What the publisher did.
#[derive(Debug, Default, Serialize)]
pub struct PublishResult {
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub secs: f64,
    pub rate: f64,
    pub first_error: Option<String>,
    /// Messages sent per channel (index = channel number).
    #[serde(skip)]
    pub per_channel: Vec<u64>,
}

#[derive(Default)]
struct Acks {
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    closed: bool,
}

/// Publishes for `settings.duration`, then waits (bounded) for the
/// outstanding acknowledgements.
/// `floor`, when given (flow control), is the lowest next sequence number
/// over all subscribers; no message is sent more than `s.max_lag` ahead of
/// it.
pub async fn run(
    s: &Settings,
    mut floor: Option<watch::Receiver<u64>>,
) -> anyhow::Result<PublishResult> {
    let nchan = s.mode.is_nchan();
    let addr = if nchan { s.target } else { s.controller };
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("publisher: connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let window = Arc::new(Semaphore::new(s.window));
    let acks = Rc::new(RefCell::new(Acks::default()));

    let reader = {
        let window = window.clone();
        let acks = acks.clone();
        async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            loop {
                match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let res = if nchan {
                    nchan_replies(&mut buf)
                } else {
                    meteor_replies(&mut buf)
                };
                let mut a = acks.borrow_mut();
                match res {
                    Ok((ok, errs, first)) => {
                        a.acked += ok;
                        a.errors += errs;
                        if a.first_error.is_none() {
                            a.first_error = first;
                        }
                        window.add_permits((ok + errs) as usize);
                    }
                    Err(e) => {
                        a.errors += 1;
                        a.first_error.get_or_insert_with(|| format!("{e:#}"));
                        break;
                    }
                }
            }
            acks.borrow_mut().closed = true;
            // Wake a writer waiting for the window.
            window.close();
        }
    };
    let reader = tokio::task::spawn_local(reader);

    let mut result = PublishResult {
        per_channel: vec![0; s.channels],
        ..PublishResult::default()
    };
    let start = Instant::now();
    let end = start + s.duration;
    let mut out = Vec::with_capacity(MAX_BATCH * (s.bytes + 128));
    let mut body = Vec::with_capacity(s.bytes + 64);
    let mut next_channel = 0usize;
    let names = s.channel_names();
    loop {
        let now = Instant::now();
        if now >= end || acks.borrow().closed {
            break;
        }
        // How many messages to send now.
        let want = if s.rate > 0.0 {
            let due = ((now - start).as_secs_f64() * s.rate) as u64 + 1;
            if due <= result.sent {
                let at = start + Duration::from_secs_f64(result.sent as f64 / s.rate);
                tokio::time::sleep_until(at.min(end).into()).await;
                continue;
            }
            ((due - result.sent) as usize).min(MAX_BATCH)
        } else {
            MAX_BATCH
        };
        // Flow control: wait while the next message would be too far ahead.
        let allowed = floor.as_ref().map(|f| f.borrow().saturating_add(s.max_lag));
        if let (Some(limit), Some(f)) = (allowed, floor.as_mut())
            && result.per_channel[next_channel] >= limit
        {
            match tokio::time::timeout_at(end.into(), f.changed()).await {
                Ok(Ok(())) => continue,
                _ => break,
            }
        }
        // Take window permits: wait for one, then grab what is free.
        let first = tokio::time::timeout_at(end.into(), window.acquire()).await;
        match first {
            Ok(Ok(p)) => p.forget(),
            Ok(Err(_)) => break, // reader gone
            Err(_) => break,     // duration over
        }
        let mut n = 1;
        while n < want {
            match window.try_acquire() {
                Ok(p) => {
                    p.forget();
                    n += 1;
                }
                Err(_) => break,
            }
        }
        out.clear();
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut built = 0;
        for _ in 0..n {
            let ch = next_channel;
            if allowed.is_some_and(|limit| result.per_channel[ch] >= limit) {
                break;
            }
            next_channel = (next_channel + 1) % s.channels;
            let seq = result.per_channel[ch];
            result.per_channel[ch] += 1;
            body.clear();
            payload::encode(seq, stamp, s.bytes, &mut body);
            let name = &names[ch];
            if nchan {
                out.extend_from_slice(
                    format!(
                        "POST {}{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                        s.nchan_pub,
                        body.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&body);
            } else {
                push_addmessage(&mut out, name, &body);
            }
            built += 1;
        }
        window.add_permits(n - built);
        wr.write_all(&out).await.context("publisher: write")?;
        result.sent += built as u64;
    }
    result.secs = start.elapsed().as_secs_f64();
    result.rate = result.sent as f64 / result.secs.max(1e-9);

    // Wait for the last acknowledgements.
    let drain_end = Instant::now() + ACK_DRAIN_TIMEOUT;
    while Instant::now() < drain_end {
        let done = {
            let a = acks.borrow();
            a.closed || a.acked + a.errors >= result.sent
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = wr.shutdown().await;
    reader.abort();
    let a = acks.borrow();
    result.acked = a.acked;
    result.errors = a.errors + result.sent.saturating_sub(a.acked + a.errors);
    result.first_error = a.first_error.clone();
    if result.first_error.is_none() && result.errors > 0 {
        result.first_error = Some(format!("{} messages not acknowledged", result.errors));
    }
    Ok(result)
}

/// Bound on the whole prefill (`--prefill`).
const PREFILL_TIMEOUT: Duration = Duration::from_secs(300);

/// Fills every channel's history with `per_channel` messages of
/// `s.bytes` bytes before the publish window, so a soak run starts from
/// the memory a long-running server has (full histories) instead of
/// measuring the histories filling up. The bodies carry no payload marker,
/// so the subscribers they are delivered to do not count them. Meteor
/// controller only. Returns the messages acknowledged.
pub async fn prefill(s: &Settings, per_channel: u64) -> anyhow::Result<u64> {
    let fill = async {
        let stream = TcpStream::connect(s.controller)
            .await
            .with_context(|| format!("prefill: connect to {}", s.controller))?;
        stream.set_nodelay(true)?;
        let (mut rd, mut wr) = stream.into_split();
        let total = per_channel * s.channels as u64;
        let reader = async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut acked = 0u64;
            while acked < total {
                if rd.read_buf(&mut buf).await? == 0 {
                    bail!("prefill: controller closed after {acked} of {total} acknowledgements");
                }
                let (ok, errs, first) = meteor_replies(&mut buf)?;
                if errs > 0 {
                    bail!("prefill: {}", first.unwrap_or_default());
                }
                acked += ok;
            }
            Ok(acked)
        };
        let writer = async move {
            let text = vec![b'x'; s.bytes];
            let names = s.channel_names();
            let mut out = Vec::with_capacity(MAX_BATCH * (s.bytes + 64));
            for round in 0..per_channel {
                for (k, name) in names.iter().enumerate() {
                    push_addmessage(&mut out, name, &text);
                    let last = round + 1 == per_channel && k + 1 == s.channels;
                    if out.len() >= MAX_BATCH * s.bytes || last {
                        wr.write_all(&out).await.context("prefill: write")?;
                        out.clear();
                    }
                }
            }
            anyhow::Ok(wr)
        };
        // The writer keeps its half open until every acknowledgement is in.
        let (acked, _wr) = tokio::try_join!(reader, writer)?;
        Ok(acked)
    };
    tokio::time::timeout(PREFILL_TIMEOUT, fill)
        .await
        .context("prefill: timed out")?
}

/// One controller line: `ADDMESSAGE <channel> <body>\n`.
fn push_addmessage(out: &mut Vec<u8>, channel: &str, body: &[u8]) {
    out.extend_from_slice(b"ADDMESSAGE ");
    out.extend_from_slice(channel.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out.push(b'\n');
}

type Tally = (u64, u64, Option<String>);

/// Counts complete controller replies (`OK\t<id>\r\n`, as
/// [`parse_ok_reply`] reads it, or anything else = error) and removes them
/// from `buf`.
fn meteor_replies(buf: &mut BytesMut) -> anyhow::Result<Tally> {
    let (mut ok, mut errs, mut first) = (0, 0, None);
    while let Some(nl) = memchr::memchr(b'\n', buf) {
        let line = &buf[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if parse_ok_reply(line).is_some() {
            ok += 1;
        } else {
            errs += 1;
            first.get_or_insert_with(|| {
                format!(
                    "controller said {:?}",
                    String::from_utf8_lossy(line).trim_end()
                )
            });
        }
        buf.advance(nl + 1);
    }
    if buf.len() > MAX_REPLY {
        bail!("controller reply line longer than {MAX_REPLY} bytes");
    }
    Ok((ok, errs, first))
}

/// Counts complete HTTP responses to the Nchan publisher (2xx = accepted)
/// and removes them from `buf`.
fn nchan_replies(buf: &mut BytesMut) -> anyhow::Result<Tally> {
    let (mut ok, mut errs, mut first) = (0, 0, None);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(buf).context("nchan publisher: bad response")? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => break,
        };
        let length = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| {
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
            })
            .unwrap_or(Some(0))
            .context("nchan publisher: bad Content-Length")?;
        if buf.len() < head_len + length {
            break;
        }
        let code = resp.code.unwrap_or(0);
        if (200..300).contains(&code) {
            ok += 1;
        } else {
            errs += 1;
            first.get_or_insert_with(|| format!("nchan publisher answered {code}"));
        }
        buf.advance(head_len + length);
    }
    if buf.len() > MAX_REPLY {
        bail!("nchan publisher response longer than {MAX_REPLY} bytes");
    }
    Ok((ok, errs, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_controller_replies_across_reads() {
        let mut buf = BytesMut::from(&b"OK\t1\r\nOK\t2\r\nERR Invalid command syntax\r\nOK\t"[..]);
        let (ok, errs, first) = meteor_replies(&mut buf).unwrap();
        assert_eq!((ok, errs), (2, 1));
        assert!(first.unwrap().contains("ERR"));
        assert_eq!(&buf[..], b"OK\t");
        buf.extend_from_slice(b"3\r\n");
        assert_eq!(meteor_replies(&mut buf).unwrap().0, 1);
        // An OK without a message id is not an acknowledgement.
        let mut buf = BytesMut::from(&b"OK\tx\r\nOK\r\nOK\t7\n"[..]);
        let (ok, errs, _) = meteor_replies(&mut buf).unwrap();
        assert_eq!((ok, errs), (1, 2));
    }

    #[test]
    fn counts_pipelined_nchan_responses() {
        let one = "HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nhello";
        let bad = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        let mut buf = BytesMut::from(format!("{one}{bad}{one}HTTP/1.1 202 Acc").as_bytes());
        let (ok, errs, _) = nchan_replies(&mut buf).unwrap();
        assert_eq!((ok, errs), (2, 1));
        assert!(buf.starts_with(b"HTTP/1.1 202"));
    }
}
