//! Subscriber tokens (issue 14): which channels need one
//! (`SubscriberTokenChannels`), and whether a request's token lets a
//! subscriber read a channel. Pure: no I/O, the clock is an argument.
//!
//! A token is a compact JWS (a JWT) signed with HS256 and the
//! `SubscriberTokenSecret`: `base64url(header).base64url(claims).base64url(mac)`,
//! unpadded. The header must say `"alg":"HS256"` (anything else, `none`
//! included, is refused before the signature is looked at) and carry no
//! `crit`. The claims are `exp` (required, seconds since the epoch; the
//! token is expired from that second on), `ch` (required, the channels it
//! covers; an entry ending in `*` covers every channel starting with what
//! precedes the star), `sub` (optional: the only hostid it is good for) and
//! `nbf` (optional, honoured as RFC 7519 says). Other claims are ignored.
//!
//! The signature is checked in constant time (`Mac::verify_slice`) before
//! the claims are parsed, so nothing an unsigned payload says is acted on.
//! Tokens are never logged: this module returns only a [`Refusal`], whose
//! one-line reason names the failed check and nothing of the token.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::query;

/// Longest token looked at. A real one (a few channels, a hostid) is a few
/// hundred bytes; past this it is refused unread rather than decoded.
pub const MAX_TOKEN: usize = 4096;

/// The cookie a page can set instead of putting the token in the URL.
pub const COOKIE: &str = "meteord_token";

/// The query parameter a page puts the token in (script tags, iframes and
/// EventSource cannot send headers).
pub const QUERY_PARAM: &str = "token";

/// Which channels need a token, and the secret their tokens are signed
/// with. The default (no patterns) checks nothing.
#[derive(Clone, Default)]
pub struct TokenRules {
    secret: Box<[u8]>,
    patterns: Vec<Box<str>>,
}

impl TokenRules {
    /// `patterns` are shell-style (`*`, `?`, `[a-z]`, `[!x]`), matched
    /// against the whole channel name.
    pub fn new(secret: &[u8], patterns: Vec<String>) -> TokenRules {
        TokenRules {
            secret: secret.into(),
            patterns: patterns.into_iter().map(String::into_boxed_str).collect(),
        }
    }

    /// Whether any channel needs a token at all.
    pub fn active(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// Whether reading `channel` needs a token.
    pub fn needs_token(&self, channel: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| glob(p.as_bytes(), channel.as_bytes()))
    }

    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| &**p)
    }
}

/// The secret never appears in a debug dump of the configuration.
impl fmt::Debug for TokenRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRules")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("patterns", &self.patterns)
            .finish()
    }
}

/// Why a request may not read a channel. The reason is the whole body of
/// the `403`, and the only hint a client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token in the query, an `Authorization: Bearer` header or the
    /// cookie.
    Missing,
    /// Not three base64url segments of a JSON header and JSON claims of the
    /// right types, or longer than [`MAX_TOKEN`].
    Malformed,
    /// The header names another algorithm than HS256 (`none` included) or
    /// asks for extensions (`crit`).
    Algorithm,
    /// The signature is not the secret's.
    Signature,
    Expired,
    /// Its `nbf` is still ahead.
    NotYetValid,
    /// Its `ch` does not cover the channel.
    Channel,
    /// Its `sub` names another hostid.
    Hostid,
}

impl Refusal {
    /// One line, no token content.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "token required",
            Refusal::Malformed => "token malformed",
            Refusal::Algorithm => "token algorithm refused",
            Refusal::Signature => "token signature invalid",
            Refusal::Expired => "token expired",
            Refusal::NotYetValid => "token not yet valid",
            Refusal::Channel => "token does not cover the channel",
            Refusal::Hostid => "token bound to another hostid",
        }
    }
}

/// The claims of a token whose signature, `exp` and `nbf` were found good.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub exp: f64,
    /// The `ch` entries as written (a trailing `*` = a prefix).
    pub channels: Vec<String>,
    pub sub: Option<String>,
}

impl Claims {
    pub fn covers(&self, channel: &str) -> bool {
        self.channels
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => channel.starts_with(prefix),
                None => entry == channel,
            })
    }

    /// A token without `sub` is good for any hostid.
    pub fn allows_hostid(&self, hostid: &str) -> bool {
        self.sub.as_deref().is_none_or(|sub| sub == hostid)
    }
}

/// Whether `token` lets the subscriber `hostid` read `channel` at `now`
/// (seconds since the epoch). A channel no pattern names needs nothing,
/// whatever the token. The WebSocket `subscribe` frames go through here as
/// the HTTP requests do.
pub fn authorize(
    rules: &TokenRules,
    token: Option<&str>,
    hostid: &str,
    channel: &str,
    now: u64,
) -> Result<(), Refusal> {
    authorize_all(rules, token, hostid, [channel], now)
}

