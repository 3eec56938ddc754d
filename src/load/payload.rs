//! Echo payloads: bytes that are a pure function of (connection seed, echo sequence,
//! offset), so an echo can be checked byte for byte as it streams back in pieces without
//! keeping a copy of what was sent (a connection stores 8 bytes, not the message).
//!
//! Bytes are printable ASCII, so every payload is valid UTF-8 and may go out as Text
//! (even sequence numbers) or Binary (odd), exercising both of a server's paths.

use super::rng::mix;
use crate::protocol::frame::OpCode;

/// The opcode of echo number `seq`.
pub fn opcode(seq: u32) -> OpCode {
    if seq.is_multiple_of(2) {
        OpCode::Text
    } else {
        OpCode::Binary
    }
}

/// The 8 payload bytes of block `block` (offsets `8*block .. 8*block+8`).
fn block_bytes(seed: u32, seq: u32, block: u64) -> [u8; 8] {
    let key = (u64::from(seed) << 32) | u64::from(seq);
    let h = mix(key ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // 0x20..=0x7E: printable ASCII (the modulo bias is irrelevant here).
    h.to_le_bytes().map(|b| 0x20 + b % 95)
}

/// Writes the payload bytes at `offset .. offset + out.len()` of echo (`seed`, `seq`).
pub fn fill(seed: u32, seq: u32, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut rest = out;
    while !rest.is_empty() {
        let bytes = block_bytes(seed, seq, pos / 8);
        let from = (pos % 8) as usize;
        let n = (8 - from).min(rest.len());
        rest[..n].copy_from_slice(&bytes[from..from + n]);
        rest = &mut rest[n..];
        pos += n as u64;
    }
}

/// Whether `got` equals the payload bytes at `offset ..` of echo (`seed`, `seq`).
pub fn matches(seed: u32, seq: u32, offset: u64, got: &[u8]) -> bool {
    let mut expected = [0u8; 256];
    let mut pos = offset;
    for piece in got.chunks(expected.len()) {
        let want = &mut expected[..piece.len()];
        fill(seed, seq, pos, want);
        if want != piece {
            return false;
        }
        pos += piece.len() as u64;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filling_in_pieces_equals_filling_whole() {
        let mut whole = vec![0u8; 1000];
        fill(7, 3, 0, &mut whole);
        assert!(whole.iter().all(|b| (0x20..=0x7E).contains(b)));
        assert!(std::str::from_utf8(&whole).is_ok());
        for cut in [0usize, 1, 3, 7, 8, 9, 255, 256, 257, 999] {
            let mut parts = vec![0u8; 1000];
            let (a, b) = parts.split_at_mut(cut);
            fill(7, 3, 0, a);
            fill(7, 3, cut as u64, b);
            assert_eq!(parts, whole, "cut {cut}");
            assert!(matches(7, 3, 0, &whole[..cut]));
            assert!(matches(7, 3, cut as u64, &whole[cut..]));
        }
    }

    #[test]
    fn any_changed_byte_or_key_is_a_mismatch() {
        let mut p = vec![0u8; 600];
        fill(1, 1, 0, &mut p);
        for i in [0usize, 5, 255, 256, 599] {
            let mut bad = p.clone();
            bad[i] ^= 1;
            assert!(!matches(1, 1, 0, &bad), "byte {i}");
        }
        assert!(!matches(2, 1, 0, &p));
        assert!(!matches(1, 2, 0, &p));
        assert!(!matches(1, 1, 0, &p[1..]), "shifted by one");
        assert_eq!(opcode(0), OpCode::Text);
        assert_eq!(opcode(1), OpCode::Binary);
    }
}
