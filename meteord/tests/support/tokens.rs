//! Subscriber tokens for the process tests (issue 14): HS256 JWTs minted
//! with the crates directly (not with meteord's code), and the daemon
//! arguments that turn the checks on.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{BUILTIN, Daemon, LOOPBACK_ANY_PORT, scratch};

/// The secret of [`ARGS`].
pub const SECRET: &str = "process-test secret, 32 bytes ok";

/// `private-*` and `staff` need a token signed with [`SECRET`].
pub const ARGS: &[&str] = &[
    "-SubscriberTokenSecret",
    SECRET,
    "-SubscriberTokenChannels",
    "private-* staff",
];

/// A token of `claims` (JSON text) under `header` (JSON text), signed with
/// `secret`.
pub fn mint_with(secret: &[u8], header: &str, claims: &str) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signed}.{signature}")
}

/// A standard HS256 token of `claims`, signed with [`SECRET`].
pub fn mint(claims: &str) -> String {
    mint_with(SECRET.as_bytes(), r#"{"alg":"HS256","typ":"JWT"}"#, claims)
}

/// Claims for `channels` (JSON array text) valid for `seconds` from now.
pub fn claims(channels: &str, seconds: i64) -> String {
    let exp = super::controller::now() as i64 + seconds;
    format!(r#"{{"exp":{exp},"ch":{channels}}}"#)
}

/// The 403 meteord answers a refused stream request with: the document
/// header set, a plain-text body of one line.
pub fn forbidden(reason: &str) -> String {
    let body = format!("{reason}\n");
    format!(
        "HTTP/1.1 403 Forbidden\r\n\
         Server: meteord\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache, no-store, must-revalidate\r\n\
         Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
         Content-length: {}\r\n\
         \r\n\
         {body}",
        body.len()
    )
}

/// A daemon with `extra` arguments that logs at debug level (what an
/// operator debugging it sees), so a test can look for tokens in it.
pub fn start_logging_debug(name: &str, extra: &[&str]) -> Daemon {
    let dir = scratch(name);
    let mut args: Vec<String> = ["-Debug", "1"]
        .iter()
        .chain(BUILTIN)
        .chain(LOOPBACK_ANY_PORT)
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    args.push("-StateFile".into());
    args.push(dir.join("ids.state").display().to_string());
    let mut child = std::process::Command::new(super::bin())
        .args(&args)
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn meteord");
    let stderr = child.stderr.take().expect("stderr");
    Daemon::attach(child, Box::new(stderr), dir, args)
}
