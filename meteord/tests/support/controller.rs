//! Byte-exact controller exchanges: replies compared as bytes (channel
//! names and texts need not be UTF-8), and whether the daemon closed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::WAIT;

/// A raw controller connection.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect controller");
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Raw { stream }
    }

    /// Send `bytes` and read until `want.len()` bytes arrived; they must be
    /// `want`.
    pub fn expect(&mut self, bytes: &[u8], want: &[u8]) {
        self.stream.write_all(bytes).expect("write controller");
        let got = self.read_len(want.len());
        assert_eq!(
            got,
            want,
            "after sending {:?}:\n got {:?}\nwant {:?}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want)
        );
    }

    /// Send `bytes`, read one reply ending in `end`, return it.
    pub fn ask(&mut self, bytes: &[u8], end: &[u8]) -> Vec<u8> {
        self.stream.write_all(bytes).expect("write controller");
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while !got.ends_with(end) {
            assert!(Instant::now() < deadline, "no reply: {got:?}");
            got.extend(self.read_some());
        }
        got
    }

    fn read_some(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) => chunk[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    fn read_len(&mut self, len: usize) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.len() < len && Instant::now() < deadline {
            got.extend(self.read_some());
        }
        got
    }

    /// Everything until the daemon closes the connection.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        self.stream
            .read_to_end(&mut got)
            .expect("the daemon closes the connection");
        got
    }
}

/// One command line and its whole reply, on a fresh connection.
pub fn list(addr: SocketAddr, command: &[u8]) -> Vec<u8> {
    let mut raw = Raw::connect(addr);
    raw.ask(command, b"--EOT--\r\n")
}

/// Wait until `command`'s reply is `want`.
pub fn wait_reply(addr: SocketAddr, command: &[u8], want: &[u8]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = list(addr, command);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never got {:?}, last {:?}",
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(&got)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `key: value` out of a list reply.
pub fn value(reply: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(reply);
    let prefix = format!("{key}: ");
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
