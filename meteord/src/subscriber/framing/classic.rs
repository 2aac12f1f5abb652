//! The classic framing: Meteor's own, every byte from the mode's templates
//! (HeaderTemplate, MessageTemplate, ChannelInfoTemplate, PingMessage,
//! SubscriberShutdownMsg, FooterTemplate), as the original sends them. The
//! head is whatever HeaderTemplate says, status line included; the footer
//! is sent verbatim, never expanded; client input is read and ignored.

use std::ops::Range;

use bytes::Bytes;

use super::{ChannelInfoValues, HeaderValues, Input};
use crate::channel::Message;
use crate::config::ModeSettings;
use crate::template::{Field, Template, push_number};

/// Bytes we are willing to read and discard from a streaming client (it has
/// no reason to send anything after its request); past them it is closed.
const MAX_IGNORED_INPUT: u64 = 64 * 1024;

/// One mode's templates, compiled.
#[derive(Debug)]
pub struct Classic {
    header: Template,
    message: Template,
    channel_info: Template,
    ping: Template,
    shutdown: Template,
    /// Sent verbatim, never expanded (as the original does).
    footer: Bytes,
    /// The ping when PingMessage has no placeholder (the shipped ones).
    constant_ping: Option<Bytes>,
}

impl Classic {
    pub fn compile(settings: &ModeSettings) -> Classic {
        let ping = Template::compile(&settings.ping_message);
        Classic {
            constant_ping: ping.constant().map(Bytes::copy_from_slice),
            header: Template::compile(&settings.header_template),
            message: Template::compile(&settings.message_template),
            channel_info: Template::compile(&settings.channel_info_template),
            ping,
            shutdown: Template::compile(&settings.subscriber_shutdown_msg),
            footer: Bytes::copy_from_slice(settings.footer_template.as_bytes()),
        }
    }

    pub fn head(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        render_header_like(&self.header, out, values);
    }

    pub fn ping(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        render_header_like(&self.ping, out, values);
    }

    pub fn constant_ping(&self) -> Option<&Bytes> {
        self.constant_ping.as_ref()
    }

    pub fn shutdown(&self, out: &mut Vec<u8>, values: &HeaderValues<'_>) {
        render_header_like(&self.shutdown, out, values);
    }

    pub fn close(&self) -> &Bytes {
        &self.footer
    }

    pub fn channel_info(&self, out: &mut Vec<u8>, values: &ChannelInfoValues<'_>) {
        self.channel_info.render(out, |field, out| match field {
            Field::Name | Field::Channel => out.extend_from_slice(values.name.as_bytes()),
            Field::LastMsgId => push_number(out, values.last_msg_id),
            Field::SubscriberCount => push_number(out, values.subscriber_count as u64),
            Field::MessageCount => push_number(out, values.message_count as u64),
            _ => {}
        });
    }

    /// Render `message` with MessageTemplate, and say where the text's
    /// first copy sits in the rendering.
    pub fn message(&self, message: &Message) -> (Bytes, Option<Range<usize>>) {
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

    /// Input means nothing here; `seen` counts the bytes ignored so far, so
    /// a client cannot keep the stream busy reading forever.
    pub fn input(&self, bytes: &[u8], seen: &mut u32) -> Input {
        ignore_input(bytes, seen)
    }
}

/// Input that means nothing (classic, EventSource): read and dropped up
/// to [`MAX_IGNORED_INPUT`] bytes in all, counted in `seen`.
pub(super) fn ignore_input(bytes: &[u8], seen: &mut u32) -> Input {
    *seen = seen.saturating_add(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    if u64::from(*seen) <= MAX_IGNORED_INPUT {
        Input::Continue
    } else {
        Input::Close
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_ignored_up_to_a_bound() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let classic = Classic::compile(&config.modes.default);
        let mut seen = 0;
        let chunk = [b'x'; 1024];
        for _ in 0..MAX_IGNORED_INPUT / 1024 {
            assert_eq!(classic.input(&chunk, &mut seen), Input::Continue);
        }
        assert_eq!(classic.input(b"y", &mut seen), Input::Close);
    }
}
