//! A tiny WebSocket test client (RFC 6455) on a plain blocking socket:
//! the upgrade with a fixed key, masked (or, to test the refusal,
//! unmasked) frames out, the server's frames read back one by one with
//! their exact bytes kept. Every wait is bounded by [`super::WAIT`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::WAIT;

/// RFC 6455's example key, and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The exact head the daemon answers an upgrade with.
pub const SWITCHING: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                             Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// The upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: ws-test\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
}

/// A server text frame holding `payload`, byte for byte.
pub fn text_frame(payload: &str) -> Vec<u8> {
    let mut out = vec![0x81];
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload.as_bytes());
    out
}

/// The message event's JSON, as the contract writes it (for plain texts).
pub fn message_json(id: u64, channel: &str, text: &str) -> String {
    format!(r#"{{"type":"message","id":{id},"channel":"{channel}","text":"{text}"}}"#)
}

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
    /// The frame's bytes as received.
    pub raw: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        String::from_utf8(self.payload.clone()).expect("text frames are UTF-8")
    }

    /// A close frame's code and reason.
    pub fn close(&self) -> (u16, String) {
        assert_eq!(self.opcode, CLOSE, "not a close: {self:?}");
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        (
            code,
            String::from_utf8_lossy(&self.payload[2..]).into_owned(),
        )
    }
}

/// A WebSocket connection to the daemon.
pub struct Ws {
    pub stream: TcpStream,
    /// Received and not yet taken as a frame.
    buf: Vec<u8>,
    /// The response head (the bytes up to and including its blank line).
    pub head: Vec<u8>,
    pub closed: bool,
}

impl Ws {
    /// Connect, send the upgrade for `path`, and read the response head.
    pub fn connect(addr: SocketAddr, path: &str) -> Ws {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
        Ws::over(stream, upgrade_request(path).as_bytes())
    }

    /// Send `request` on `stream` and read the response head.
    pub fn over(mut stream: TcpStream, request: &[u8]) -> Ws {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        stream.write_all(request).expect("send upgrade");
        let mut ws = Ws {
            stream,
            buf: Vec::new(),
            head: Vec::new(),
            closed: false,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                ws.head = ws.buf.drain(..end + 4).collect();
                return ws;
            }
            assert!(
                !ws.closed && Instant::now() < deadline,
                "no response head: {:?}",
                String::from_utf8_lossy(&ws.buf)
            );
            ws.read_some();
        }
    }

    /// Connect as [`Ws::connect`], asserting the `101` head byte for byte.
    pub fn open(addr: SocketAddr, path: &str) -> Ws {
        let ws = Ws::connect(addr, path);
        assert_eq!(String::from_utf8_lossy(&ws.head), SWITCHING);
        ws
    }

    fn read_some(&mut self) {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.closed = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => self.closed = true,
        }
    }

    /// Send one frame; `masked` false breaks the protocol on purpose.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
        let mut out = vec![u8::from(fin) << 7 | opcode];
        let bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(bit | n as u8),
            n if n <= 0xffff => {
                out.push(bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let mask = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        // The daemon may have closed already; the reply says so.
        let _ = self.stream.write_all(&out);
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, TEXT, text.as_bytes(), true);
    }

    /// The next frame, whatever it is.
    pub fn next_frame(&mut self) -> Frame {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(frame) = self.take_frame() {
                return frame;
            }
            assert!(
                !self.closed && Instant::now() < deadline,
                "no frame; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.read_some();
        }
    }

    /// The next frame that is not a ping.
    pub fn next_event(&mut self) -> Frame {
        loop {
            let frame = self.next_frame();
            if frame.opcode != PING {
                return frame;
            }
        }
    }

    /// The next non-ping frame's text, asserting it is a text frame.
    pub fn next_text(&mut self) -> String {
        let frame = self.next_event();
        assert_eq!(frame.opcode, TEXT, "{frame:?}");
        frame.text()
    }

    /// The next non-ping frame must be a close; then the connection ends.
    pub fn expect_close(&mut self) -> (u16, String) {
        let frame = self.next_event();
        let close = frame.close();
        let deadline = Instant::now() + WAIT;
        while !self.closed {
            assert!(Instant::now() < deadline, "still open after {close:?}");
            self.read_some();
        }
        close
    }

    /// Read for `d`: whether nothing but pings arrived and it stayed open.
    pub fn quiet_for(&mut self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline && !self.closed {
            self.read_some();
            while let Some(frame) = self.take_frame() {
                if frame.opcode != PING {
                    return false;
                }
            }
        }
        !self.closed
    }

    fn take_frame(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are never masked");
        let (len, at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            return None;
        }
        let raw: Vec<u8> = self.buf.drain(..at + len).collect();
        Some(Frame {
            fin: raw[0] & 0x80 != 0,
            opcode: raw[0] & 0x0f,
            payload: raw[at..].to_vec(),
            raw,
        })
    }
}
