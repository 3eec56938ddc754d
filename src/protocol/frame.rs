//! Frame header decode/encode and payload masking (RFC 6455 §5.2, §5.3).
//!
//! Pure functions over byte slices. Decoding consumes nothing until a whole header is
//! present (`Ok(None)`), so a caller can keep the unconsumed bytes and retry later.

use std::rc::Rc;

use super::error::ProtocolError;

/// The longest possible frame header: 2 + 8 (64-bit length) + 4 (mask key).
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: a later fragment of a message (§5.4).
    Continuation,
    /// 0x1: a text message, UTF-8 (§5.6).
    Text,
    /// 0x2: a binary message.
    Binary,
    /// 0x8: the closing handshake (§5.5.1).
    Close,
    /// 0x9: a heartbeat, to be answered with a Pong (§5.5.2).
    Ping,
    /// 0xA: the answer to a Ping, or an unsolicited heartbeat (§5.5.3).
    Pong,
}

impl OpCode {
    /// Decodes the low nibble of the first header byte; reserved opcodes are errors.
    pub fn from_u8(v: u8) -> Result<OpCode, ProtocolError> {
        Ok(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return Err(ProtocolError::ReservedOpCode),
        })
    }

    /// The opcode's value in the low nibble of the first header byte.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Control frames have the high bit of the opcode set (§5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this frame ends its message (§5.4).
    pub fin: bool,
    /// RSV1: with permessage-deflate negotiated, the message this frame starts is
    /// compressed (RFC 7692 §6). Meaningless (and refused) without it.
    pub rsv1: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key: every client frame has one, no server frame does (§5.3).
    pub mask: Option<[u8; 4]>,
    /// The payload's length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`: `Ok(Some((header, header_len)))` when
    /// complete, `Ok(None)` when more bytes are needed (nothing consumed), or the RFC
    /// violation the header itself shows. RSV2 and RSV3 are rejected, since no extension
    /// that uses them is ever negotiated (§5.2); RSV1 is reported for the receiver to
    /// judge (only permessage-deflate gives it a meaning, RFC 7692 §6).
    // Inlined into the receiver's loop, as it was before RSV1 made it a little larger:
    // called once per frame, it is the hot path of small messages.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x30 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let rsv1 = b0 & RSV1 != 0;
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7F {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(b.try_into().expect("8-byte slice"));
                // §5.2: "the most significant bit MUST be 0".
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTopBit);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if opcode.is_control() {
            // §5.5: control frames are at most 125 bytes and never fragmented.
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong);
            }
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
        }
        let mask = if masked {
            let Some(b) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([b[0], b[1], b[2], b[3]])
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv1,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Encodes the header into a stack array; returns the array and the used length.
    /// The minimal length encoding is always used (§5.2).
    pub fn encode(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut out = [0u8; MAX_HEADER_LEN];
        out[0] = (u8::from(self.fin) << 7) | if self.rsv1 { RSV1 } else { 0 } | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.payload_len {
            n if n < 126 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n if n <= u64::from(u16::MAX) => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[pos..pos + 4].copy_from_slice(&key);
            pos += 4;
        }
        (out, pos)
    }
}

/// Appends one frame to `out` (§5.2): the header, then `len` payload bytes that `fill`
/// writes, masked with `mask` if given (§5.3: every client frame is masked, with a
/// fresh key per frame; server frames never are). `fin` is false on every fragment of a
/// message but its last (§5.4).
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let header = FrameHeader {
        fin,
        rsv1: false,
        opcode,
        mask,
        payload_len: len as u64,
    };
    let (head, n) = header.encode();
    let start = out.len() + n;
    out.extend_from_slice(&head[..n]);
    out.resize(start + len, 0);
    fill(&mut out[start..]);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// RSV1 in a frame's first byte: a compressed message with permessage-deflate.
pub const RSV1: u8 = 0x40;

/// One whole, unmasked server frame (§5.2) with FIN set, encoded once to be sent as the
/// same bytes on many connections (a chat message to every member of its room). Only
/// [`SharedFrame::new`] makes one, so a connection handed a `SharedFrame` is always handed
/// a whole frame, never bytes that would cut into its own framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFrame(Rc<[u8]>);

impl SharedFrame {
    /// Encodes `payload` as one unfragmented server frame of `opcode`.
    pub fn new(opcode: OpCode, payload: &[u8]) -> SharedFrame {
        SharedFrame(Self::encode(opcode, payload).into())
    }

    /// Encodes a message compressed by permessage-deflate as one unfragmented server
    /// frame of `opcode` with RSV1 set (RFC 7692 §6), for the connections that agreed to
    /// it (a core sends it only on such a connection).
    pub fn compressed(opcode: OpCode, compressed: &[u8]) -> SharedFrame {
        let mut frame = Self::encode(opcode, compressed);
        frame[0] |= RSV1;
        SharedFrame(frame.into())
    }

    fn encode(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        // A server frame's header is 10 bytes at most: no masking key (§5.1).
        let mut frame = Vec::with_capacity(payload.len() + 10);
        encode_frame(&mut frame, true, opcode, None, payload.len(), |p| {
            p.copy_from_slice(payload)
        });
        frame
    }

