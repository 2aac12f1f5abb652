//! Meteor's output templates, compiled once at configuration load.
//!
//! A template is text with `~name~` placeholders; `~~` is a literal `~`,
//! unknown placeholders expand to nothing, and expansion is one pass, so a
//! `~id~` that arrives inside message text stays literal. Compiling splits the
//! text into literal and placeholder segments so rendering is a walk over a
//! short vector with no searching.
//!
//! This is only the template language; which template a stream sends when
//! is the classic framing's business
//! ([`crate::subscriber::framing`]).

/// A value a template can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Status,
    Server,
    ServerTime,
    ChannelInfo,
    Id,
    Channel,
    Text,
    Timestamp,
    Name,
    LastMsgId,
    SubscriberCount,
    MessageCount,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "status" => Field::Status,
            "server" => Field::Server,
            "servertime" => Field::ServerTime,
            "channelinfo" => Field::ChannelInfo,
            "id" => Field::Id,
            "channel" => Field::Channel,
            "text" => Field::Text,
            "timestamp" => Field::Timestamp,
            "name" => Field::Name,
            "lastMsgID" => Field::LastMsgId,
            "subscriberCount" => Field::SubscriberCount,
            "messageCount" => Field::MessageCount,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    Field(Field),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Compile `source`. Never fails: every text is a valid template.
    pub fn compile(source: &str) -> Template {
        let mut segments = Vec::new();
        let mut literal = Vec::new();
        let mut rest = source.as_bytes();
        while let Some(open) = rest.iter().position(|&b| b == b'~') {
            literal.extend_from_slice(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.iter().position(|&b| b == b'~') else {
                // A lone `~` with no partner is plain text.
                literal.extend_from_slice(&rest[open..]);
                rest = &[];
                break;
            };
            let name = &after[..close];
            if name.is_empty() {
                literal.push(b'~');
            } else if let Some(field) = std::str::from_utf8(name).ok().and_then(Field::from_name) {
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Field(field));
            }
            // Unknown placeholders expand to nothing.
            rest = &after[close + 1..];
        }
        literal.extend_from_slice(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Template { segments }
    }

    /// The expansion when it is the same every time (no field): what can
    /// be rendered once and written as is.
    pub fn constant(&self) -> Option<&[u8]> {
        match self.segments.as_slice() {
            [] => Some(&[]),
            [Segment::Literal(bytes)] => Some(bytes),
            _ => None,
        }
    }

    /// Whether the template uses `field` (lets callers skip work).
    pub fn uses(&self, field: Field) -> bool {
        self.segments.contains(&Segment::Field(field))
    }

    /// Append the expansion to `out`; `value` writes one field's value.
    pub fn render(&self, out: &mut Vec<u8>, mut value: impl FnMut(Field, &mut Vec<u8>)) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(bytes) => out.extend_from_slice(bytes),
                Segment::Field(field) => value(*field, out),
            }
        }
    }
}

/// Append `n` in decimal, as every numeric placeholder expands.
pub fn push_number(out: &mut Vec<u8>, n: u64) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(source: &str) -> String {
        let mut out = Vec::new();
        Template::compile(source).render(&mut out, |field, out| {
            let v: &[u8] = match field {
                Field::Id => b"42",
                Field::Text => b"~id~ hello",
                Field::Channel => b"chat",
                _ => b"",
            };
            out.extend_from_slice(v);
        });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn placeholders_expand_once() {
        assert_eq!(
            expand("p(~id~,\"~channel~\",\"~text~\");"),
            "p(42,\"chat\",\"~id~ hello\");"
        );
    }

    #[test]
    fn double_tilde_is_a_literal_tilde() {
        assert_eq!(expand("a~~b"), "a~b");
        assert_eq!(expand("~~id~~"), "~id~");
    }

    #[test]
    fn unknown_placeholders_expand_to_nothing() {
        assert_eq!(expand("x~nope~y"), "xy");
        assert_eq!(
            expand("x~ID~y"),
            "xy",
            "placeholder names are case-sensitive"
        );
    }

    #[test]
    fn lone_tilde_stays() {
        assert_eq!(expand("a~b"), "a~b");
        assert_eq!(expand("~id~~"), "42~");
    }

    #[test]
    fn no_placeholders_is_one_literal() {
        assert_eq!(expand("plain\r\n"), "plain\r\n");
        assert_eq!(expand(""), "");
    }

    #[test]
    fn uses_reports_fields() {
        let t = Template::compile("~status~ ~channelinfo~");
        assert!(t.uses(Field::ChannelInfo));
        assert!(!t.uses(Field::Id));
    }
}
