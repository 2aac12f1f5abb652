//! Server-side includes: `<!--#include virtual="…"-->` in a text document
//! replaced by the named document's raw content, within the body budget
//! (the parent module's *Includes* section).

use super::cache::Dep;
use super::path::{canonical_root, read_bounded};
use super::{DocError, Documents, content_type, is_text};

/// The opening of an include directive.
const INCLUDE_OPEN: &[u8] = b"<!--#include";
/// The closing of any SSI directive.
const INCLUDE_CLOSE: &[u8] = b"-->";

impl Documents {
    /// The body of `url_path`, its includes expanded if `expand`, and its
    /// Content-Type. Every file consulted is appended to `deps`; `budget` is
    /// what may still be added to the body.
    pub(super) fn render(
        &self,
        url_path: &str,
        expand: bool,
        deps: &mut Vec<Dep>,
        budget: &mut usize,
    ) -> Result<(Vec<u8>, &'static str), DocError> {
        let root = canonical_root(&self.root)?;
        let resolved = match self.resolve(&root, url_path) {
            Ok(resolved) => resolved,
            Err(err) => {
                deps.push(Dep {
                    url_path: url_path.to_owned(),
                    target: None,
                });
                return Err(err);
            }
        };
        let (raw, stamp) = read_bounded(&resolved.file, *budget)?;
        *budget -= raw.len();
        deps.push(Dep {
            url_path: url_path.to_owned(),
            target: Some((resolved.file, stamp)),
        });
        let content_type = content_type(&resolved.name);
        if !expand || !is_text(content_type) || find(&raw, INCLUDE_OPEN).is_none() {
            return Ok((raw, content_type));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut rest = &raw[..];
        while let Some(at) = find(rest, INCLUDE_OPEN) {
            out.extend_from_slice(&rest[..at]);
            let Some((target, used)) = parse_include(&rest[at..]) else {
                // Not a well-formed include: keep the text as it is.
                out.extend_from_slice(INCLUDE_OPEN);
                rest = &rest[at + INCLUDE_OPEN.len()..];
                continue;
            };
            rest = &rest[at + used..];
            // The directive's own bytes were counted in the budget; give
            // them back before adding the included text.
            *budget += used;
            match self.render(target, false, deps, budget) {
                Ok((included, _)) => out.extend_from_slice(&included),
                Err(DocError::NotFound(why)) => {
                    tracing::warn!(
                        path = url_path,
                        include = target,
                        reason = why,
                        "include not found, left empty"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        out.extend_from_slice(rest);
        Ok((out, content_type))
    }
}

/// Position of `needle` in `haystack`.
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parse `<!--#include virtual="PATH" -->` at the start of `text`: the
/// path and the directive's length in bytes.
pub(super) fn parse_include(text: &[u8]) -> Option<(&str, usize)> {
    let mut at = INCLUDE_OPEN.len();
    let skip_spaces = |at: &mut usize| {
        while text.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    let before = at;
    skip_spaces(&mut at);
    if at == before {
        return None;
    }
    text.get(at..)?.strip_prefix(b"virtual")?;
    at += b"virtual".len();
    skip_spaces(&mut at);
    let rest = text.get(at..)?.strip_prefix(b"=\"")?;
    at += b"=\"".len();
    let len = rest
        .iter()
        .position(|&b| b == b'"')
        .filter(|&len| len > 0)?;
    let target = std::str::from_utf8(&rest[..len]).ok()?;
    at += len + 1;
    skip_spaces(&mut at);
    text.get(at..)?.strip_prefix(INCLUDE_CLOSE)?;
    Some((target, at + INCLUDE_CLOSE.len()))
}
