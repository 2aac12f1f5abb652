//! meteord: a Meteor-compatible Comet (server push) daemon.
//!
//! # Layout
//!
//! Data flows in one direction: publishers ([`controller`], [`udp`]) →
//! [`broker`] → [`channel`] → a mode's framing ([`subscriber::framing`]) →
//! subscribers' sockets ([`subscriber::stream`]).
//!
//! - [`config`]: Meteor's command line and file format → validated [`config::Config`].
//! - [`ids`]: the one message-id sequence (the local broker's `IdSource`),
//!   persisted so it never goes back.
//! - [`channel`]: the registry of channels; each channel's history ring *is*
//!   the fan-out mechanism (subscribers keep a cursor into it); messages
//!   enter by publish (id from an `IdSource`) or append (id decided
//!   elsewhere), one path.
//! - [`broker`]: the publish seam: an async `Broker` in [`state::State`]
//!   that every publish passes through (controller, UDP); the local,
//!   single-process broker is the first.
//! - [`template`]: Meteor's template language (`~name~` placeholders),
//!   compiled once into segments.
//! - [`subscriber`]: the subscriber port: request grammar; modes, each with
//!   a framing (the transport seam: head, message rendering — once per mode,
//!   shared bytes —, ping, close, client input); the stream and its one
//!   writer path for backlog and live messages; what a stream asked for.
//! - [`controller`]: the controller port: line protocol, one `Command` enum.
//! - [`document`]: static files from `SubscriberDocumentRoot`.
//! - [`http`]: the one builder of the HTTP answers not made of templates
//!   (documents, the connection limit's 503).
//! - [`udp`]: UDP publish.
//! - [`stats`]: counters behind SHOWSTATS.
//! - [`connections`]: the table of open connections (listings, hostids,
//!   shutdown).
//! - [`clock`]: the one place the daemon reads the time (tokio's clock, so
//!   tests pause it) and the one timer behind pings, MaxTime and WriteTimeout.
//! - [`state`]: the shared state every task holds.
//! - [`server`]: accept loops, connection limit, housekeeping, shutdown and
//!   reload.
//! - [`wakeup`]: the one-bit wake-up a publish pokes for each subscriber.
//! - [`write_turn`]: whose turn it is to write to a stream's socket (the
//!   stream, or the clock for a ping).
//! - [`limits`]: ControllerAllow networks, refusals by limit (issue 14).
//! - [`metrics`]: the Prometheus `/metrics` listener.
//! - [`daemon`], [`log`]: process life (detach, pid file, privileges, logging).
//!
//! Rules other binaries of the workspace share (channel names, request-path
//! bytes, the `OK\t<id>` reply, the fd limit) are `meteor_proto`'s.

pub mod broker;
pub mod channel;
pub mod clock;
pub mod config;
pub mod connections;
pub mod controller;
pub mod daemon;
pub mod document;
pub mod http;
pub mod ids;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod persist;
pub mod server;
pub mod state;
pub mod stats;
pub mod subscriber;
pub mod template;
#[cfg(test)]
mod test_support;
pub mod udp;
pub mod wakeup;
pub mod write_turn;

/// What `~server~` and the `Server:` header say: the program's name and
/// nothing more, as the original sends it (its `$0`, `meteord`).
pub const SERVER_NAME: &str = "meteord";
