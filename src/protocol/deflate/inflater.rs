//! Inflating a compressed message (RFC 7692 §7.2.2), with one decompressor shared by
//! every connection of a reactor: a message is inflated whole, once all its compressed
//! bytes are here, so no connection holds an inflate state between reads. Without
//! context takeover each message is a deflate stream of its own, and the decompressor is
//! reset after each.
//!
//! The inflated size counts against the limit *while* it inflates: a decompression bomb
//! is stopped at the limit, having produced at most one scratch buffer at a time.

use flate2::{Decompress, FlushDecompress, Status};

use crate::protocol::error::ProtocolError;

/// What §7.2.2 appends to a message's bytes before inflating it: the end of the empty
/// stored block that the sender's flush produced and removed (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// How much inflated output is handed on at a time.
const SCRATCH: usize = 32 * 1024;

/// A reactor's decompressor and its scratch buffer.
#[derive(Debug)]
pub struct Inflater {
    z: Decompress,
    scratch: Box<[u8]>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            // Raw deflate (no zlib header, §7.2.1) with the largest window: whatever
            // window the client compressed with (8 to 15 bits), a larger one inflates it.
            z: Decompress::new_with_window_bits(false, 15),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        }
    }
}

impl Inflater {
    /// Gives the next message the context it is inflated after (context takeover, RFC
    /// 7692 §7.1.1): the last window of what its sender sent before, inflated. Raw
    /// inflate takes a dictionary at any time (RFC 1951 streams have no dictionary id);
    /// one it refused would leave the message to fail as data that does not inflate.
    pub fn prime(&mut self, dictionary: &[u8]) {
        if !dictionary.is_empty() {
            let _ = self.z.set_dictionary(dictionary);
        }
    }

    /// Inflates one whole message, `compressed` as it arrived (its frames' payloads
    /// joined), handing the output to `sink` piece by piece, and returns its inflated
    /// length. More than `limit` bytes is [`ProtocolError::MessageTooBig`], found as soon
    /// as the output passes it; data that does not inflate is the error for a message of
    /// its kind (`text`): 1007 for text, 1002 for binary.
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        text: bool,
        limit: u64,
        sink: impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<u64, ProtocolError> {
        let result = self.run(compressed, text, limit, sink);
        // The next message starts afresh, whoever sends it: with context takeover, only
        // after it is primed with its sender's context.
        self.z.reset(false);
        result
    }

    fn run(
        &mut self,
        compressed: &[u8],
        text: bool,
        limit: u64,
        mut sink: impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<u64, ProtocolError> {
        let corrupt = if text {
            ProtocolError::BadCompressedText
        } else {
            ProtocolError::BadCompressedBinary
        };
        let mut total: u64 = 0;
        for input in [compressed, &TAIL[..]] {
            let mut pos = 0;
            loop {
                // One byte past the limit is enough to know it is passed.
                let room = limit.saturating_sub(total).saturating_add(1);
                let out_len = usize::try_from(room).map_or(SCRATCH, |r| r.min(SCRATCH));
                let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
                let status = self
                    .z
                    .decompress(
                        &input[pos..],
                        &mut self.scratch[..out_len],
                        FlushDecompress::Sync,
                    )
                    .map_err(|_| corrupt)?;
                let consumed = (self.z.total_in() - in_before) as usize;
                let produced = (self.z.total_out() - out_before) as usize;
                pos += consumed;
                total += produced as u64;
                if total > limit {
                    return Err(ProtocolError::MessageTooBig);
                }
                sink(&self.scratch[..produced])?;
                if status == Status::StreamEnd {
                    // A final block (BFINAL) ends the message; nothing of it may follow
                    // (the tail we append is not the sender's).
                    return if input.len() == compressed.len() && pos < input.len() {
                        Err(corrupt)
                    } else {
                        Ok(total)
                    };
                }
                if pos == input.len() && produced < out_len {
                    break;
                }
                if consumed == 0 && produced == 0 {
                    return Err(corrupt);
                }
            }
        }
        Ok(total)
    }
}
