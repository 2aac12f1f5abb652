//! What a request head says besides its route: query parameters of the
//! request line, header values and cookies. Pure functions over
//! [`super::request::Head::text`] (lines ended by `\n`, the request line
//! first), for whatever needs them (tokens, `lastEventId`, ...).
//!
//! The route grammar ([`super::request`]) ends the channel run at `?`, so
//! a query string never changes what is routed; these read it separately.
//!
//! - [`query_param`]: the first `name=value` of the request line's query,
//!   both percent-decoded (`+` is a space, as forms send it); a bare
//!   `name` is the empty value.
//! - [`header`]: the first header line `Name: value` (name any case), the
//!   value without surrounding blanks.
//! - [`cookie`]: the first `name=value` of every `Cookie:` line, quotes
//!   around the value removed.

/// The head's first line: the request line.
fn request_line(head_text: &[u8]) -> &[u8] {
    let end = head_text
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(head_text.len());
    &head_text[..end]
}

/// The header lines: everything after the request line.
fn header_lines(head_text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let start = request_line(head_text).len() + 1;
    head_text
        .get(start..)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
}

/// The request target's query: after the first `?` of the second word of
/// the request line, up to white space (a `#` ends it too, though browsers
/// never send one).
fn query(head_text: &[u8]) -> Option<&[u8]> {
    let line = request_line(head_text);
    let target = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .nth(1)?;
    let start = target.iter().position(|&b| b == b'?')? + 1;
    let query = &target[start..];
    let end = query.iter().position(|&b| b == b'#').unwrap_or(query.len());
    Some(&query[..end])
}

/// The value of the first query parameter called `name` (compared after
/// decoding, exactly).
pub fn query_param(head_text: &[u8], name: &str) -> Option<String> {
    query(head_text)?.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        (percent_decode(key) == name.as_bytes()).then(|| lossy(percent_decode(value)))
    })
}

/// The value of the first header line called `name` (any case).
pub fn header(head_text: &[u8], name: &str) -> Option<String> {
    header_values(head_text, name).next().map(lossy_slice)
}

/// Every value of the header lines called `name`, in order.
fn header_values<'a>(head_text: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    header_lines(head_text).filter_map(move |line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| trim(&line[colon + 1..]))
    })
}

/// The value of the first cookie called `name` in any `Cookie:` line
/// (proxies may split the cookies over several).
pub fn cookie(head_text: &[u8], name: &str) -> Option<String> {
    header_values(head_text, "cookie").find_map(|line| {
        line.split(|&b| b == b';').find_map(|pair| {
            let pair = trim(pair);
            let eq = pair.iter().position(|&b| b == b'=')?;
            if trim(&pair[..eq]) != name.as_bytes() {
                return None;
            }
            let value = trim(&pair[eq + 1..]);
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            Some(lossy_slice(value))
        })
    })
}

/// `%XX` decoded, `+` a space; a `%` not followed by two hex digits stays
/// as it is.
pub fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |at: usize| text.get(at).and_then(|&b| (b as char).to_digit(16));
        match text[i] {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn lossy_slice(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"GET /push/h/m/c.r5?a=1&token=x%2Ey&e&plus=a+b%&a=2 HTTP/1.1\n\
        Host: example\n\
        Authorization:   Bearer abc \n\
        Cookie: one=1; meteord_token=\"tok\"\n\
        cookie: two=2\n";

    #[test]
    fn query_parameters_are_decoded_and_the_first_wins() {
        assert_eq!(query_param(HEAD, "a").as_deref(), Some("1"));
        assert_eq!(query_param(HEAD, "token").as_deref(), Some("x.y"));
        assert_eq!(query_param(HEAD, "e").as_deref(), Some(""));
        assert_eq!(query_param(HEAD, "plus").as_deref(), Some("a b%"));
        assert_eq!(query_param(HEAD, "missing"), None);
        assert_eq!(query_param(b"GET /push/h/m/c HTTP/1.1\n", "a"), None);
        assert_eq!(
            query_param(b"GET /x?%74oken=t\n", "token").as_deref(),
            Some("t")
        );
        assert_eq!(query_param(b"GET /x?a=1#b=2 HTTP/1.0\n", "b"), None);
        assert_eq!(query_param(b"GET\n", "a"), None);
        assert_eq!(query_param(b"", "a"), None);
    }

    #[test]
    fn only_the_request_line_has_a_query() {
        let head = b"GET /push/h/m/c HTTP/1.1\nReferer: /page?token=no\n";
        assert_eq!(query_param(head, "token"), None);
    }

    #[test]
    fn headers_by_name_in_any_case() {
        assert_eq!(header(HEAD, "authorization").as_deref(), Some("Bearer abc"));
        assert_eq!(header(HEAD, "HOST").as_deref(), Some("example"));
        assert_eq!(header(HEAD, "X-None"), None);
        // The request line is no header, whatever it holds.
        assert_eq!(header(b"GET /a:b HTTP/1.1\n", "GET /a"), None);
    }

    #[test]
    fn cookies_from_every_cookie_line() {
        assert_eq!(cookie(HEAD, "meteord_token").as_deref(), Some("tok"));
        assert_eq!(cookie(HEAD, "one").as_deref(), Some("1"));
        assert_eq!(cookie(HEAD, "two").as_deref(), Some("2"));
        assert_eq!(cookie(HEAD, "three"), None);
        assert_eq!(
            cookie(
                b"GET / HTTP/1.1\nCookie: x_meteord_token=a\n",
                "meteord_token"
            ),
            None
        );
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode(b"%41%2x%4"), b"A%2x%4");
        assert_eq!(percent_decode(b"%e9"), [0xe9]);
    }
}
