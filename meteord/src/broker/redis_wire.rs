//! What the Redis broker reads back, decoded without I/O: stream entries
//! (from XREAD and XRANGE) into [`Entry`], and stream ids (`<n>-0`, the
//! form our scripts write) into message ids. Anything of another shape is
//! an error, never a panic: a foreign writer on our keys must not take the
//! node down.

use ::redis::Value;

/// One message as the cluster stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// The log entry before this one (0: none); 0 in a history entry.
    pub prev: u64,
    /// Empty for a per-channel history entry (the key names the channel).
    pub channel: Vec<u8>,
    /// Milliseconds since the epoch when it was published.
    pub millis: u64,
    pub text: Vec<u8>,
}

/// A reply that is not what our scripts write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected reply from Redis: {0}")]
pub struct Malformed(pub &'static str);

/// The message id in a stream id: `<n>-0` (or a bare `<n>`).
pub fn stream_id(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let number = text.strip_suffix("-0").unwrap_or(text);
    number.parse().ok()
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// One stream entry, `[id, [field, value, ...]]`.
fn entry(value: &Value) -> Result<Entry, Malformed> {
    let Value::Array(parts) = value else {
        return Err(Malformed("stream entry is not an array"));
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return Err(Malformed("stream entry is not [id, fields]"));
    };
    let id = bytes(id)
        .and_then(stream_id)
        .ok_or(Malformed("stream id is not <number>-0"))?;
    let mut out = Entry {
        id,
        prev: 0,
        channel: Vec::new(),
        millis: 0,
        text: Vec::new(),
    };
    for pair in fields.chunks(2) {
        let [name, value] = pair else {
            return Err(Malformed("odd field list"));
        };
        let (Some(name), Some(value)) = (bytes(name), bytes(value)) else {
            return Err(Malformed("field is not a string"));
        };
        let number = || -> Option<u64> { std::str::from_utf8(value).ok()?.parse().ok() };
        match name {
            b"p" => out.prev = number().ok_or(Malformed("previous id is not a number"))?,
            b"c" => out.channel = value.to_vec(),
            b"t" => out.millis = number().ok_or(Malformed("timestamp is not a number"))?,
            b"d" => out.text = value.to_vec(),
            // Fields a later version adds are not ours to judge.
            _ => {}
        }
    }
    Ok(out)
}

/// The entries of an XRANGE reply (an array of entries).
pub fn range(value: &Value) -> Result<Vec<Entry>, Malformed> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(entries) => entries.iter().map(entry).collect(),
        _ => Err(Malformed("XRANGE reply is not an array")),
    }
}

/// The entries of an XREAD reply on one stream: nil when BLOCK timed out,
/// else `[[key, [entries]]]` (RESP2) or a map `{key: [entries]}` (RESP3).
pub fn xread(value: &Value) -> Result<Vec<Entry>, Malformed> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => match streams.as_slice() {
            [] => Ok(Vec::new()),
            [Value::Array(stream)] => match stream.as_slice() {
                [_key, entries] => range(entries),
                _ => Err(Malformed("XREAD stream is not [key, entries]")),
            },
            _ => Err(Malformed("XREAD reply is not one stream")),
        },
        Value::Map(streams) => match streams.as_slice() {
            [] => Ok(Vec::new()),
            [(_key, entries)] => range(entries),
            _ => Err(Malformed("XREAD reply is not one stream")),
        },
        _ => Err(Malformed("XREAD reply is not an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn log_entry(id: &str, channel: &str, t: &str, d: &str) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![
                bulk("p"),
                bulk("3"),
                bulk("c"),
                bulk(channel),
                bulk("t"),
                bulk(t),
                bulk("d"),
                bulk(d),
            ]),
        ])
    }

    #[test]
    fn stream_ids_are_ours_only() {
        assert_eq!(stream_id(b"42-0"), Some(42));
        assert_eq!(stream_id(b"42"), Some(42));
        assert_eq!(stream_id(b"42-1"), None);
        assert_eq!(stream_id(b"-0"), None);
        assert_eq!(stream_id(b"x-0"), None);
    }

    #[test]
    fn xread_reply_decodes_in_order() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("meteord:{m}:log"),
            Value::Array(vec![
                log_entry("7-0", "chat", "1700000000123", "hi"),
                log_entry("9-0", "news", "1700000000124", "a b\r\n"),
            ]),
        ])]);
        let got = xread(&reply).unwrap();
        assert_eq!(
            got,
            [
                Entry {
                    id: 7,
                    prev: 3,
                    channel: b"chat".to_vec(),
                    millis: 1_700_000_000_123,
                    text: b"hi".to_vec()
                },
                Entry {
                    id: 9,
                    prev: 3,
                    channel: b"news".to_vec(),
                    millis: 1_700_000_000_124,
                    text: b"a b\r\n".to_vec()
                },
            ]
        );
        assert_eq!(xread(&Value::Nil).unwrap(), []);
    }

    #[test]
    fn foreign_shapes_are_errors_not_panics() {
        assert!(xread(&Value::Int(3)).is_err());
        assert!(range(&Value::Array(vec![Value::Int(1)])).is_err());
        let bad_id = Value::Array(vec![log_entry("5-3", "c", "1", "x")]);
        assert!(range(&bad_id).is_err());
        let bad_time = Value::Array(vec![log_entry("5-0", "c", "soon", "x")]);
        assert!(range(&bad_time).is_err());
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("5-0"),
            Value::Array(vec![bulk("c")]),
        ])]);
        assert!(range(&odd).is_err());
    }
}
