//! Echo payloads: bytes that are a pure function of (connection seed, echo sequence,
//! offset), so an echo can be checked byte for byte as it streams back in pieces without
//! keeping a copy of what was sent (a connection stores 8 bytes, not the message).
//!
//! Three kinds ([`Payload`], `--payload`), for what deflate makes of them: printable
//! ASCII of 6 random bits a byte (the default), words of text (compressible), and
//! random bytes (incompressible). ASCII and text are valid UTF-8 and go out as Text
//! (even sequence numbers) or Binary (odd), exercising both of a server's paths; random
//! bytes always go out as Binary.

use super::rng::mix;
use crate::protocol::frame::OpCode;

/// What echo payloads are made of (`--payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Payload {
    /// Printable ASCII, 6 random bits a byte: deflate's Huffman codes take about a
    /// quarter off, and it has no repeats to find.
    #[default]
    Ascii,
    /// Text: a word of 8 letters and spaces a block, one of 64: deflate finds its
    /// repeats, as in the chat and JSON messages it is used for.
    Compressible,
    /// Random bytes (every bit random), which deflate cannot shrink: always Binary.
    Random,
}

/// The words [`Payload::Compressible`] is made of, 8 bytes each.
const WORDS: [&[u8; 8]; 64] = [
    b"the room",
    b" message",
    b" server ",
    b"reactor ",
    b"socket. ",
    b"a frame ",
    b"window, ",
    b"and its ",
    b"latency ",
    b"of each ",
    b"client. ",
    b"to join ",
    b"the chat",
    b" echoes ",
    b"deflate ",
    b"with no ",
    b"context ",
    b"takeover",
    b" per se ",
    b"memory, ",
    b"is held ",
    b"by this ",
    b"process ",
    b"one of  ",
    b"several ",
    b"numbers ",
    b"in JSON ",
    b"{\"id\":  ",
    b"\"user\": ",
    b"\"text\": ",
    b"true},  ",
    b"null,   ",
    b"between ",
    b"hello,  ",
    b"world.  ",
    b"Lorem   ",
    b"ipsum   ",
    b"dolor   ",
    b"sit amet",
    b", consec",
    b"tetur   ",
    b"elit sed",
    b" do the ",
    b"tempor  ",
    b"labore  ",
    b"et magna",
    b" aliqua ",
    b"quis    ",
    b"nostrud ",
    b"exercise",
    b"ullamco ",
    b"laboris ",
    b"nisi ut ",
    b"aliquip ",
    b"ex ea   ",
    b"commodo ",
    b"duis aut",
    b"irure in",
    b" reprehe",
    b"nderit  ",
    b"voluptat",
    b"velit   ",
    b"esse    ",
    b"cillum. ",
];

impl Payload {
    /// Its name, as `--payload` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Payload::Ascii => "ascii",
            Payload::Compressible => "compressible",
            Payload::Random => "random",
        }
    }

    /// The opcode of echo number `seq`.
    pub fn opcode(self, seq: u32) -> OpCode {
        if self != Payload::Random && seq.is_multiple_of(2) {
            OpCode::Text
        } else {
            OpCode::Binary
        }
    }

    /// Writes the payload bytes at `offset .. offset + out.len()` of echo (`seed`,
    /// `seq`).
    pub fn fill(self, seed: u32, seq: u32, offset: u64, out: &mut [u8]) {
        fill_with(self, seed, seq, offset, out)
    }

    /// Whether `got` equals the payload bytes at `offset ..` of echo (`seed`, `seq`).
    pub fn matches(self, seed: u32, seq: u32, offset: u64, got: &[u8]) -> bool {
        matches_with(self, seed, seq, offset, got)
    }
}

/// The opcode of echo number `seq` of the default payload.
pub fn opcode(seq: u32) -> OpCode {
    Payload::Ascii.opcode(seq)
}

