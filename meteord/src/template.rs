//! Meteor's output templates, compiled once at configuration load.
//!
//! A template is text with `~name~` placeholders; `~~` is a literal `~`,
//! unknown placeholders expand to nothing, and expansion is one pass, so a
//! `~id~` that arrives inside message text stays literal. Compiling splits the
//! text into literal and placeholder segments so rendering is a walk over a
//! short vector with no searching.
//!
//! [`CompiledModes`] holds every mode's templates; each message is rendered
//! once per mode and the bytes are shared by all subscribers of that mode
//! (see [`CompiledModes::message_bytes`]).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::channel::Message;
use crate::config::{ModeSettings, Modes};

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

/// Values for the header, ping and shutdown templates.
#[derive(Debug, Clone, Copy)]
pub struct HeaderValues<'a> {
    pub status: &'a str,
    pub server_time: u64,
    pub channel_info: &'a [u8],
}

/// Values for one channel's `ChannelInfoTemplate`.
#[derive(Debug, Clone, Copy)]
pub struct ChannelInfoValues<'a> {
    pub name: &'a str,
    pub last_msg_id: u64,
    pub subscriber_count: usize,
    pub message_count: usize,
}

/// One mode's templates and settings, compiled.
#[derive(Debug)]
pub struct CompiledMode {
    pub settings: Arc<ModeSettings>,
    /// Index of this mode's slot in each message's render cache.
    pub slot: usize,
    /// Which [`CompiledModes`] this belongs to (render caches are per generation).
    pub generation: u64,
    header: Template,
    message: Template,
    channel_info: Template,
    ping: Template,
    shutdown: Template,
    /// Sent verbatim, never expanded (as the original does).
    pub footer: Bytes,
}

impl CompiledMode {
    fn new(settings: Arc<ModeSettings>, slot: usize, generation: u64) -> CompiledMode {
        CompiledMode {
            header: Template::compile(&settings.header_template),
            message: Template::compile(&settings.message_template),
            channel_info: Template::compile(&settings.channel_info_template),
            ping: Template::compile(&settings.ping_message),
            shutdown: Template::compile(&settings.subscriber_shutdown_msg),
            footer: Bytes::copy_from_slice(settings.footer_template.as_bytes()),
            settings,
            slot,
            generation,
        }
    }

    pub fn render_header(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        render_header_like(&self.header, out, values);
    }

    pub fn render_ping(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        render_header_like(&self.ping, out, values);
    }

    pub fn render_shutdown(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        render_header_like(&self.shutdown, out, values);
    }

    pub fn render_channel_info(&self, out: &mut Vec<u8>, values: &ChannelInfoValues<'_>) {
        self.channel_info.render(out, |field, out| match field {
            Field::Name | Field::Channel => out.extend_from_slice(values.name.as_bytes()),
            Field::LastMsgId => push_number(out, values.last_msg_id),
            Field::SubscriberCount => push_number(out, values.subscriber_count as u64),
            Field::MessageCount => push_number(out, values.message_count as u64),
            _ => {}
        });
    }

    /// Render `message` with this mode's MessageTemplate (no caching), and
    /// say where the text's first copy sits in the rendering.
    pub fn render_message(&self, message: &Message) -> (Bytes, Option<Range<usize>>) {
        let text = message.text();
        let mut out = Vec::with_capacity(64 + text.len() + message.channel.len());
        let mut text_at = None;
        self.message.render(&mut out, |field, out| match field {
            Field::Id => push_number(out, message.id),
            Field::Channel => out.extend_from_slice(message.channel.as_bytes()),
            Field::Text => {
                let start = out.len();
                out.extend_from_slice(&text);
                text_at.get_or_insert(start..out.len());
            }
            Field::Timestamp => push_number(out, message.timestamp),
            _ => {}
        });
        (Bytes::from(out), text_at)
    }
}

fn render_header_like(template: &Template, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
    template.render(out, |field, out| match field {
        Field::Status => out.extend_from_slice(values.status.as_bytes()),
        Field::Server => out.extend_from_slice(crate::SERVER_NAME.as_bytes()),
        Field::ServerTime => push_number(out, values.server_time),
        Field::ChannelInfo => out.extend_from_slice(values.channel_info),
        _ => {}
    });
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// Every mode compiled, for one configuration generation.
#[derive(Debug)]
pub struct CompiledModes {
    pub generation: u64,
    default: Arc<CompiledMode>,
    named: HashMap<String, Arc<CompiledMode>>,
}

impl CompiledModes {
    pub fn compile(modes: &Modes, generation: u64) -> CompiledModes {
        let default = Arc::new(CompiledMode::new(modes.default.clone(), 0, generation));
        let mut names: Vec<&String> = modes.named.keys().collect();
        names.sort();
        let named = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let settings = modes.named[name].clone();
                (
                    name.clone(),
                    Arc::new(CompiledMode::new(settings, i + 1, generation)),
                )
            })
            .collect();
        CompiledModes {
            generation,
            default,
            named,
        }
    }

    /// The mode named `name` (case-sensitive); unknown modes get the defaults.
    pub fn get(&self, name: &str) -> &Arc<CompiledMode> {
        self.named.get(name).unwrap_or(&self.default)
    }

    /// The bytes of `message` for `mode`: rendered once per mode and shared.
    pub fn message_bytes(mode: &CompiledMode, message: &Message) -> Bytes {
        message.rendered(mode.generation, mode.slot, || mode.render_message(message))
    }
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
