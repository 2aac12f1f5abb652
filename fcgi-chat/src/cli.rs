//! Command line (clap derive) with the environment fallbacks mod_fcgid's
//! `FcgidInitialEnv` relies on, and its validation into [`Settings`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use jiff::tz::TimeZone;

use crate::form::Limits;
use crate::handler::ChatConfig;
use crate::line::validate_channel;
use crate::listen::{ListenAddr, SocketPerms, parse_mode, parse_owner};
use crate::token::Minter;

/// Upper bound for `--timeout-ms`: a web client waiting longer than a
/// minute for a chat line has given up anyway.
const MAX_TIMEOUT_MS: u64 = 60_000;
/// Upper bound for the field limits, so the body cap stays around 1 MiB.
const MAX_FIELD_LIMIT: usize = 80_000;
/// Upper bound for `--token-ttl`: a day; a page that stays open longer
/// asks for a new token.
const MAX_TOKEN_TTL: u64 = 86_400;

/// FastCGI chat responder for meteord (replaces chat.php).
///
/// Without --listen or --http, fd 0 must be a listening socket (how Apache
/// mod_fcgid and spawn-fcgi start FastCGI applications).
#[derive(Debug, Parser)]
#[command(name = "fcgi-chat", version, about, long_about = None)]
pub struct Cli {
    /// Stand-alone FastCGI server on HOST:PORT or unix:/path.sock.
    #[arg(long, value_name = "ADDR", conflicts_with = "http")]
    pub listen: Option<String>,
    /// Octal mode for the Unix socket file, e.g. 0660.
    #[arg(long, value_name = "MODE")]
    pub socket_mode: Option<String>,
    /// Owner of the Unix socket file: USER, USER:GROUP or :GROUP.
    #[arg(long, value_name = "OWNER")]
    pub socket_owner: Option<String>,
    /// Development HTTP server on HOST:PORT (serves --chat-root and POST /chat.php).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Directory served by --http.
    #[arg(long, value_name = "DIR", default_value = "chat")]
    pub chat_root: PathBuf,
    /// Base URL of meteord written into /config.js by --http (default: null,
    /// the page then uses //data.<its host>).
    #[arg(long, value_name = "URL")]
    pub push_url: Option<String>,
    /// meteord controller address.
    #[arg(
        long,
        env = "METEOR_CONTROLLER",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:4671"
    )]
    pub controller: String,
    /// Channel the messages are published to.
    #[arg(long, env = "CHAT_CHANNEL", default_value = "chat")]
    pub channel: String,
    /// Time zone for the HH:MM:SS stamp, e.g. Europe/Berlin (default: the
    /// system's local zone).
    #[arg(long, env = "CHAT_TZ", value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Longest user name, in characters.
    #[arg(long, default_value_t = 64)]
    pub max_user: usize,
    /// Longest message, in characters.
    #[arg(long, default_value_t = 2000)]
    pub max_message: usize,
    /// Mint subscriber tokens for the chat channel with this HS256 secret
    /// (meteord's SubscriberTokenSecret): `GET chat.php?token=1&hostid=H`
    /// answers `{"ok":true,"token":…,"channel":…,"exp":…}`. Prefer the
    /// environment variable: arguments are visible to every local user.
    #[arg(
        long,
        env = "CHAT_TOKEN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub token_secret: Option<String>,
    /// Seconds a minted token stays valid.
    #[arg(
        long,
        env = "CHAT_TOKEN_TTL",
        value_name = "SECONDS",
        default_value_t = 3600
    )]
    pub token_ttl: u64,
    /// Time allowed for one publish (connect + send + answer), milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
}

/// How the process receives requests.
#[derive(Debug)]
pub enum Mode {
    /// FastCGI on fd 0 (mod_fcgid).
    Inherited,
    /// FastCGI on our own socket.
    Listen(ListenAddr, SocketPerms),
    /// Development HTTP server.
    Http {
        /// Address to bind.
        addr: String,
        /// Files to serve.
        root: PathBuf,
        /// pushBase for config.js.
        push_url: Option<String>,
    },
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    /// Front end.
    pub mode: Mode,
    /// Handler settings.
    pub chat: ChatConfig,
    /// Controller address.
    pub controller: String,
    /// Publish timeout.
    pub timeout: Duration,
}

