//! meteord's EventSource stream (`--mode eventsource`, issue 12) as the
//! generator reads it: each message is
//! `id: <id>\ndata: {"type":"message","id":<id>,"channel":"<c>","text":"<payload>"}\n\n`,
//! the payload plain ASCII, so the JSON leaves it unchanged and the
//! [`crate::payload`] scanner finds it by its marker as in every other
//! transport. This file reads the message id in front of a payload (the
//! `id:` line and the JSON's `id` must agree, or it is no message event),
//! which the tally keeps as the last id seen, and builds the request that
//! resumes after it with `Last-Event-ID`, as a browser does. Pure.

/// The JSON object's fields before the id, after `data: `.
const OBJECT_START: &[u8] = b"{\"type\":\"message\",\"id\":";

/// The message id of the event whose text starts at `marker`:
/// `id: <id>\ndata: {"type":"message","id":<id>,"channel":"<c>","text":"`
/// must end right there.
pub fn id_before(buf: &[u8], marker: usize) -> Option<u64> {
    let before = buf.get(..marker)?.strip_suffix(b"\",\"text\":\"")?;
    // The channel name: generated, so without quotes or escapes.
    let quote = memchr::memrchr(b'"', before)?;
    let before = before[..quote].strip_suffix(b",\"channel\":")?;
    let digits_at = before
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let json_id = number(&before[digits_at..])?;
    let before = before[..digits_at]
        .strip_suffix(OBJECT_START)?
        .strip_suffix(b"\ndata: ")?;
    let line_at = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    let line_id = number(before[line_at..].strip_prefix(b"id: ")?)?;
    (line_id == json_id).then_some(json_id)
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The request for `path` (`/push/<hostid>/eventsource/<channel>`): a
/// resume names the last id seen; with none seen yet it asks for the whole
/// history (the run's fresh channel holds exactly what is still expected).
pub fn request(path: &str, resume: bool, last_id: Option<u64>) -> String {
    let (marker, header) = match (resume, last_id) {
        (false, _) => (String::new(), String::new()),
        (true, Some(id)) => (String::new(), format!("Last-Event-ID: {id}\r\n")),
        (true, None) => (".h".to_owned(), String::new()),
    };
    format!(
        "GET {path}{marker} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: meteor-bench\r\n\
         Accept: text/event-stream\r\n{header}\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload;

    fn event(id: u64, channel: &str, seq: u64) -> Vec<u8> {
        let mut out = format!(
            "id: {id}\ndata: {{\"type\":\"message\",\"id\":{id},\"channel\":\"{channel}\",\"text\":\""
        )
        .into_bytes();
        payload::encode(seq, 1000 + seq, 60, &mut out);
        out.extend_from_slice(b"\"}\n\n");
        out
    }

    #[test]
    fn finds_each_message_with_its_id_across_split_reads() {
        let mut stream = b"HTTP/1.1 200 OK\r\n\r\nretry: 3000\n\n: ping\n\n".to_vec();
        stream.extend_from_slice(
            b"event: gap\ndata: {\"type\":\"gap\",\"channel\":\"ch_1\",\"requested\":1,\"oldest\":5}\n\n",
        );
        for i in 0..40u64 {
            stream.extend_from_slice(&event(1_796_000_000_000_000 + i, "ch_1", i));
        }
        for chunk in [1usize, 5, 64, 1000] {
            let mut buf = Vec::new();
            let mut seen = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                let keep = payload::scan(&buf, |d| seen.push((d.seq, d.meteor_id)));
                buf.drain(..keep);
            }
            let want: Vec<_> = (0..40u64)
                .map(|i| (i, Some(1_796_000_000_000_000 + i)))
                .collect();
            assert_eq!(seen, want, "chunk size {chunk}");
        }
    }

    #[test]
    fn ids_that_disagree_or_another_shape_are_no_id() {
        let mut buf =
            b"id: 7\ndata: {\"type\":\"message\",\"id\":8,\"channel\":\"c\",\"text\":\"".to_vec();
        let marker = buf.len();
        payload::encode(0, 1, 40, &mut buf);
        assert_eq!(id_before(&buf, marker), None);
        let mut buf =
            b"id: 9\ndata: {\"type\":\"message\",\"id\":9,\"channel\":\"c\",\"text\":\"".to_vec();
        let marker = buf.len();
        payload::encode(0, 1, 40, &mut buf);
        assert_eq!(id_before(&buf, marker), Some(9));
        assert_eq!(id_before(b"\"text\":\"MB", 8), None);
        assert_eq!(id_before(b"", 0), None);
    }

    #[test]
    fn a_resume_names_the_last_id() {
        let path = "/push/h1x0/eventsource/ch_0";
        assert_eq!(
            request(path, false, Some(5)),
            "GET /push/h1x0/eventsource/ch_0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             User-Agent: meteor-bench\r\nAccept: text/event-stream\r\n\r\n"
        );
        assert!(request(path, true, Some(5)).contains("ch_0 HTTP/1.1\r\n"));
        assert!(request(path, true, Some(5)).ends_with("Last-Event-ID: 5\r\n\r\n"));
        assert!(
            request(path, true, None).starts_with("GET /push/h1x0/eventsource/ch_0.h HTTP/1.1")
        );
        assert!(!request(path, true, None).contains("Last-Event-ID"));
    }
}
