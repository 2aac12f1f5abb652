//! A small `multipart/form-data` reader (RFC 7578): enough for what
//! browsers send from `new FormData(form)`, no more (no nested parts, no
//! transfer encodings, no file handling).

use super::{Fields, FormError};

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the parts of a body delimited by `boundary`. Parts without a
/// `name` are skipped.
pub fn parse(body: &[u8], boundary: &str) -> Result<Fields, FormError> {
    const BAD: FormError = FormError::Malformed("bad multipart body");
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut pos = find(body, delimiter.as_bytes()).ok_or(BAD)? + delimiter.len();
    let mut fields = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        let rest = rest.strip_prefix(b"\r\n").ok_or(BAD)?;
        let end = find(rest, next_delimiter.as_bytes()).ok_or(BAD)?;
        let part = &rest[..end];
        pos += 2 + end + next_delimiter.len();

        let split = find(part, b"\r\n\r\n").ok_or(BAD)?;
        let (head, content) = (&part[..split], &part[split + 4..]);
        let head = std::str::from_utf8(head).map_err(|_| BAD)?;
        if let Some(name) = head.split("\r\n").find_map(disposition_name) {
            fields.push((name.into_bytes(), content.to_vec()));
        }
    }
}

/// The `name` parameter of a `Content-Disposition: form-data` header line.
fn disposition_name(line: &str) -> Option<String> {
    let (key, value) = line.split_once(':')?;
    if !key.trim().eq_ignore_ascii_case("content-disposition") {
        return None;
    }
    value.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("name")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use crate::form::{FormError, Limits, validate};

    #[test]
    fn multipart_from_a_browser() {
        let body = "------WebKitFormBoundaryAbC\r\n\
            Content-Disposition: form-data; name=\"user\"\r\n\r\n\
            Zoë\r\n\
            ------WebKitFormBoundaryAbC\r\n\
            Content-Disposition: form-data; name=\"message\"\r\n\r\n\
            line1\r\nline2 ----\r\n\
            ------WebKitFormBoundaryAbC--\r\n";
        let ct = Some("multipart/form-data; boundary=----WebKitFormBoundaryAbC");
        let v = validate("POST", ct, body.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(v.user, "Zoë");
        assert_eq!(v.message, "line1\r\nline2 ----");
    }

    #[test]
    fn multipart_errors() {
        let l = Limits::default();
        let ct = Some("multipart/form-data");
        assert_eq!(validate("POST", ct, b"", &l).unwrap_err().status(), 400);
        let ct = Some("multipart/form-data; boundary=xyz");
        for body in [
            &b"garbage"[..],
            b"--xyz\r\nno end",
            b"--xyz\r\nA: b\r\n\r\nv\r\n--xyz",
        ] {
            let e = validate("POST", ct, body, &l).unwrap_err();
            assert!(matches!(e, FormError::Malformed(_)), "{body:?}: {e:?}");
        }
        let dup = b"--xyz\r\nContent-Disposition: form-data; name=message\r\n\r\na\r\n\
                    --xyz\r\nContent-Disposition: form-data; name=message\r\n\r\nb\r\n--xyz--";
        assert_eq!(
            validate("POST", ct, dup, &l).unwrap_err(),
            FormError::DuplicateField("message")
        );
        let bad =
            b"--xyz\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n\xff\r\n--xyz--";
        assert_eq!(
            validate("POST", ct, bad, &l).unwrap_err(),
            FormError::InvalidUtf8("message")
        );
    }
}
