//! A chat message as the members of its room get it: one encoding for the members
//! without permessage-deflate, and on a server with `--deflate` one compressed encoding
//! shared by the members that agreed to it (RFC 7692), so that a room compresses each
//! message once, however many members it has.

use crate::protocol::deflate::{Agreement, Codec};
use crate::protocol::frame::{OpCode, SharedFrame};

/// A message shorter than this goes uncompressed to everyone: RSV1 is per message (RFC
/// 7692 §6), and deflate cannot gain enough on a few bytes to pay for its block header.
const COMPRESS_FROM: usize = 64;

/// A chat message, encoded once per kind of member.
#[derive(Debug, Clone)]
pub struct RoomMessage {
    plain: SharedFrame,
    /// Compressed without context with a 15-bit window, if worth it.
    compressed: Option<SharedFrame>,
}

impl RoomMessage {
    /// A message of `opcode` whose payload is `plain`, with `compressed` the same
    /// message compressed without context (with any window), if there is one.
    pub fn new(opcode: OpCode, plain: &[u8], compressed: Option<&[u8]>) -> RoomMessage {
        RoomMessage {
            plain: SharedFrame::new(opcode, plain),
            compressed: compressed.map(|c| SharedFrame::compressed(opcode, c)),
        }
    }

    /// A message of `opcode` whose payload is `plain`, compressed once with the
    /// reactor's codec if that is worth it.
    pub fn compressing(opcode: OpCode, plain: &[u8], codec: &mut Codec) -> RoomMessage {
        let compressed = (plain.len() >= COMPRESS_FROM)
            .then(|| codec.compress(plain, 15))
            .filter(|compressed| compressed.len() < plain.len());
        RoomMessage::new(opcode, plain, compressed)
    }

    /// A message that came from another process (`--pubsub`, or another worker) as a
    /// plain frame: it goes to every member as it came, uncompressed, which RFC 7692 §6
    /// allows since compression is chosen per message.
    pub fn uncompressed(plain: SharedFrame) -> RoomMessage {
        RoomMessage {
            plain,
            compressed: None,
        }
    }

    /// The encoding for a member with this permessage-deflate agreement (if any): the
    /// compressed one only for a member that inflates with the full window and for
    /// which the server keeps no context.
    pub fn frame_for(&self, agreement: Option<Agreement>) -> &SharedFrame {
        match (&self.compressed, agreement) {
            (Some(compressed), Some(agreement)) if agreement.takes_full_window() => compressed,
            _ => &self.plain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::deflate::accept;

    #[test]
    fn each_member_gets_the_encoding_it_can_take() {
        let mut codec = Codec::default();
        let text = "a room message, compressed once for every member ".repeat(4);
        let message = RoomMessage::compressing(OpCode::Text, text.as_bytes(), &mut codec);
        let full = accept(std::iter::empty(), None).unwrap();
        let small = accept([&b"server_max_window_bits=10"[..]].into_iter(), None).unwrap();
        // A server that keeps a context for the member must compress after it: a
        // message compressed without it would leave that context stale.
        let kept = accept(std::iter::empty(), Some(15)).unwrap();
        assert!(message.frame_for(Some(full)).is_compressed());
        assert!(!message.frame_for(Some(small)).is_compressed());
        assert!(!message.frame_for(Some(kept)).is_compressed());
        assert!(!message.frame_for(None).is_compressed());
        // Too short to gain: plain for everyone.
        let short = RoomMessage::compressing(OpCode::Text, b"hi", &mut codec);
        assert!(!short.frame_for(Some(full)).is_compressed());
    }
}