/// The 8 payload bytes of block `block` (offsets `8*block .. 8*block+8`), little-endian
/// in a word. ASCII: each byte is 0x20 + 6 bits of the hash, printable from `' '` to
/// `'_'` (a mask and an add on the whole word: no carry crosses a byte, as 0x3F + 0x20 <
/// 0x100); text: the word that 6 bits of the hash pick; random: the hash.
fn block_word(kind: Payload, seed: u32, seq: u32, block: u64) -> u64 {
    let key = (u64::from(seed) << 32) | u64::from(seq);
    let h = mix(key ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    match kind {
        Payload::Ascii => (h & 0x3F3F_3F3F_3F3F_3F3F) + 0x2020_2020_2020_2020,
        Payload::Compressible => u64::from_le_bytes(*WORDS[(h >> 58) as usize]),
        Payload::Random => h,
    }
}

/// Writes the payload bytes at `offset .. offset + out.len()` of echo (`seed`, `seq`):
/// the unaligned head and tail byte by byte, whole blocks a word at a time (a 64 KiB
/// echo is filled and checked in microseconds, so the load generator keeps up with the
/// servers it measures).
pub fn fill(seed: u32, seq: u32, offset: u64, out: &mut [u8]) {
    fill_with(Payload::Ascii, seed, seq, offset, out)
}

#[inline]
fn fill_with(kind: Payload, seed: u32, seq: u32, offset: u64, out: &mut [u8]) {
    let head = ((8 - offset % 8) % 8).min(out.len() as u64) as usize;
    let (first, rest) = out.split_at_mut(head);
    for (i, b) in first.iter_mut().enumerate() {
        let pos = offset + i as u64;
        *b = block_word(kind, seed, seq, pos / 8).to_le_bytes()[(pos % 8) as usize];
    }
    let mut block = (offset + head as u64) / 8;
    let mut chunks = rest.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&block_word(kind, seed, seq, block).to_le_bytes());
        block += 1;
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let bytes = block_word(kind, seed, seq, block).to_le_bytes();
        tail.copy_from_slice(&bytes[..tail.len()]);
    }
}

/// Whether `got` equals the payload bytes at `offset ..` of echo (`seed`, `seq`).
pub fn matches(seed: u32, seq: u32, offset: u64, got: &[u8]) -> bool {
    matches_with(Payload::Ascii, seed, seq, offset, got)
}

#[inline]
fn matches_with(kind: Payload, seed: u32, seq: u32, offset: u64, got: &[u8]) -> bool {
    let head = ((8 - offset % 8) % 8).min(got.len() as u64) as usize;
    let (first, rest) = got.split_at(head);
    let mut want = [0u8; 8];
    fill_with(kind, seed, seq, offset, &mut want[..head]);
    if want[..head] != *first {
        return false;
    }
    let mut block = (offset + head as u64) / 8;
    let mut chunks = rest.chunks_exact(8);
    for c in &mut chunks {
        if u64::from_le_bytes(c.try_into().expect("8 bytes")) != block_word(kind, seed, seq, block)
        {
            return false;
        }
        block += 1;
    }
    let tail = chunks.remainder();
    tail.is_empty() || tail == &block_word(kind, seed, seq, block).to_le_bytes()[..tail.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filling_in_pieces_equals_filling_whole() {
        let mut whole = vec![0u8; 1000];
        fill(7, 3, 0, &mut whole);
        assert!(whole.iter().all(|b| (0x20..=0x5F).contains(b)));
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
    fn every_piece_at_every_offset_is_the_whole_payloads() {
        let mut whole = vec![0u8; 64];
        fill(9, 4, 0, &mut whole);
        for offset in 0..24 {
            for len in 0..=(64 - offset) {
                let mut piece = vec![0u8; len];
                fill(9, 4, offset as u64, &mut piece);
                assert_eq!(piece, whole[offset..offset + len], "{offset}+{len}");
                assert!(matches(9, 4, offset as u64, &piece));
                for i in 0..len {
                    let mut bad = piece.clone();
                    bad[i] ^= 0x40;
                    assert!(
                        !matches(9, 4, offset as u64, &bad),
                        "{offset}+{len} byte {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_kinds_are_what_deflate_makes_of_them() {
        use crate::protocol::deflate::Codec;
        let mut codec = Codec::default();
        let mut ratio = |kind: Payload| {
            let mut p = vec![0u8; 64 * 1024];
            kind.fill(3, 2, 0, &mut p);
            for cut in [1usize, 7, 8, 1000] {
                assert!(kind.matches(3, 2, 0, &p[..cut]));
                assert!(kind.matches(3, 2, cut as u64, &p[cut..]));
            }
            assert!(!kind.matches(3, 3, 0, &p));
            let text = std::str::from_utf8(&p).is_ok();
            (codec.compress(&p, 15).len() as f64 / p.len() as f64, text)
        };
        let (ascii, ascii_text) = ratio(Payload::Ascii);
        let (words, words_text) = ratio(Payload::Compressible);
        let (random, random_text) = ratio(Payload::Random);
        assert!((0.7..0.8).contains(&ascii), "ascii {ascii}");
        assert!(words < 0.4, "compressible {words}");
        assert!(random > 1.0, "random {random}");
        assert!(ascii_text && words_text && !random_text);
        assert_eq!(Payload::Compressible.opcode(0), OpCode::Text);
        assert_eq!(Payload::Random.opcode(0), OpCode::Binary);
        assert_eq!(Payload::Random.opcode(1), OpCode::Binary);
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
