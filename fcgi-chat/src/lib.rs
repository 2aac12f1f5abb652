//! fcgi-chat: the FastCGI responder that replaces the classic `chat.php` in
//! front of meteord. It takes the chat form's POST (`user`, `message`),
//! validates it, "unicode-escapes" both fields, and publishes
//! `ADDMESSAGE chat <strong>USER HH:MM:SS</strong> MESSAGE` on meteord's
//! controller port, answering `{"ok":true,"id":N}` or an error status.
//!
//! Module map, from pure to I/O:
//! - [`escape`] — the escaping rules (pure; property-tested);
//! - [`form`] — method / content type / body / field validation (pure),
//!   with the urlencoded and multipart decoders beneath it;
//! - [`line`](mod@line) — the controller line and time stamp (pure);
//! - [`response`] — the answer's status, JSON body and headers (pure);
//! - [`controller`] — async client for meteord's controller port (kept
//!   connection, no duplicate sends);
//! - [`handler`] — the one request handler, and requests in flight;
//! - [`stdin_cap`] — FastCGI record filter that bounds request bodies;
//! - [`listen`] — `--listen` values and the listening socket (mod_fcgid's
//!   fd 0, TCP, Unix), before the runtime exists;
//! - [`fastcgi`] — tokio-fastcgi glue: accept loop, connections, requests;
//! - [`devhttp`] — the stand-alone development HTTP server;
//! - [`cli`] — command line, environment fallbacks, settings;
//! - [`token`] — subscriber tokens for the page (`--token-secret`).
//!
//! The protocol rules meteord states (channel names, the `OK\t<id>` reply,
//! request-path bytes) come from the shared `meteor-proto` crate.

pub mod cli;
pub mod controller;
pub mod devhttp;
pub mod escape;
pub mod fastcgi;
pub mod form;
pub mod handler;
pub mod line;
pub mod listen;
pub mod response;
pub mod stdin_cap;
pub mod token;
