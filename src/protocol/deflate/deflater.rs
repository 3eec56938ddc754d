//! Compressing a message (RFC 7692 §7.2.1), with one compressor shared by every
//! connection of a reactor: each message is compressed on its own, and the compressor is
//! reset after each; with context takeover it is first primed with the connection's
//! last window of what it sent.

use flate2::{Compress, Compression, FlushCompress};

/// A reactor's compressor.
#[derive(Debug)]
pub struct Deflater {
    z: Compress,
}

impl Deflater {
    /// A compressor whose window is at most `window_bits` (8 to 15) bits. zlib and its
    /// ports have no 256-byte window for raw deflate, so for 8 bits it writes stored
    /// blocks only (level 0), which refer to nothing before them and so fit any window.
    pub fn new(window_bits: u8) -> Deflater {
        // Written as a clamp and a comparison, not as a match on `..=8`: rustc 1.95 in
        // release builds took the second arm's `bits` for 8 (found by fuzz/inflate).
        let bits = window_bits.clamp(9, 15);
        let level = if window_bits < 9 {
            Compression::none()
        } else {
            Compression::default()
        };
        Deflater {
            z: Compress::new_with_window_bits(level, false, bits),
        }
    }

    /// Gives the next message the context the client will inflate it after (context
    /// takeover, RFC 7692 §7.1.1): the last window of what the server sent it before.
    /// A compressor that refused it would refer to nothing before the message, which
    /// the client inflates just as well.
    pub fn prime(&mut self, dictionary: &[u8]) {
        if !dictionary.is_empty() {
            let _ = self.z.set_dictionary(dictionary);
        }
    }

    /// Compresses `payload` as one message into `out` (replacing what it held): the
    /// deflate data of a sync flush without its last four bytes `00 00 FF FF` (§7.2.1).
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(payload.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity());
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&payload[pos..], out, FlushCompress::Sync)
                .expect("deflate never fails on memory it was given");
            pos += (self.z.total_in() - before) as usize;
            // The flush is complete once all input is in and output room was left over.
            if pos == payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        debug_assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
        out.truncate(out.len().saturating_sub(4));
        self.z.reset();
    }
}
