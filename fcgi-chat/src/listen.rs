//! Where the FastCGI listening socket comes from, settled before the
//! runtime exists: the `--listen`, `--socket-mode` and `--socket-owner`
//! values (parsed here so the command line and the binding agree on one
//! grammar), adopting mod_fcgid's listening socket on fd 0, and binding our
//! own TCP or Unix socket (replacing a stale socket file, refusing a live
//! one).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use nix::sys::socket::{
    AddressFamily, SockaddrLike, SockaddrStorage, getsockname, getsockopt, sockopt,
};
use nix::unistd::{Gid, Group, Uid, User};

/// Where to listen, from `--listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `host:port`.
    Tcp(String),
    /// `unix:/path.sock`.
    Unix(PathBuf),
}

impl ListenAddr {
    /// Parses `unix:/path` or `host:port`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s.strip_prefix("unix:") {
            Some("") => {
                bail!("--listen unix: needs a path, e.g. unix:/run/fcgi-chat/fcgi-chat.sock")
            }
            Some(path) => Ok(Self::Unix(PathBuf::from(path))),
            None if s.contains(':') => Ok(Self::Tcp(s.to_string())),
            None => bail!("--listen {s:?}: expected HOST:PORT or unix:/path"),
        }
    }
}

/// Permissions and owner for a Unix socket we create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketPerms {
    /// `--socket-mode`, e.g. 0o660.
    pub mode: Option<u32>,
    /// `--socket-owner` user.
    pub uid: Option<Uid>,
    /// `--socket-owner` group.
    pub gid: Option<Gid>,
}

/// Parses an octal mode like `0660` or `660`.
pub fn parse_mode(s: &str) -> anyhow::Result<u32> {
    let mode = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| anyhow!("--socket-mode {s:?} is not an octal number like 0660"))?;
    if mode > 0o7777 {
        bail!("--socket-mode {s:?} is out of range");
    }
    Ok(mode)
}

/// Parses `user`, `user:group` or `:group` (names or numeric ids).
pub fn parse_owner(s: &str) -> anyhow::Result<(Option<Uid>, Option<Gid>)> {
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (u, g),
        None => (s, ""),
    };
    let uid = match user {
        "" => None,
        u => Some(match u.parse::<u32>() {
            Ok(n) => Uid::from_raw(n),
            Err(_) => {
                User::from_name(u)
                    .with_context(|| format!("looking up user {u:?}"))?
                    .ok_or_else(|| anyhow!("--socket-owner: no such user {u:?}"))?
                    .uid
            }
        }),
    };
    let gid = match group {
        "" => None,
        g => Some(match g.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => {
                Group::from_name(g)
                    .with_context(|| format!("looking up group {g:?}"))?
                    .ok_or_else(|| anyhow!("--socket-owner: no such group {g:?}"))?
                    .gid
            }
        }),
    };
    if uid.is_none() && gid.is_none() {
        bail!("--socket-owner {s:?}: expected USER, USER:GROUP or :GROUP");
    }
    Ok((uid, gid))
}

/// A bound listening socket, before the runtime exists.
#[derive(Debug)]
pub enum StdListener {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// Unix; `cleanup` is the socket file to remove on exit (None when it
    /// was inherited: the web server owns that file).
    Unix(std::os::unix::net::UnixListener, Option<PathBuf>),
}

impl StdListener {
    /// `host:port` or `unix:/path` of the bound socket, as `--listen`
    /// spells it.
    pub fn local_addr(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| format!("(unknown: {e})"), |a| a.to_string()),
            Self::Unix(l, _) => match l.local_addr() {
                Ok(a) => match a.as_pathname() {
                    Some(path) => format!("unix:{}", path.display()),
                    None => "unix:(unnamed)".to_owned(),
                },
                Err(e) => format!("(unknown: {e})"),
            },
        }
    }

    /// Path of a socket file we created, to remove at shutdown.
    pub fn cleanup_path(&self) -> Option<&Path> {
        match self {
            Self::Unix(_, Some(p)) => Some(p),
            _ => None,
        }
    }
}

