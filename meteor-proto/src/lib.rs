//! meteor-proto: the rules of the Meteor protocol that more than one binary
//! of this workspace must apply identically, kept in one place so meteord,
//! fcgi-chat and meteor-bench cannot drift apart. Pure functions, except
//! [`fd_limit`], which changes a process limit (every one of the three
//! holds one descriptor per connection).
//!
//! Module map:
//! - [`channel`] — which channel names a subscriber can ask for
//!   (`[A-Za-z0-9_\-%]+`), so publishers refuse names no one can receive;
//! - [`reply`] — the controller's answer to `ADDMESSAGE`, `OK\t<id>\r\n`:
//!   written by the daemon (and the bench's bare server), read by clients;
//! - [`path`] — the bytes a static-file request path may contain;
//! - [`fd_limit`] — raising `RLIMIT_NOFILE` as far as the kernel allows.

pub mod channel;
pub mod fd_limit;
pub mod path;
pub mod reply;
