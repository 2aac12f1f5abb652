//! Subscriber tokens for the chat page (issue 14): with `--token-secret`,
//! `GET chat.php?token=1[&hostid=H]` answers
//! `{"ok":true,"token":T,"channel":C,"exp":E}`, where T is an HS256 JWT
//! that lets the page read the chat channel from meteord (configured with
//! the same `SubscriberTokenSecret` and a `SubscriberTokenChannels` pattern
//! naming the channel) until E, seconds since the epoch. With a valid
//! hostid the token is bound to it (`sub`), so it is no use to another
//! subscriber.
//!
//! Minting is the whole job here: the format is the standard one, so any
//! JWT library (or a few lines of PHP) could do the same. Whoever can reach
//! the endpoint gets a token: a real deployment puts it behind the site's
//! own login (the web server's access rules in front of fcgi-chat).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::response::Response;

/// Longest hostid bound into a token; meteord's hostids are alphanumeric
/// and short (meteor.js makes 32 characters).
const MAX_HOSTID: usize = 64;

/// What mints the tokens: the secret, their lifetime and the channel.
#[derive(Clone)]
pub struct Minter {
    secret: Box<[u8]>,
    /// Seconds a token stays valid.
    pub ttl: u64,
    /// The channel each token covers (the chat's).
    pub channel: String,
}

/// The secret never appears in a debug dump of the settings.
impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("ttl", &self.ttl)
            .field("channel", &self.channel)
            .finish()
    }
}

impl Minter {
    pub fn new(secret: &str, ttl: u64, channel: &str) -> Minter {
        Minter {
            secret: secret.as_bytes().into(),
            ttl,
            channel: channel.to_owned(),
        }
    }

    /// The token for the channel, valid from `now` for `ttl` seconds, bound
    /// to `hostid` when given.
    pub fn mint(&self, hostid: Option<&str>, now: u64) -> String {
        let mut claims = serde_json::json!({
            "exp": now + self.ttl,
            "ch": [self.channel],
        });
        if let Some(hostid) = hostid {
            claims["sub"] = hostid.into();
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// The answer to `GET chat.php?<query>` asking for a token.
    pub fn answer(&self, query: &str, now: u64) -> Response {
        let hostid = query_value(query, "hostid");
        let valid = |h: &str| {
            !h.is_empty() && h.len() <= MAX_HOSTID && h.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        if hostid.as_deref().is_some_and(|h| !valid(h)) {
            return Response::error(400, "hostid must be 1 to 64 letters and digits");
        }
        let token = self.mint(hostid.as_deref(), now);
        Response::json(
            200,
            serde_json::json!({
                "ok": true,
                "token": token,
                "channel": self.channel,
                "exp": now + self.ttl,
            })
            .to_string(),
        )
    }
}

/// Whether a query string asks for a token (`token` among its names).
pub fn wants_token(query: &str) -> bool {
    query_value(query, "token").is_some()
}

/// The first value of `name` in a query string; hostids and the `token`
/// flag need no percent-decoding (anything encoded is refused as a
/// hostid anyway).
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_owned())
    })
}

/// Seconds since the epoch, for [`Minter::answer`].
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(segment: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn tokens_are_standard_hs256_jwts() {
        let minter = Minter::new("secret", 600, "private-chat");
        let token = minter.mint(Some("abc"), 1_800_000_000);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode(parts[0]),
            serde_json::json!({"alg": "HS256", "typ": "JWT"})
        );
        assert_eq!(
            decode(parts[1]),
            serde_json::json!({"exp": 1_800_000_600u64, "ch": ["private-chat"], "sub": "abc"})
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .expect("signed with the secret");
        let unbound = minter.mint(None, 1_800_000_000);
        assert!(
            decode(unbound.split('.').nth(1).unwrap())
                .get("sub")
                .is_none()
        );
    }

    #[test]
    fn the_answer_carries_token_channel_and_expiry() {
        let minter = Minter::new("secret", 60, "private-chat");
        let r = minter.answer("token=1&hostid=Host7", 1000);
        assert_eq!(r.status, 200);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["ok"], true);
        assert_eq!(body["channel"], "private-chat");
        assert_eq!(body["exp"], 1060);
        assert_eq!(body["token"], minter.mint(Some("Host7"), 1000));
        for bad in [
            "token=1&hostid=",
            "token=1&hostid=a%20b",
            "token&hostid=a-b",
        ] {
            assert_eq!(minter.answer(bad, 1000).status, 400, "{bad}");
        }
        assert!(wants_token("token=1") && wants_token("x=2&token") && !wants_token("tokens=1"));
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let text = format!("{:?}", Minter::new("hunter2hunter2", 60, "c"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
