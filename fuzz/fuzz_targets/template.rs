//! The template renderer (meteord/src/template.rs): `Template::compile` and
//! `Template::render` on any text, against a plain reading of the rules
//! written out here (`~name~` is a field, `~~` a literal `~`, an unknown
//! name expands to nothing, a lone `~` is text, one pass only).
//!
//! Holds for every input: no panic; the rendering equals the reference's,
//! with field values that themselves look like placeholders (`~id~`), so a
//! second expansion pass would show; `uses` says exactly which fields the
//! reference met.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteord::template::{Field, Template};

const FIELDS: [(&str, Field); 12] = [
    ("status", Field::Status),
    ("server", Field::Server),
    ("servertime", Field::ServerTime),
    ("channelinfo", Field::ChannelInfo),
    ("id", Field::Id),
    ("channel", Field::Channel),
    ("text", Field::Text),
    ("timestamp", Field::Timestamp),
    ("name", Field::Name),
    ("lastMsgID", Field::LastMsgId),
    ("subscriberCount", Field::SubscriberCount),
    ("messageCount", Field::MessageCount),
];

/// What a field renders as in this target: looks like a placeholder, so a
/// renderer that expanded twice would differ from the reference.
fn value(field: Field) -> Vec<u8> {
    format!("[~id~{field:?}~~]").into_bytes()
}

/// The rules read literally, one byte at a time: the expansion and the
/// fields met.
fn reference(source: &[u8]) -> (Vec<u8>, Vec<Field>) {
    let mut out = Vec::new();
    let mut used = Vec::new();
    let mut i = 0;
    while i < source.len() {
        if source[i] != b'~' {
            out.push(source[i]);
            i += 1;
            continue;
        }
        let Some(len) = source[i + 1..].iter().position(|&b| b == b'~') else {
            out.extend_from_slice(&source[i..]);
            break;
        };
        let name = &source[i + 1..i + 1 + len];
        if name.is_empty() {
            out.push(b'~');
        } else if let Some(&(_, field)) = FIELDS.iter().find(|(n, _)| n.as_bytes() == name) {
            out.extend_from_slice(&value(field));
            used.push(field);
        }
        i += len + 2;
    }
    (out, used)
}

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let template = Template::compile(&source);
    let mut out = Vec::new();
    template.render(&mut out, |field, out| out.extend_from_slice(&value(field)));
    let (expected, used) = reference(source.as_bytes());
    assert_eq!(out, expected, "template {source:?}");
    for (_, field) in FIELDS {
        assert_eq!(template.uses(field), used.contains(&field), "{field:?}");
    }
    // Rendering is repeatable (the compiled form is not consumed).
    let mut again = Vec::new();
    template.render(&mut again, |field, out| {
        out.extend_from_slice(&value(field))
    });
    assert_eq!(again, out);
});
