//! What the server publishes for a chat message: a small envelope around the message's
//! bytes, sans-IO. It carries the origin (the publishing process's random id), so that a
//! worker skips the copy of its own message that comes back from its subscription (it
//! fanned that one out locally at once), and the opcode, so that binary messages stay
//! binary. Bytes without the envelope are a plain `PUBLISH` from another service: they
//! go to the room as a text message when they are UTF-8 (§5.6: a text frame must be),
//! else as a binary one.
//!
//! Layout: `0xFF 'W' 'S' 'R'`, the origin (8 bytes, big-endian), the opcode (1 byte:
//! 0x1 text, 0x2 binary), then the payload. No UTF-8 text starts with 0xFF (RFC 3629 §3).

use crate::protocol::frame::{FrameHeader, OpCode, SharedFrame};

const MAGIC: &[u8; 4] = b"\xffWSR";
const HEADER_LEN: usize = MAGIC.len() + 8 + 1;

/// A message read from a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The process that published it, if it came from a wsreactor server.
    pub origin: Option<u64>,
    /// Text or binary.
    pub opcode: OpCode,
    /// The message's bytes.
    pub payload: &'a [u8],
}

/// Appends the envelope of a chat message, encoded as the server frame `frame`, from
/// `origin`, to `out`. Returns false (and appends nothing) for a frame that is not a
/// whole data frame, which a chat message always is.
pub fn seal(origin: u64, frame: &SharedFrame, out: &mut Vec<u8>) -> bool {
    let bytes = frame.bytes();
    let Ok(Some((header, len))) = FrameHeader::decode(bytes) else {
        return false;
    };
    if header.opcode.is_control() || !header.fin {
        return false;
    }
    out.reserve(HEADER_LEN + bytes.len() - len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&origin.to_be_bytes());
    out.push(header.opcode.as_u8());
    out.extend_from_slice(&bytes[len..]);
    true
}

/// Reads what was published: an envelope, or the plain bytes of another service.
pub fn open(published: &[u8]) -> Opened<'_> {
    if let Some(rest) = published.strip_prefix(MAGIC) {
        if rest.len() >= 9 {
            let origin = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
            let opcode = match rest[8] {
                0x2 => OpCode::Binary,
                _ => OpCode::Text,
            };
            return Opened {
                origin: Some(origin),
                opcode,
                payload: &rest[9..],
            };
        }
    }
    let opcode = if std::str::from_utf8(published).is_ok() {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    Opened {
        origin: None,
        opcode,
        payload: published,
    }
}

impl Opened<'_> {
    /// The message as a frame for the room's members.
    pub fn frame(&self) -> SharedFrame {
        SharedFrame::new(self.opcode, self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_to_itself() {
        for (opcode, payload) in [
            (OpCode::Text, &b"hello"[..]),
            (OpCode::Binary, &[0xff, 0, 1][..]),
            (OpCode::Text, &[b'x'; 70_000][..]),
            (OpCode::Text, &b""[..]),
        ] {
            let frame = SharedFrame::new(opcode, payload);
            let mut out = vec![7];
            assert!(seal(42, &frame, &mut out));
            let opened = open(&out[1..]);
            assert_eq!(opened.origin, Some(42));
            assert_eq!(opened.opcode, opcode);
            assert_eq!(opened.payload, payload);
            assert_eq!(opened.frame(), frame);
        }
    }

    #[test]
    fn plain_bytes_are_text_when_utf8_else_binary() {
        let text = open("héllo".as_bytes());
        assert_eq!((text.origin, text.opcode), (None, OpCode::Text));
        assert_eq!(text.payload, "héllo".as_bytes());
        assert_eq!(open(b"\xfe\x00").opcode, OpCode::Binary);
        assert_eq!(open(b"").opcode, OpCode::Text);
        // The magic alone, too short to be an envelope, is another service's bytes.
        assert_eq!(open(b"\xffWSR\x00").origin, None);
    }

    #[test]
    fn control_frames_are_not_sealed() {
        let close = SharedFrame::new(OpCode::Close, b"");
        let mut out = Vec::new();
        assert!(!seal(1, &close, &mut out));
        assert!(out.is_empty());
    }
}