    /// Whether this frame carries a compressed message (RSV1).
    pub fn is_compressed(&self) -> bool {
        self.0.first().is_some_and(|b| b & RSV1 != 0)
    }

    /// Whether this is a Close frame, which only a connection's own core may send: after
    /// it nothing else may go out (§5.5.1), and only the core knows when that is.
    pub fn is_close(&self) -> bool {
        self.0.first().map(|b| b & 0x0F) == Some(OpCode::Close.as_u8())
    }

    /// The encoded frame, header and payload.
    pub fn bytes(&self) -> &Rc<[u8]> {
        &self.0
    }
}

/// XORs `buf` with the mask `key`, where `buf` starts `offset` bytes into the payload
/// (§5.3: octet i is XORed with key[i mod 4]). Masking is its own inverse.
///
/// Works a machine word at a time: the key is rotated to the offset once, then applied
/// as a `u64` to 8-byte chunks, which the compiler vectorises.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut k = [0u8; 4];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[(offset + i) % 4];
    }
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8-byte chunk")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // The whole chunks covered a multiple of 4 bytes, so the tail starts at key offset 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn fast_mask_matches_bytewise_reference_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..70 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                mask_reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                apply_mask(&mut fast, key, offset);
                assert_eq!(fast, data, "masking is its own inverse");
            }
        }
    }

    #[test]
    fn split_masking_equals_whole_masking() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for cut in 0..data.len() {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(parts, whole, "cut at {cut}");
        }
    }

    #[test]
    fn rfc_5_7_examples_decode() {
        // A single-frame unmasked text message "Hello".
        let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = FrameHeader::decode(&unmasked).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, OpCode::Text, None, 5, 2)
        );
        // A single-frame masked text message "Hello".
        let mut masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = FrameHeader::decode(&masked).unwrap().unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        apply_mask(&mut masked[n..], h.mask.unwrap(), 0);
        assert_eq!(&masked[n..], b"Hello");
        // A fragmented unmasked text message: "Hel" then "lo".
        let (h, _) = FrameHeader::decode(&[0x01, 0x03]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (false, OpCode::Text));
        let (h, _) = FrameHeader::decode(&[0x80, 0x02]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (true, OpCode::Continuation));
        // 256 bytes binary message in a single unmasked frame.
        let (h, n) = FrameHeader::decode(&[0x82, 0x7E, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (256, 4));
        // 64KiB binary message in a single unmasked frame.
        let (h, n) = FrameHeader::decode(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn every_prefix_of_a_header_is_partial() {
        for header in [
            FrameHeader {
                fin: true,
                rsv1: false,
                opcode: OpCode::Binary,
                mask: Some([9, 8, 7, 6]),
                payload_len: 70_000,
            },
            FrameHeader {
                fin: false,
                rsv1: true,
                opcode: OpCode::Text,
                mask: Some([1, 1, 1, 1]),
                payload_len: 300,
            },
            FrameHeader {
                fin: true,
                rsv1: false,
                opcode: OpCode::Ping,
                mask: None,
                payload_len: 5,
            },
        ] {
            let (bytes, len) = header.encode();
            for cut in 0..len {
                assert_eq!(FrameHeader::decode(&bytes[..cut]), Ok(None), "cut {cut}");
            }
            assert_eq!(FrameHeader::decode(&bytes[..len]), Ok(Some((header, len))));
        }
    }

    #[test]
    fn encode_uses_minimal_length_forms() {
        let len_of = |n| {
            FrameHeader {
                fin: true,
                rsv1: false,
                opcode: OpCode::Binary,
                mask: None,
                payload_len: n,
            }
            .encode()
            .1
        };
        assert_eq!(
            [len_of(0), len_of(125), len_of(126), len_of(65535)],
            [2, 2, 4, 4]
        );
        assert_eq!([len_of(65536), len_of(1 << 40)], [10, 10]);
    }

    #[test]
    fn header_violations_are_rejected() {
        use ProtocolError::*;
        // RSV2 and RSV3 never have a meaning here; RSV1 is the receiver's to judge.
        assert_eq!(FrameHeader::decode(&[0xA1, 0x80]), Err(ReservedBits));
        assert_eq!(FrameHeader::decode(&[0x91, 0x80]), Err(ReservedBits));
        let rsv1 = FrameHeader::decode(&[0xC1, 0x80, 1, 2, 3, 4])
            .unwrap()
            .unwrap();
        assert!(rsv1.0.rsv1 && rsv1.0.fin);
        assert_eq!(FrameHeader::decode(&[0x83, 0x80]), Err(ReservedOpCode));
        assert_eq!(FrameHeader::decode(&[0x8B, 0x80]), Err(ReservedOpCode));
        assert_eq!(
            FrameHeader::decode(&[0x89, 0xFE, 0, 126]),
            Err(ControlTooLong)
        );
        assert_eq!(FrameHeader::decode(&[0x09, 0x80]), Err(FragmentedControl));
        let mut top = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(FrameHeader::decode(&top), Err(LengthTopBit));
        top[2] = 0x7F;
        assert!(
            FrameHeader::decode(&top).unwrap().is_none(),
            "needs the mask key"
        );
    }
}
