//! Request validation for the chat POST: method, content type, body size,
//! form decoding (`application/x-www-form-urlencoded` and
//! `multipart/form-data`), UTF-8 and the per-field limits. Pure: bytes and
//! header values in, [`Validated`] or a [`FormError`] (which knows its HTTP
//! status) out, so FastCGI and the dev HTTP server share it unchanged.
//!
//! The body decoders live beneath it: `urlencoded` and `multipart`,
//! both giving the raw `(name, value)` byte pairs that [`validate`] checks.

mod multipart;
mod urlencoded;

/// The body decoders on their own, for the fuzz targets (`fuzz/`); not an
/// API: use [`validate`].
#[doc(hidden)]
pub mod fuzzing {
    pub use super::multipart::parse as multipart;
    pub use super::urlencoded::parse as urlencoded;
}

use thiserror::Error;

/// Largest request body we accept. A maximal legal message (2000 characters
/// of 4-byte UTF-8, each byte percent-encoded as `%XX`) is 24,000 bytes, a
/// maximal user name under 1 KiB, so 64 KiB leaves room for raised limits and
/// multipart overhead while bounding what one request can make us hold.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Name shown for a missing or blank `user` field (as chat.php did).
pub const DEFAULT_USER: &str = "Guest";

/// Per-field limits, counted in Unicode scalar values of the decoded text
/// (before escaping, after trimming the user name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted user name (default 64).
    pub max_user_chars: usize,
    /// Longest accepted message (default 2000).
    pub max_message_chars: usize,
}

/// Worst-case encoded size of one character: 4 UTF-8 bytes, each sent as
/// a 3-byte `%XX` escape.
const MAX_ENCODED_BYTES_PER_CHAR: usize = 12;

/// Room in a body for field names, separators and multipart part headers.
const FORM_OVERHEAD_BYTES: usize = 4096;

impl Limits {
    /// Largest body accepted with these limits: [`MAX_BODY_BYTES`], or more
    /// when raised field limits need it so that a legal message is never
    /// refused as a too-large body.
    pub fn body_cap(&self) -> usize {
        let fields = self.max_user_chars.saturating_add(self.max_message_chars);
        MAX_BODY_BYTES.max(
            fields
                .saturating_mul(MAX_ENCODED_BYTES_PER_CHAR)
                .saturating_add(FORM_OVERHEAD_BYTES),
        )
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_user_chars: 64,
            max_message_chars: 2000,
        }
    }
}

/// A request that passed every check; the text is still unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// Trimmed user name, [`DEFAULT_USER`] when missing or blank.
    pub user: String,
    /// The message exactly as sent (not blank).
    pub message: String,
}

/// Why a request was refused. `Display` is the one-line reason sent to the
/// client; [`FormError::status`] is the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormError {
    /// Anything but POST.
    #[error("method {0} not allowed, use POST")]
    MethodNotAllowed(String),
    /// No or an unsupported `Content-Type`.
    #[error(
        "unsupported content type {0:?}, use application/x-www-form-urlencoded or multipart/form-data"
    )]
    UnsupportedContentType(String),
    /// A `charset` other than UTF-8 was declared.
    #[error("unsupported charset {0:?}, only UTF-8 is accepted")]
    UnsupportedCharset(String),
    /// Body over [`MAX_BODY_BYTES`].
    #[error("request body too large (limit {max} bytes)")]
    BodyTooLarge {
        /// The limit that was exceeded.
        max: usize,
    },
    /// The body is not a well-formed form of the declared type.
    #[error("malformed form data: {0}")]
    Malformed(&'static str),
    /// A field decoded to bytes that are not UTF-8.
    #[error("field {0:?} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// `user` or `message` was sent twice.
    #[error("field {0:?} sent more than once")]
    DuplicateField(&'static str),
    /// No `message` field at all.
    #[error("missing field \"message\"")]
    MissingMessage,
    /// The message is empty or white space only.
    #[error("message is empty")]
    EmptyMessage,
    /// A field is over its limit.
    #[error("field {field:?} too long ({got} characters, limit {max})")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in characters.
        got: usize,
        /// The configured limit.
        max: usize,
    },
}

impl FormError {
    /// The HTTP status that goes with this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::MethodNotAllowed(_) => 405,
            Self::UnsupportedContentType(_) | Self::UnsupportedCharset(_) => 415,
            Self::BodyTooLarge { .. } | Self::TooLong { .. } => 413,
            Self::Malformed(_)
            | Self::InvalidUtf8(_)
            | Self::DuplicateField(_)
            | Self::MissingMessage
            | Self::EmptyMessage => 400,
        }
    }
}

