//! RFC 6455 frames, pure: the server's (unmasked, so one message's frame
//! is the same bytes for every subscriber and sits in the render cache)
//! and the reading of a client's frame head, with every rule a server
//! must enforce on it (masking, reserved bits, opcodes, control frames,
//! the size limit) decided here, apart from any I/O.

/// Continuation of a fragmented message.
pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Longest payload of a control frame (RFC 6455 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A close frame's status code and reason, as the server sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseFrame {
    pub const fn new(code: u16, reason: &'static str) -> CloseFrame {
        CloseFrame { code, reason }
    }
}

/// Why a client's input ends its stream: small (it travels in every
/// wake-up's work), turned into the close frame only when written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClose {
    /// The client closed: its code echoed.
    Echo(u16),
    ReservedBits,
    UnknownOpcode,
    Unmasked,
    ControlFrame,
    BadLength,
    TooBig,
    TooManyFrames,
    NothingToContinue,
    NestedMessage,
    TextNotUtf8,
    BadCloseFrame,
    BadCloseCode,
    CloseReasonNotUtf8,
}

impl ClientClose {
    /// The close frame the server sends for it.
    pub fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            ClientClose::Echo(code) => (code, ""),
            ClientClose::ReservedBits => (PROTOCOL_ERROR, "reserved bits set"),
            ClientClose::UnknownOpcode => (PROTOCOL_ERROR, "unknown opcode"),
            ClientClose::Unmasked => (PROTOCOL_ERROR, "client frames must be masked"),
            ClientClose::ControlFrame => (PROTOCOL_ERROR, "control frames are short and whole"),
            ClientClose::BadLength => (PROTOCOL_ERROR, "bad length"),
            ClientClose::TooBig => (TOO_BIG, "message too big"),
            ClientClose::TooManyFrames => (POLICY, "too many frames"),
            ClientClose::NothingToContinue => (PROTOCOL_ERROR, "nothing to continue"),
            ClientClose::NestedMessage => (PROTOCOL_ERROR, "a new message inside a fragmented one"),
            ClientClose::TextNotUtf8 => (INVALID_DATA, "text is not UTF-8"),
            ClientClose::BadCloseFrame => (PROTOCOL_ERROR, "bad close frame"),
            ClientClose::BadCloseCode => (PROTOCOL_ERROR, "bad close code"),
            ClientClose::CloseReasonNotUtf8 => (INVALID_DATA, "close reason is not UTF-8"),
        };
        CloseFrame::new(code, reason)
    }
}

/// A protocol error: unmasked frame, reserved bits, unknown opcode, a
/// control frame fragmented or too long, a continuation out of place.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text message that is not UTF-8.
pub const INVALID_DATA: u16 = 1007;
/// Policy: more frames per second than WebSocketMaxRate, no pong.
pub const POLICY: u16 = 1008;
/// A message over WebSocketMaxMessage.
pub const TOO_BIG: u16 = 1009;

/// Append the head of a final, unmasked server frame of `len` bytes.
pub fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Append a whole server frame.
pub fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    push_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// Append a close frame; the reason is cut to what a control frame holds.
pub fn push_close(out: &mut Vec<u8>, close: CloseFrame) {
    let mut reason = close.reason;
    while reason.len() > MAX_CONTROL_PAYLOAD - 2 {
        let mut cut = MAX_CONTROL_PAYLOAD - 2;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason = &reason[..cut];
    }
    push_header(out, OP_CLOSE, 2 + reason.len());
    out.extend_from_slice(&close.code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
}

/// The head of a client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub fin: bool,
    pub opcode: u8,
    pub mask: [u8; 4],
    /// Payload bytes (at most the limit given to [`parse_head`]).
    pub len: usize,
    /// Bytes of the head itself.
    pub head_len: usize,
}

impl Head {
    /// Bytes of the whole frame.
    pub fn frame_len(&self) -> usize {
        self.head_len + self.len
    }
}