/// [`authorize`] for every channel of one request: the token is verified
/// once, and the first channel it does not cover refuses the request.
pub fn authorize_all<'a>(
    rules: &TokenRules,
    token: Option<&str>,
    hostid: &str,
    channels: impl IntoIterator<Item = &'a str>,
    now: u64,
) -> Result<(), Refusal> {
    let mut claims: Option<Claims> = None;
    for channel in channels {
        if !rules.needs_token(channel) {
            continue;
        }
        let claims = match &claims {
            Some(claims) => claims,
            None => {
                let verified = verify(&rules.secret, token.ok_or(Refusal::Missing)?, now)?;
                if !verified.allows_hostid(hostid) {
                    return Err(Refusal::Hostid);
                }
                claims.insert(verified)
            }
        };
        if !claims.covers(channel) {
            return Err(Refusal::Channel);
        }
    }
    Ok(())
}

/// The token a request head carries: the `token` query parameter, else an
/// `Authorization: Bearer` header, else the `meteord_token` cookie.
pub fn from_head(head_text: &[u8]) -> Option<String> {
    query::query_param(head_text, QUERY_PARAM)
        .or_else(|| {
            let value = query::header(head_text, "authorization")?;
            let (scheme, rest) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim_start_matches(' ').to_owned())
        })
        .or_else(|| query::cookie(head_text, COOKIE))
        .filter(|token| !token.is_empty())
}

/// Check `token`'s form, algorithm, signature (keyed with `secret`) and
/// validity period at `now`; its claims when all are good.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<Claims, Refusal> {
    if token.len() > MAX_TOKEN {
        return Err(Refusal::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let fields = json_object(header)?;
    if fields.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(Refusal::Algorithm);
    }
    if fields.contains_key("crit") {
        return Err(Refusal::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refusal::Malformed)?;
    // An empty secret would make every token signed with the empty key
    // good; the configuration refuses it, and so does this.
    if secret.is_empty() {
        return Err(Refusal::Signature);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refusal::Signature)?;
    // What the signature covers: the two segments and the dot between.
    mac.update(&token.as_bytes()[..header.len() + 1 + payload.len()]);
    mac.verify_slice(&signature)
        .map_err(|_| Refusal::Signature)?;
    let claims = parse_claims(&json_object(payload)?)?;
    let now = now as f64;
    if now >= claims.0.exp {
        return Err(Refusal::Expired);
    }
    if claims.1.is_some_and(|nbf| now < nbf) {
        return Err(Refusal::NotYetValid);
    }
    Ok(claims.0)
}

fn json_object(segment: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Refusal::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::Malformed),
    }
}

/// The claims and the `nbf`, if any; a claim of the wrong type is
/// malformed rather than ignored, so a typo cannot widen a token.
fn parse_claims(map: &Map<String, Value>) -> Result<(Claims, Option<f64>), Refusal> {
    let exp = map
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(Refusal::Malformed)?;
    let nbf = match map.get("nbf") {
        None => None,
        Some(v) => Some(v.as_f64().ok_or(Refusal::Malformed)?),
    };
    let channels = map
        .get("ch")
        .and_then(Value::as_array)
        .ok_or(Refusal::Malformed)?
        .iter()
        .map(|c| c.as_str().map(str::to_owned).ok_or(Refusal::Malformed))
        .collect::<Result<Vec<_>, _>>()?;
    let sub = match map.get("sub") {
        None => None,
        Some(v) => Some(v.as_str().ok_or(Refusal::Malformed)?.to_owned()),
    };
    Ok((Claims { exp, channels, sub }, nbf))
}

/// Shell-style match of the whole `name`: `*` any run, `?` one byte,
/// `[...]` one byte of a set (`a-z` ranges, `!` or `^` first negates); a
/// `[` without its `]` is a literal. Channel names are ASCII, so bytes are
/// characters.
pub fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it is retried from.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class(&pattern[p..], name[n]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (name[n] == b'[').then_some(1),
            },
            Some(&b) => (b == name[n]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                p += len;
                n += 1;
            }
            (None, Some((star_p, star_n))) => {
                star = Some((star_p, star_n + 1));
                p = star_p + 1;
                n = star_n + 1;
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// A `[...]` class at the start of `pattern`: whether `b` is in it and the
/// class's length; `None` when it has no closing `]`.
fn class(pattern: &[u8], b: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let c = *pattern.get(i)?;
        if c == b']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
            found |= (c..=pattern[i + 2]).contains(&b);
            i += 3;
        } else {
            found |= c == b;
            i += 1;
        }
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
