//! Publisher protection and the named limits (issue 14): the address
//! networks `ControllerAllow` admits, the once-a-minute log of refused
//! peers, and the counter of refusals by limit (for `/metrics`). Pure
//! bookkeeping: the accept loops, the controller and the subscriber decide
//! when to ask (the per-address count behind `MaxConnectionsPerIP` is the
//! connection table's, [`crate::connections`]).
//!
//! The CIDR test is written here rather than taken from a crate: it is a
//! prefix comparison of two integers, and the one crate that would do it
//! (ipnet) brings parsing and iteration we do not need.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One `address/prefix` network (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` lies in this network. An IPv4 peer that reaches an
    /// IPv6 socket as `::ffff:a.b.c.d` is compared as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of `a` and `b` (numbers `width` bits wide) agree.
fn prefix_eq(a: u128, b: u128, prefix: u8, width: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (a >> shift) == (b >> shift)
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = IpAddr::from_str(addr).map_err(|_| format!("{s:?} is not an address"))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= width)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {width}"))?,
        };
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A white-space separated list of networks; empty admits no one.
pub fn parse_networks(text: &str) -> Result<Vec<Network>, String> {
    text.split_whitespace().map(Network::from_str).collect()
}

/// Whether any of `networks` holds `ip`.
pub fn allowed(networks: &[Network], ip: IpAddr) -> bool {
    networks.iter().any(|n| n.contains(ip))
}

/// A limit that refused or cut off a client, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ControllerAllow,
    MaxConnections,
    MaxConnectionsPerIp,
    HeaderBytes,
    HeaderTimeout,
    ChannelsPerRequest,
    ChannelNameLength,
    MessageSize,
    ControllerLine,
    ControllerIdle,
    WriteTimeout,
}

impl Limit {
    /// Every limit, in the order `/metrics` lists them.
    pub const ALL: [Limit; 11] = [
        Limit::ControllerAllow,
        Limit::MaxConnections,
        Limit::MaxConnectionsPerIp,
        Limit::HeaderBytes,
        Limit::HeaderTimeout,
        Limit::ChannelsPerRequest,
        Limit::ChannelNameLength,
        Limit::MessageSize,
        Limit::ControllerLine,
        Limit::ControllerIdle,
        Limit::WriteTimeout,
    ];

    /// The `limit=` label: the parameter's name in snake case.
    pub fn label(self) -> &'static str {
        match self {
            Limit::ControllerAllow => "controller_allow",
            Limit::MaxConnections => "max_connections",
            Limit::MaxConnectionsPerIp => "max_connections_per_ip",
            Limit::HeaderBytes => "max_header_bytes",
            Limit::HeaderTimeout => "header_timeout",
            Limit::ChannelsPerRequest => "max_channels_per_request",
            Limit::ChannelNameLength => "max_channel_name_length",
            Limit::MessageSize => "max_message_size",
            Limit::ControllerLine => "controller_max_line",
            Limit::ControllerIdle => "controller_idle_timeout",
            Limit::WriteTimeout => "write_timeout",
        }
    }
}

/// How long a refused address stays quiet in the log.
const LOG_QUIET_SECS: u64 = 60;
/// Most addresses remembered for that: a scan from many addresses must not
/// grow memory; past it the table is emptied (a few extra log lines).
const MAX_LOGGED_PEERS: usize = 10_000;

/// Counters and per-address state of the limits, one per daemon.
#[derive(Debug, Default)]
pub struct Guard {
    refusals: [AtomicU64; Limit::ALL.len()],
    /// When each refused controller/UDP peer was last logged.
    logged: Mutex<HashMap<IpAddr, u64>>,
}

impl Guard {
    pub fn new() -> Guard {
        Guard::default()
    }

    /// Count one refusal or cut-off by `limit`.
    pub fn refused(&self, limit: Limit) {
        self.refusals[limit as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refusals(&self, limit: Limit) -> u64 {
        self.refusals[limit as usize].load(Ordering::Relaxed)
    }

    /// Whether a refused peer should be logged now (once per address per
    /// minute); `now` in seconds.
    pub fn should_log(&self, ip: IpAddr, now: u64) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() >= MAX_LOGGED_PEERS {
            logged.retain(|_, at| *at + LOG_QUIET_SECS > now);
            if logged.len() >= MAX_LOGGED_PEERS {
                logged.clear();
            }
        }
        match logged.get(&ip) {
            Some(&at) if at + LOG_QUIET_SECS > now => false,
            _ => {
                logged.insert(ip, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_hold_their_prefix() {
        let nets = parse_networks("127.0.0.0/8 ::1 10.1.0.0/16").unwrap();
        assert!(allowed(&nets, ip("127.9.9.9")));
        assert!(allowed(&nets, ip("::1")));
        assert!(allowed(&nets, ip("10.1.200.3")));
        assert!(allowed(&nets, ip("::ffff:127.0.0.1")));
        assert!(!allowed(&nets, ip("10.2.0.1")));
        assert!(!allowed(&nets, ip("::2")));
        assert!(!allowed(&nets, ip("128.0.0.1")));
        assert!(allowed(
            &parse_networks("0.0.0.0/0").unwrap(),
            ip("8.8.8.8")
        ));
        assert!(!allowed(&parse_networks("").unwrap(), ip("127.0.0.1")));
        assert!(allowed(&parse_networks("::/0").unwrap(), ip("2001:db8::1")));
    }

    #[test]
    fn bad_networks_are_named() {
        assert_eq!(
            parse_networks("127.0.0.0/33").unwrap_err(),
            "\"127.0.0.0/33\": the prefix length must be 0 to 32"
        );
        assert_eq!(
            parse_networks("10.0.0.0/8 nope").unwrap_err(),
            "\"nope\" is not an address"
        );
        assert!(parse_networks("::1/129").is_err());
        assert!(parse_networks("1.2.3.4/-1").is_err());
    }

    #[test]
    fn a_refused_peer_is_logged_once_a_minute() {
        let guard = Guard::new();
        assert!(guard.should_log(ip("10.0.0.1"), 100));
        assert!(!guard.should_log(ip("10.0.0.1"), 159));
        assert!(guard.should_log(ip("10.0.0.2"), 159));
        assert!(guard.should_log(ip("10.0.0.1"), 160));
    }
}