/// If fd 0 is a listening socket (how mod_fcgid and spawn-fcgi start a
/// FastCGI application), adopt it. `Ok(None)` means fd 0 is not a socket.
pub fn adopt_stdin_listener() -> anyhow::Result<Option<StdListener>> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let addr: SockaddrStorage = match getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)) {
        Ok(addr) => addr,
        Err(nix::errno::Errno::ENOTSOCK | nix::errno::Errno::EBADF) => return Ok(None),
        Err(e) => return Err(anyhow!("getsockname on fd 0: {e}")),
    };
    match getsockopt(&fd, sockopt::AcceptConn) {
        Ok(true) => {}
        Ok(false) => bail!("fd 0 is a socket but not a listening one"),
        Err(e) => return Err(anyhow!("getsockopt(SO_ACCEPTCONN) on fd 0: {e}")),
    }
    // A duplicate of fd 0 that we own, obtained without unsafe code.
    let owned: OwnedFd = fd.try_clone_to_owned().context("duplicating fd 0")?;
    match addr.family() {
        Some(AddressFamily::Unix) => Ok(Some(StdListener::Unix(owned.into(), None))),
        Some(AddressFamily::Inet | AddressFamily::Inet6) => {
            Ok(Some(StdListener::Tcp(owned.into())))
        }
        other => bail!("fd 0 is a listening socket of unsupported family {other:?}"),
    }
}

/// Binds `--listen`. For a Unix socket: a stale socket file (no one
/// accepting) is removed first; a live one or a non-socket file is an error.
pub fn bind(addr: &ListenAddr, perms: SocketPerms) -> anyhow::Result<StdListener> {
    match addr {
        ListenAddr::Tcp(a) => {
            let l = std::net::TcpListener::bind(a).with_context(|| format!("binding {a}"))?;
            Ok(StdListener::Tcp(l))
        }
        ListenAddr::Unix(path) => {
            remove_stale_socket(path)?;
            let l = std::os::unix::net::UnixListener::bind(path)
                .with_context(|| format!("binding unix:{}", path.display()))?;
            if let Some(mode) = perms.mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("chmod {mode:o} {}", path.display()))?;
            }
            if perms.uid.is_some() || perms.gid.is_some() {
                nix::unistd::chown(path, perms.uid, perms.gid)
                    .with_context(|| format!("chown {}", path.display()))?;
            }
            Ok(StdListener::Unix(l, Some(path.clone())))
        }
    }
}

fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!("{} is in use by another running process", path.display());
    }
    std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            ListenAddr::parse("127.0.0.1:9000").unwrap(),
            ListenAddr::Tcp("127.0.0.1:9000".into())
        );
        assert_eq!(
            ListenAddr::parse("unix:/run/x.sock").unwrap(),
            ListenAddr::Unix("/run/x.sock".into())
        );
        assert!(ListenAddr::parse("unix:").is_err());
        assert!(ListenAddr::parse("9000").is_err());
    }

    #[test]
    fn modes_and_owners() {
        assert_eq!(parse_mode("0660").unwrap(), 0o660);
        assert_eq!(parse_mode("666").unwrap(), 0o666);
        assert!(parse_mode("0986").is_err());
        assert!(parse_mode("77777").is_err());
        assert_eq!(
            parse_owner("0:0").unwrap(),
            (Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
        );
        assert_eq!(parse_owner("root").unwrap(), (Some(Uid::from_raw(0)), None));
        assert_eq!(parse_owner(":0").unwrap(), (None, Some(Gid::from_raw(0))));
        assert!(parse_owner("no-such-user-xyz").is_err());
        assert!(parse_owner(":").is_err());
    }

    #[test]
    fn stale_socket_is_replaced_live_one_refused() {
        let dir = std::env::temp_dir().join(format!("fcgi-chat-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(bind(&ListenAddr::Unix(path.clone()), SocketPerms::default()).is_err());
        drop(live); // the file stays behind: a stale socket
        let perms = SocketPerms {
            mode: Some(0o600),
            ..Default::default()
        };
        let l = bind(&ListenAddr::Unix(path.clone()), perms).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        drop(l);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        let e = bind(&ListenAddr::Unix(path.clone()), SocketPerms::default()).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
