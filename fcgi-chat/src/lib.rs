//! fcgi-chat: the FastCGI responder that replaces the classic `chat.php` in
//! front of meteord. It takes the chat form's POST (`user`, `message`),
//! validates it, "unicode-escapes" both fields, and publishes
//! `ADDMESSAGE chat <strong>USER HH:MM:SS</strong> MESSAGE` on meteord's
//! controller port, answering `{"ok":true,"id":N}` or an error status.
//!
//! Module map, from pure to I/O:
//! - [`escape`] — the escaping rules (pure; property-tested);
//! - [`form`] — method / content type / body / field validation (pure);
//! - [`line`] — the controller line and time stamp (pure);
//! - [`controller`] — async client for meteord's controller port (kept
//!   connection, no duplicate sends);
//! - [`handler`] — the one request handler and the JSON answers;
//! - [`stdin_cap`] — FastCGI record filter that bounds request bodies;
//! - [`fastcgi`] — listening sockets (mod_fcgid's fd 0, TCP, Unix) and
//!   tokio-fastcgi glue;
//! - [`devhttp`] — the stand-alone development HTTP server;
//! - [`cli`] — command line, environment fallbacks, settings.

pub mod cli;
pub mod controller;
pub mod devhttp;
pub mod escape;
pub mod fastcgi;
pub mod form;
pub mod handler;
pub mod line;
pub mod stdin_cap;
