//! Subscriber tokens (meteord/src/subscriber/token.rs) and the head
//! readers they come through (subscriber/query.rs).
//!
//! Input: the first byte picks what the rest is; parts are separated by a
//! NUL byte.
//! - 0: a token as a client sends it: `verify` decides without a panic,
//!   and accepts it only if its signature is the secret's HMAC of its
//!   first two segments (computed here with the crates directly).
//! - 1: `header NUL claims` (JSON text): the target signs them with the
//!   secret, so the signature is good, and `verify`'s answer must be the
//!   one this file's model of the rules gives (alg exactly HS256, no
//!   `crit`, `exp` a number after now, `nbf` absent or a number not after
//!   now, `ch` an array of strings, `sub` absent or a string); signed with
//!   another secret, it is never accepted.
//! - 2: `pattern NUL name`: `glob` equals a table-driven reading of the
//!   shell-pattern rules.
//! - 3: a request head: `from_head`, `query_param`, `header` and `cookie`
//!   decide without a panic, and a token found is never empty.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use meteord::subscriber::query::{cookie, header, query_param};
use meteord::subscriber::token::{Refusal, from_head, glob, verify};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &[u8] = b"fuzzing secret, 32 bytes long..!";
const NOW: u64 = 1_800_000_000;

fn mac(secret: &[u8], signed: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signed);
    mac.finalize().into_bytes().to_vec()
}

fn mint(secret: &[u8], header: &[u8], claims: &[u8]) -> String {
    let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// The rules, read from the JSON directly.
fn model(header: &[u8], claims: &[u8]) -> Result<(), Refusal> {
    let Ok(Value::Object(h)) = serde_json::from_slice::<Value>(header) else {
        return Err(Refusal::Malformed);
    };
    if h.get("alg") != Some(&Value::String("HS256".into())) || h.contains_key("crit") {
        return Err(Refusal::Algorithm);
    }
    let Ok(Value::Object(c)) = serde_json::from_slice::<Value>(claims) else {
        return Err(Refusal::Malformed);
    };
    let number = |v: &Value| v.as_f64();
    let exp = c.get("exp").and_then(number).ok_or(Refusal::Malformed)?;
    let nbf = match c.get("nbf") {
        None => None,
        Some(v) => Some(number(v).ok_or(Refusal::Malformed)?),
    };
    match c.get("ch") {
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {}
        _ => return Err(Refusal::Malformed),
    }
    if c.get("sub").is_some_and(|s| !s.is_string()) {
        return Err(Refusal::Malformed);
    }
    if NOW as f64 >= exp {
        return Err(Refusal::Expired);
    }
    if nbf.is_some_and(|n| (NOW as f64) < n) {
        return Err(Refusal::NotYetValid);
    }
    Ok(())
}

/// Shell patterns, read as a table: `matches[i][j]` = the pattern from
/// its `i`th byte matches the name from its `j`th (no backtracking, so an
/// independent reading of the iterative matcher).
fn reference_glob(p: &[u8], n: &[u8]) -> bool {
    let mut matches = vec![vec![false; n.len() + 1]; p.len() + 2];
    for i in (0..=p.len()).rev() {
        for j in (0..=n.len()).rev() {
            matches[i][j] = match p.get(i) {
                None => j == n.len(),
                Some(b'*') => matches[i + 1][j] || (j < n.len() && matches[i][j + 1]),
                Some(b'?') => j < n.len() && matches[i + 1][j + 1],
                Some(b'[') => match reference_class(&p[i..]) {
                    Some((set, len)) => j < n.len() && set(n[j]) && matches[i + len][j + 1],
                    None => n.get(j) == Some(&b'[') && matches[i + 1][j + 1],
                },
                Some(&b) => n.get(j) == Some(&b) && matches[i + 1][j + 1],
            };
        }
    }
    matches[0][0]
}

type Set = Box<dyn Fn(u8) -> bool>;

fn reference_class(p: &[u8]) -> Option<(Set, usize)> {
    let negate = matches!(p.get(1), Some(b'!' | b'^'));
    let body_start = if negate { 2 } else { 1 };
    // The first byte of the body may be `]` itself.
    let close = p.get(body_start + 1..)?.iter().position(|&b| b == b']')? + body_start + 1;
    let body = p.get(body_start..close)?.to_vec();
    let set = move |b: u8| {
        let mut i = 0;
        let mut found = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == b'-' {
                found |= (body[i]..=body[i + 2]).contains(&b);
                i += 3;
            } else {
                found |= body[i] == b;
                i += 1;
            }
        }
        found != negate
    };
    Some((Box::new(set), close + 1))
}

fuzz_target!(|data: &[u8]| {
    let Some((&select, rest)) = data.split_first() else {
        return;
    };
    let (first, second) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (rest, &b""[..]),
    };
    match select % 4 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            if verify(SECRET, &token, NOW).is_ok() {
                let (signed, signature) = token.rsplit_once('.').unwrap();
                assert_eq!(URL_SAFE_NO_PAD.decode(signature).unwrap(), mac(SECRET, signed.as_bytes()));
            }
        }
        1 => {
            let token = mint(SECRET, first, second);
            let got = verify(SECRET, &token, NOW).map(|_| ());
            let expected = if token.len() > meteord::subscriber::token::MAX_TOKEN {
                Err(Refusal::Malformed)
            } else {
                model(first, second)
            };
            assert_eq!(got, expected, "{token}");
            let forged = mint(b"another secret, also 32 bytes!!!", first, second);
            assert!(verify(SECRET, &forged, NOW).is_err());
        }
        2 => {
            if first.len() <= 256 && second.len() <= 256 {
                assert_eq!(glob(first, second), reference_glob(first, second), "{first:?} {second:?}");
            }
        }
        _ => {
            if let Some(token) = from_head(rest) {
                assert!(!token.is_empty());
            }
            let _ = query_param(rest, "lastEventId");
            let _ = header(rest, "authorization");
            let _ = cookie(rest, "meteord_token");
        }
    }
});