impl Cli {
    /// Checks every value and resolves names (zone, socket owner).
    pub fn settings(self) -> anyhow::Result<Settings> {
        validate_channel(&self.channel).map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
        let time_zone = match &self.timezone {
            Some(name) if !name.is_empty() => {
                TimeZone::get(name).with_context(|| format!("--timezone {name:?}"))?
            }
            _ => TimeZone::system(),
        };
        for (flag, value) in [
            ("--max-user", self.max_user),
            ("--max-message", self.max_message),
        ] {
            if value == 0 || value > MAX_FIELD_LIMIT {
                bail!("{flag} must be between 1 and {MAX_FIELD_LIMIT}, got {value}");
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            bail!(
                "--timeout-ms must be between 1 and {MAX_TIMEOUT_MS}, got {}",
                self.timeout_ms
            );
        }
        if self.token_ttl == 0 || self.token_ttl > MAX_TOKEN_TTL {
            bail!(
                "--token-ttl must be between 1 and {MAX_TOKEN_TTL}, got {}",
                self.token_ttl
            );
        }
        let tokens = match self.token_secret.as_deref() {
            None | Some("") => None,
            Some(secret) => Some(Minter::new(secret, self.token_ttl, &self.channel)),
        };
        if self.controller.is_empty() || !self.controller.contains(':') {
            bail!("--controller {:?}: expected HOST:PORT", self.controller);
        }
        let socket_opts = self.socket_mode.is_some() || self.socket_owner.is_some();
        let mode = match (self.listen, self.http) {
            (Some(listen), None) => {
                let addr = ListenAddr::parse(&listen)?;
                if socket_opts && !matches!(addr, ListenAddr::Unix(_)) {
                    bail!("--socket-mode/--socket-owner only apply to --listen unix:/path");
                }
                let mut perms = SocketPerms::default();
                if let Some(m) = &self.socket_mode {
                    perms.mode = Some(parse_mode(m)?);
                }
                if let Some(o) = &self.socket_owner {
                    (perms.uid, perms.gid) = parse_owner(o)?;
                }
                Mode::Listen(addr, perms)
            }
            (None, Some(addr)) => {
                if socket_opts {
                    bail!("--socket-mode/--socket-owner only apply to --listen unix:/path");
                }
                Mode::Http {
                    addr,
                    root: self.chat_root,
                    push_url: self.push_url,
                }
            }
            (None, None) => {
                if socket_opts {
                    bail!("--socket-mode/--socket-owner only apply to --listen unix:/path");
                }
                Mode::Inherited
            }
            (Some(_), Some(_)) => bail!("--listen and --http cannot be combined"),
        };
        Ok(Settings {
            mode,
            chat: ChatConfig {
                channel: self.channel,
                time_zone,
                limits: Limits {
                    max_user_chars: self.max_user,
                    max_message_chars: self.max_message,
                },
                tokens,
            },
            controller: self.controller,
            timeout: Duration::from_millis(self.timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Settings> {
        let mut argv = vec!["fcgi-chat"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.settings()
    }

    #[test]
    fn defaults_mean_fd0_mode() {
        let s = parse(&[]).unwrap();
        assert!(matches!(s.mode, Mode::Inherited));
        assert_eq!(s.chat.channel, "chat");
        assert_eq!(s.chat.limits, Limits::default());
        assert_eq!(s.timeout, Duration::from_millis(3000));
    }

    #[test]
    fn listen_and_http() {
        let s = parse(&["--listen", "unix:/tmp/x.sock", "--socket-mode", "0660"]).unwrap();
        assert!(matches!(
            s.mode,
            Mode::Listen(
                ListenAddr::Unix(_),
                SocketPerms {
                    mode: Some(0o660),
                    ..
                }
            )
        ));
        let s = parse(&["--http", "127.0.0.1:0", "--push-url", "http://h:1"]).unwrap();
        assert!(matches!(
            s.mode,
            Mode::Http {
                push_url: Some(_),
                ..
            }
        ));
        assert!(parse(&["--listen", "127.0.0.1:1", "--http", "127.0.0.1:2"]).is_err());
        assert!(parse(&["--listen", "127.0.0.1:1", "--socket-mode", "0660"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--channel", "a b"]).is_err());
        assert!(parse(&["--timezone", "Mars/Olympus"]).is_err());
        assert!(parse(&["--max-user", "0"]).is_err());
        assert!(parse(&["--timeout-ms", "0"]).is_err());
        assert!(parse(&["--controller", "nocolon"]).is_err());
        assert!(parse(&["--timezone", "Europe/Berlin"]).is_ok());
        assert!(parse(&["--token-ttl", "0"]).is_err());
        assert!(parse(&["--token-ttl", "86401"]).is_err());
    }

    #[test]
    fn tokens_are_off_without_a_secret() {
        assert!(parse(&[]).unwrap().chat.tokens.is_none());
        assert!(
            parse(&["--token-secret", ""])
                .unwrap()
                .chat
                .tokens
                .is_none()
        );
        let s = parse(&[
            "--token-secret",
            "k",
            "--token-ttl",
            "60",
            "--channel",
            "private-x",
        ])
        .unwrap();
        let minter = s.chat.tokens.expect("on");
        assert_eq!((minter.ttl, minter.channel.as_str()), (60, "private-x"));
    }
}
