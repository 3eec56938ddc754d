//! permessage-deflate (RFC 7692): a transform between frames and messages. The receiver
//! marks a compressed message (RSV1 on its first frame); its bytes are gathered until it
//! is whole, then inflated here, its size held to the limit while it inflates and its
//! text checked as UTF-8, and what goes out compressed is compressed here.
//!
//! Files: `negotiation` (the offers and the answer, §7.1), `inflate` (§7.2.2),
//! `deflate` (§7.2.1). A reactor owns one [`Codec`] and lends it to each connection's
//! call, as it lends the configuration: no connection owns a zlib stream.

mod deflate;
mod inflate;
mod negotiation;

pub use deflate::Deflater;
pub use inflate::Inflater;
pub use negotiation::{accept, negotiate, Agreement, Declined};

use super::error::ProtocolError;
use super::utf8::Utf8Validator;

/// A reusable buffer grown past this is released after its message, so that one large
/// message does not stay in a reactor's memory.
const KEEP_CAPACITY: usize = 256 * 1024;

/// One reactor's compression state: a decompressor, a compressor, and a buffer for a
/// message while it is relayed. Shared by all its connections, one message at a time.
#[derive(Debug)]
pub struct Codec {
    inflater: Inflater,
    deflater: Deflater,
    buffer: Vec<u8>,
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            inflater: Inflater::default(),
            deflater: Deflater::new(15),
            buffer: Vec::new(),
        }
    }
}

impl Codec {
    /// Inflates a whole compressed message only to check it: its inflated size against
    /// `limit` and, for `text`, its UTF-8 (§8.1). Holds no more than a scratch buffer,
    /// whatever the message inflates to.
    pub fn check(
        &mut self,
        compressed: &[u8],
        text: bool,
        limit: u64,
    ) -> Result<(), ProtocolError> {
        let mut utf8 = Utf8Validator::default();
        self.inflater.inflate(compressed, text, limit, |piece| {
            if text {
                utf8.feed(piece)?;
            }
            Ok(())
        })?;
        if text {
            utf8.finish()?;
        }
        Ok(())
    }

    /// Inflates and checks a whole compressed message as [`check`](Self::check) does,
    /// and returns it inflated (in the codec's buffer, until the next call).
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        text: bool,
        limit: u64,
    ) -> Result<&[u8], ProtocolError> {
        self.reuse_buffer();
        let buffer = &mut self.buffer;
        let mut utf8 = Utf8Validator::default();
        self.inflater.inflate(compressed, text, limit, |piece| {
            if text {
                utf8.feed(piece)?;
            }
            buffer.extend_from_slice(piece);
            Ok(())
        })?;
        if text {
            utf8.finish()?;
        }
        Ok(&self.buffer)
    }

    /// Compresses a message (with a 15-bit window) and returns its bytes (in the codec's
    /// buffer, until the next call).
    pub fn compress(&mut self, payload: &[u8]) -> &[u8] {
        self.reuse_buffer();
        self.deflater.compress(payload, &mut self.buffer);
        &self.buffer
    }

    /// Empties the buffer, releasing it if a large message grew it.
    fn reuse_buffer(&mut self) {
        if self.buffer.capacity() > KEEP_CAPACITY {
            self.buffer = Vec::new();
        }
        self.buffer.clear();
    }
}