/// Checks the method alone; front ends call this before reading a body.
pub fn check_method(method: &str) -> Result<(), FormError> {
    if method == "POST" {
        Ok(())
    } else {
        Err(FormError::MethodNotAllowed(printable(method)))
    }
}

/// Validates a whole request.
pub fn validate(
    method: &str,
    content_type: Option<&str>,
    body: &[u8],
    limits: &Limits,
) -> Result<Validated, FormError> {
    check_method(method)?;
    let kind = body_kind(content_type)?;
    if body.len() > limits.body_cap() {
        return Err(FormError::BodyTooLarge {
            max: limits.body_cap(),
        });
    }
    let fields = match kind {
        BodyKind::UrlEncoded => urlencoded::parse(body)?,
        BodyKind::Multipart(boundary) => multipart::parse(body, &boundary)?,
    };

    let mut user: Option<Vec<u8>> = None;
    let mut message: Option<Vec<u8>> = None;
    for (name, value) in fields {
        let (slot, field) = match name.as_slice() {
            b"user" => (&mut user, "user"),
            b"message" => (&mut message, "message"),
            // Other fields (a submit button's name, a cache buster) are
            // harmless and ignored, as chat.php ignored them.
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(FormError::DuplicateField(field));
        }
    }

    let user = match user {
        Some(bytes) => String::from_utf8(bytes).map_err(|_| FormError::InvalidUtf8("user"))?,
        None => String::new(),
    };
    let message = String::from_utf8(message.ok_or(FormError::MissingMessage)?)
        .map_err(|_| FormError::InvalidUtf8("message"))?;

    if message.trim().is_empty() {
        return Err(FormError::EmptyMessage);
    }
    // The limit applies to what the client sent; the default name is
    // always allowed, even with a user limit below its length.
    let user = user.trim();
    check_len("user", user, limits.max_user_chars)?;
    check_len("message", &message, limits.max_message_chars)?;
    let user = if user.is_empty() { DEFAULT_USER } else { user }.to_string();
    Ok(Validated { user, message })
}

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), FormError> {
    let got = text.chars().count();
    if got > max {
        Err(FormError::TooLong { field, got, max })
    } else {
        Ok(())
    }
}