/// Read a client frame's head from the start of `buf`: `Ok(None)` while
/// it is incomplete; `Err` with the close the frame deserves. A data
/// frame longer than `max_payload` is refused from its head alone, so
/// nothing of it is buffered.
pub fn parse_head(buf: &[u8], max_payload: usize) -> Result<Option<Head>, ClientClose> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(ClientClose::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(ClientClose::UnknownOpcode);
    }
    if b1 & 0x80 == 0 {
        return Err(ClientClose::Unmasked);
    }
    let (len, at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            None => return Ok(None),
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
        },
        127 => match buf.get(2..10) {
            None => return Ok(None),
            Some(b) => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(b);
                let len = u64::from_be_bytes(bytes);
                if len >> 63 != 0 {
                    return Err(ClientClose::BadLength);
                }
                (len, 10)
            }
        },
        n => (u64::from(n), 2),
    };
    let control = opcode & 0x8 != 0;
    if control && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
        return Err(ClientClose::ControlFrame);
    }
    if len > max_payload as u64 {
        return Err(ClientClose::TooBig);
    }
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Head {
        fin,
        opcode,
        mask: [mask[0], mask[1], mask[2], mask[3]],
        len: len as usize,
        head_len: at + 4,
    }))
}

/// Undo the client's masking of `payload` in place.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Whether a client may send `code` in a close frame (RFC 6455 7.4 and
/// the IANA registry's 1012-1014).
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as a browser sends it.
    pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        unmask(&mut body, mask);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        let mut out = Vec::new();
        push_header(&mut out, OP_TEXT, 125);
        assert_eq!(out, [0x81, 125]);
        out.clear();
        push_header(&mut out, OP_TEXT, 126);
        assert_eq!(out, [0x81, 126, 0, 126]);
        out.clear();
        push_header(&mut out, OP_TEXT, 65536);
        assert_eq!(out, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn close_frames_carry_code_and_reason() {
        let mut out = Vec::new();
        push_close(&mut out, CloseFrame::new(1001, "bye"));
        assert_eq!(out, b"\x88\x05\x03\xe9bye");
        out.clear();
        let long: &'static str = "é".repeat(100).leak();
        push_close(&mut out, CloseFrame::new(1000, long));
        assert_eq!(out.len(), 2 + 2 + 122, "the reason is cut at a character");
    }

    #[test]
    fn a_client_frame_reads_back() {
        let frame = client_frame(true, OP_TEXT, b"hello", [1, 2, 3, 4]);
        let head = parse_head(&frame, 100).unwrap().unwrap();
        assert_eq!(
            (head.fin, head.opcode, head.len, head.head_len),
            (true, 1, 5, 6)
        );
        let mut payload = frame[head.head_len..].to_vec();
        unmask(&mut payload, head.mask);
        assert_eq!(payload, b"hello");
        for cut in 0..head.head_len {
            assert_eq!(parse_head(&frame[..cut], 100), Ok(None), "{cut}");
        }
        let long = client_frame(true, OP_BINARY, &[7; 300], [9, 9, 9, 9]);
        let head = parse_head(&long, 1000).unwrap().unwrap();
        assert_eq!((head.len, head.head_len), (300, 8));
        let huge = client_frame(false, OP_BINARY, &[7; 70_000], [9, 9, 9, 9]);
        let head = parse_head(&huge, 100_000).unwrap().unwrap();
        assert_eq!((head.fin, head.len, head.head_len), (false, 70_000, 14));
    }

    #[test]
    fn frames_a_server_must_refuse() {
        let code = |frame: &[u8]| parse_head(frame, 1000).unwrap_err().frame().code;
        assert_eq!(code(b"\x81\x05hello"), PROTOCOL_ERROR, "unmasked");
        assert_eq!(code(b"\xc1\x80abcd"), PROTOCOL_ERROR, "RSV1");
        assert_eq!(code(b"\x83\x80abcd"), PROTOCOL_ERROR, "opcode 3");
        assert_eq!(code(b"\x09\x80abcd"), PROTOCOL_ERROR, "fragmented ping");
        assert_eq!(code(b"\x89\xfe\x00\x7e"), PROTOCOL_ERROR, "126-byte ping");
        assert_eq!(code(b"\x81\xfe\x03\xe9"), TOO_BIG, "1001 bytes");
        assert_eq!(
            code(b"\x81\xff\x80\0\0\0\0\0\0\0"),
            PROTOCOL_ERROR,
            "length with its top bit"
        );
    }

    #[test]
    fn close_codes_a_client_may_send() {
        for ok in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(valid_close_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!valid_close_code(bad), "{bad}");
        }
    }
}
