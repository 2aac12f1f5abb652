//! For tests that start `meteord` themselves rather than through
//! [`super::Daemon`] (a detaching daemon, one under `prlimit`): a scratch
//! directory that removes itself, and ports reserved for a daemon whose
//! log line cannot report them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, Socket, Type};

/// A [`super::scratch`] directory, removed when dropped (also when the test
/// fails half-way).
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        Scratch(super::scratch(name))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the directory, as a command-line argument.
    pub fn arg(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port held for a daemon that is yet to start: a socket bound
/// to it with `SO_REUSEADDR` but not listening. No one else is given the
/// port while it is held (binding port 0 skips it), and the daemon, which
/// sets `SO_REUSEADDR` too, may still bind and listen on it, since Linux
/// refuses a shared port only to a second *listener*. Binding a port and
/// releasing it before the daemon starts instead leaves a window in which
/// another test's port 0 can take it.
pub struct ReservedPort {
    _socket: Socket,
    pub port: u16,
}

impl ReservedPort {
    pub fn new() -> ReservedPort {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.set_reuse_address(true).unwrap();
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        socket.bind(&any.into()).unwrap();
        let port = socket
            .local_addr()
            .unwrap()
            .as_socket()
            .expect("an IP socket")
            .port();
        ReservedPort {
            _socket: socket,
            port,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }

    pub fn arg(&self) -> String {
        self.port.to_string()
    }
}
