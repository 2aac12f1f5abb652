//! What a WebSocket client's text messages ask for (issue 12's contract):
//!
//! - `{"type":"subscribe","channel":"c"}`: join `c`, live messages only;
//!   with `"since":<id>` everything after that id first (exclusive, as an
//!   EventSource resume), or with `"backtrack":<n>` the last n stored;
//! - `{"type":"unsubscribe","channel":"c"}`: leave `c`.
//!
//! Anything else is answered `{"type":"error","reason":"..."}`. Parsed with
//! serde_json: the text comes from the network, and a hand-written JSON
//! reader (escapes, surrogates, number forms) is where bugs hide; this one
//! is the ecosystem's standard, fuzzed, and already a workspace dependency.

use serde::Deserialize;

use crate::channel::Backlog;
use meteor_proto::channel::valid_channel_name;

use super::super::event::push_string;

/// A well-formed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Subscribe {
        channel: String,
        backlog: Backlog,
        /// The optional `"token"` field, for the subscribe rule.
        token: Option<String>,
    },
    Unsubscribe {
        channel: String,
    },
}

/// The fields any request may have; unknown fields are ignored, so a
/// newer client's additions do not break an older daemon.
#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "type")]
    kind: String,
    channel: Option<String>,
    since: Option<u64>,
    backtrack: Option<u64>,
    token: Option<String>,
}

/// Read one text message; `Err` is the reason for the error reply.
pub fn parse(text: &str) -> Result<Request, &'static str> {
    let fields: Fields = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            "not a request object"
        } else {
            "not JSON"
        }
    })?;
    let channel = || -> Result<String, &'static str> {
        let channel = fields.channel.clone().ok_or("no \"channel\"")?;
        if valid_channel_name(channel.as_bytes()) {
            Ok(channel)
        } else {
            Err("invalid channel name")
        }
    };
    match fields.kind.as_str() {
        "subscribe" => {
            let backlog = match (fields.since, fields.backtrack) {
                (Some(_), Some(_)) => return Err("\"since\" and \"backtrack\" exclude each other"),
                (Some(id), None) => Backlog::After(id),
                (None, Some(0)) => Backlog::All,
                (None, Some(n)) => Backlog::Last(n),
                (None, None) => Backlog::None,
            };
            Ok(Request::Subscribe {
                channel: channel()?,
                backlog,
                token: fields.token.clone(),
            })
        }
        "unsubscribe" => Ok(Request::Unsubscribe {
            channel: channel()?,
        }),
        _ => Err("unknown \"type\""),
    }
}

/// Append the error reply's JSON object.
pub fn push_error(out: &mut Vec<u8>, reason: &str) {
    out.extend_from_slice(b"{\"type\":\"error\",\"reason\":");
    push_string(out, reason.as_bytes());
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(channel: &str, backlog: Backlog) -> Request {
        Request::Subscribe {
            channel: channel.into(),
            backlog,
            token: None,
        }
    }

    #[test]
    fn the_contracts_requests() {
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"chat"}"#),
            Ok(subscribe("chat", Backlog::None))
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"chat","since":17}"#),
            Ok(subscribe("chat", Backlog::After(17)))
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"chat","backtrack":5}"#),
            Ok(subscribe("chat", Backlog::Last(5)))
        );
        assert_eq!(
            parse(r#"{ "channel" : "c\u0068at", "type": "subscribe", "extra": [1] }"#),
            Ok(subscribe("chat", Backlog::None)),
            "any JSON spelling; unknown fields ignored"
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"c","token":"t1"}"#),
            Ok(Request::Subscribe {
                channel: "c".into(),
                backlog: Backlog::None,
                token: Some("t1".into())
            })
        );
        assert_eq!(
            parse(r#"{"type":"unsubscribe","channel":"chat"}"#),
            Ok(Request::Unsubscribe {
                channel: "chat".into()
            })
        );
    }

    #[test]
    fn everything_else_has_a_reason() {
        for (text, reason) in [
            ("hello", "not JSON"),
            ("{\"type\":\"subscribe\"", "not JSON"),
            ("[1,2]", "not a request object"),
            ("{\"channel\":\"c\"}", "not a request object"),
            (
                "{\"type\":\"publish\",\"channel\":\"c\"}",
                "unknown \"type\"",
            ),
            ("{\"type\":\"subscribe\"}", "no \"channel\""),
            (
                "{\"type\":\"subscribe\",\"channel\":\"a b\"}",
                "invalid channel name",
            ),
            (
                "{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":-1}",
                "not a request object",
            ),
            (
                "{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":1,\"backtrack\":2}",
                "\"since\" and \"backtrack\" exclude each other",
            ),
        ] {
            assert_eq!(parse(text), Err(reason), "{text}");
        }
    }

    #[test]
    fn the_error_reply() {
        let mut out = Vec::new();
        push_error(&mut out, "unknown \"type\"");
        assert_eq!(out, br#"{"type":"error","reason":"unknown \"type\""}"#);
    }
}