/// Cuts client-supplied text down to something safe to echo in a reason.
fn printable(s: &str) -> String {
    /// Enough for any real method or media type.
    const MAX_ECHO: usize = 40;
    s.chars()
        .take(MAX_ECHO)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// A decoded form: `(name, value)` pairs in body order, still bytes (UTF-8
/// is checked per field, so the error can name the field).
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

enum BodyKind {
    UrlEncoded,
    Multipart(String),
}

fn body_kind(content_type: Option<&str>) -> Result<BodyKind, FormError> {
    let ct = content_type.unwrap_or("");
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut boundary = None;
    for param in parts {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.trim().to_ascii_lowercase().as_str() {
            "charset" if !value.eq_ignore_ascii_case("utf-8") => {
                return Err(FormError::UnsupportedCharset(printable(value)));
            }
            "boundary" => boundary = Some(value.to_string()),
            _ => {}
        }
    }
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(BodyKind::UrlEncoded),
        "multipart/form-data" => match boundary {
            // RFC 2046: 1 to 70 characters.
            Some(b) if !b.is_empty() && b.len() <= 70 => Ok(BodyKind::Multipart(b)),
            _ => Err(FormError::Malformed(
                "multipart boundary missing or invalid",
            )),
        },
        _ => Err(FormError::UnsupportedContentType(printable(ct))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn ok(body: &str) -> Validated {
        validate("POST", FORM, body.as_bytes(), &Limits::default()).unwrap()
    }

    fn err(body: &[u8]) -> FormError {
        validate("POST", FORM, body, &Limits::default()).unwrap_err()
    }

    #[test]
    fn missing_or_blank_user_is_guest() {
        assert_eq!(ok("message=hi").user, "Guest");
        assert_eq!(ok("user=&message=hi").user, "Guest");
        assert_eq!(ok("user=+%09+&message=hi").user, "Guest");
        assert_eq!(ok("user=+bob+&message=hi").user, "bob");
    }

    #[test]
    fn message_keeps_its_white_space() {
        assert_eq!(ok("message=+a%0Ab+").message, " a\nb ");
    }

    #[test]
    fn empty_blank_or_missing_message_is_400() {
        assert_eq!(err(b"user=a&message="), FormError::EmptyMessage);
        assert_eq!(err(b"message=+%0D%0A%09"), FormError::EmptyMessage);
        assert_eq!(err(b"user=a"), FormError::MissingMessage);
        assert_eq!(err(b""), FormError::MissingMessage);
        assert_eq!(FormError::EmptyMessage.status(), 400);
    }

    #[test]
    fn invalid_utf8_is_400_not_replacement_chars() {
        assert_eq!(err(b"message=%FF"), FormError::InvalidUtf8("message"));
        assert_eq!(err(b"user=%C3&message=x"), FormError::InvalidUtf8("user"));
        // A lone surrogate sent as CESU-style bytes is not UTF-8 either.
        assert_eq!(err(b"message=%ED%A0%80"), FormError::InvalidUtf8("message"));
        assert_eq!(err(b"message=\xff"), FormError::InvalidUtf8("message"));
        assert_eq!(FormError::InvalidUtf8("user").status(), 400);
    }

    #[test]
    fn duplicate_fields_are_400() {
        assert_eq!(
            err(b"message=a&message=b"),
            FormError::DuplicateField("message")
        );
        assert_eq!(
            err(b"user=a&user=b&message=c"),
            FormError::DuplicateField("user")
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(ok("send=Send&message=x&%FF=1").message, "x");
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let limits = Limits {
            max_user_chars: 3,
            max_message_chars: 2,
        };
        let emoji2 = "message=%F0%9F%98%80%F0%9F%98%80"; // 8 bytes, 2 chars
        assert!(validate("POST", FORM, emoji2.as_bytes(), &limits).is_ok());
        let e = validate("POST", FORM, b"message=abc", &limits).unwrap_err();
        assert_eq!(
            e,
            FormError::TooLong {
                field: "message",
                got: 3,
                max: 2
            }
        );
        assert_eq!(e.status(), 413);
        let e = validate("POST", FORM, b"user=abcd&message=a", &limits).unwrap_err();
        assert!(matches!(e, FormError::TooLong { field: "user", .. }));
    }

    #[test]
    fn default_limits_are_64_and_2000() {
        let long = format!("message={}", "x".repeat(2001));
        assert!(matches!(err(long.as_bytes()), FormError::TooLong { .. }));
        assert_eq!(
            ok(&format!("message={}", "x".repeat(2000))).message.len(),
            2000
        );
        let user = format!("user={}&message=x", "u".repeat(65));
        assert!(matches!(
            err(user.as_bytes()),
            FormError::TooLong { field: "user", .. }
        ));
    }

    #[test]
    fn oversized_body_is_413() {
        let body = vec![b'a'; MAX_BODY_BYTES + 1];
        let e = err(&body);
        assert_eq!(
            e,
            FormError::BodyTooLarge {
                max: MAX_BODY_BYTES
            }
        );
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn body_cap_grows_with_raised_limits() {
        assert_eq!(Limits::default().body_cap(), MAX_BODY_BYTES);
        let big = Limits {
            max_user_chars: 64,
            max_message_chars: 10_000,
        };
        assert!(big.body_cap() >= 10_064 * 12);
        let worst = format!("message={}", "%F0%9F%98%80".repeat(10_000));
        assert!(validate("POST", FORM, worst.as_bytes(), &big).is_ok());
    }

    #[test]
    fn only_post_is_allowed() {
        for m in ["GET", "HEAD", "PUT", "post", "OPTIONS"] {
            let e = validate(m, FORM, b"message=x", &Limits::default()).unwrap_err();
            assert_eq!(e.status(), 405, "{m}");
        }
        let e = check_method("G\r\nX: y").unwrap_err();
        assert_eq!(e.to_string(), "method G??X:?y not allowed, use POST");
    }

    #[test]
    fn content_types() {
        let l = Limits::default();
        for ct in [None, Some("text/plain"), Some("application/json"), Some("")] {
            let e = validate("POST", ct, b"message=x", &l).unwrap_err();
            assert_eq!(e.status(), 415, "{ct:?}");
        }
        let ct = Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8");
        assert!(validate("POST", ct, b"message=x", &l).is_ok());
        let ct = Some("application/x-www-form-urlencoded; charset=iso-8859-1");
        let e = validate("POST", ct, b"message=x", &l).unwrap_err();
        assert_eq!(e.status(), 415);
    }
}
