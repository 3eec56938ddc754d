//! permessage-deflate (RFC 7692): a transform between frames and messages. The receiver
//! marks a compressed message (RSV1 on its first frame); its bytes are gathered until it
//! is whole, then inflated here, its size held to the limit while it inflates and its
//! text checked as UTF-8, and what goes out compressed is compressed here.
//!
//! Files: `negotiation` (the offers, §7.1), `agreement` (what was agreed, and the
//! answer), `client_offer` (the client's offer and its check of the answer), `inflater`
//! (§7.2.2), `deflater` (§7.2.1), `context` (a connection's context under context
//! takeover). A reactor owns one [`Codec`] and lends it to each connection's call, as it
//! lends the configuration: no connection owns a zlib stream. Under context takeover
//! (`--deflate-window`) the codec keeps each connection's last window of bytes each way,
//! by the caller's id for it, and primes its shared streams with them per message.

mod agreement;
mod client_offer;
mod context;
mod deflater;
mod inflater;
mod negotiation;

pub use agreement::{Agreement, Response};
pub use client_offer::{check_answer, ExtensionError, Offer};
pub use deflater::Deflater;
pub use inflater::Inflater;
pub use negotiation::{accept, negotiate, Declined};

use std::collections::HashMap;

use context::Context;

use super::error::ProtocolError;
use super::utf8::Utf8Validator;

/// A reusable buffer grown past this is released after its message, so that one large
/// message does not stay in a reactor's memory.
const KEEP_CAPACITY: usize = 256 * 1024;

/// One reactor's compression state: a decompressor, a compressor per window size asked
/// for (made on first use: most clients ask for none, and get 15 bits), and buffers for
/// a message while it is relayed. Shared by all its connections, one message at a time.
#[derive(Debug, Default)]
pub struct Codec {
    inflater: Inflater,
    /// Indexed by window bits minus 8 (RFC 7692 §7.1.2.1: 8 to 15).
    deflaters: [Option<Deflater>; 8],
    inflated: Vec<u8>,
    deflated: Vec<u8>,
    /// The contexts of the connections that keep one, by the caller's id for each.
    contexts: HashMap<usize, Context>,
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
        inflate_checked(&mut self.inflater, compressed, text, limit, |_| {})
    }

    /// Inflates and checks a whole compressed message as [`check`](Self::check) does,
    /// and returns it inflated (in the codec's buffer, until the next call).
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        text: bool,
        limit: u64,
    ) -> Result<&[u8], ProtocolError> {
        let inflated = reuse(&mut self.inflated);
        inflate_checked(&mut self.inflater, compressed, text, limit, |piece| {
            inflated.extend_from_slice(piece)
        })?;
        Ok(inflated)
    }

    /// Compresses a message with a window of at most `window_bits` (8 to 15) and
    /// returns its bytes (in the codec's buffer, until the next call).
    pub fn compress(&mut self, payload: &[u8], window_bits: u8) -> &[u8] {
        let deflated = reuse(&mut self.deflated);
        deflater(&mut self.deflaters, window_bits).compress(payload, deflated);
        deflated
    }
}

/// Context takeover (RFC 7692 §7.1.1): messages of a connection whose agreement keeps a
/// context, named by the caller's `id` for it (unique among its open connections).
impl Codec {
    /// Inflates and checks a whole compressed message from connection `id` as
    /// [`inflate`](Self::inflate) does, after the connection's context if the client
    /// keeps one (which then moves on past this message).
    pub fn inflate_from(
        &mut self,
        id: usize,
        agreement: Agreement,
        compressed: &[u8],
        text: bool,
        limit: u64,
    ) -> Result<&[u8], ProtocolError> {
        let inflated = reuse(&mut self.inflated);
        let (inflater, contexts) = (&mut self.inflater, &mut self.contexts);
        inflate_for(
            inflater,
            contexts,
            (id, agreement),
            compressed,
            text,
            limit,
            |piece| inflated.extend_from_slice(piece),
        )?;
        Ok(inflated)
    }

    /// Inflates a whole compressed message from connection `id` only to check it, as
    /// [`check`](Self::check) does, after the connection's context if the client keeps
    /// one (which then moves on past this message).
    pub fn check_from(
        &mut self,
        id: usize,
        agreement: Agreement,
        compressed: &[u8],
        text: bool,
        limit: u64,
    ) -> Result<(), ProtocolError> {
        let (inflater, contexts) = (&mut self.inflater, &mut self.contexts);
        inflate_for(
            inflater,
            contexts,
            (id, agreement),
            compressed,
            text,
            limit,
            |_| {},
        )
    }

    /// Compresses a message for connection `id` with the agreed window, after the
    /// server's context for it if the server keeps one (which then moves on past this
    /// message), and returns its bytes (in the codec's buffer, until the next call).
    pub fn compress_for(&mut self, id: usize, agreement: Agreement, payload: &[u8]) -> &[u8] {
        let bits = agreement.server_window_bits();
        if !agreement.server_takeover() {
            return self.compress(payload, bits);
        }
        let context = &mut self.contexts.entry(id).or_default().outbound;
        let deflater = deflater(&mut self.deflaters, bits);
        deflater.prime(context);
        let deflated = reuse(&mut self.deflated);
        deflater.compress(payload, deflated);
        context::slide(context, 1 << bits, payload);
        deflated
    }

    /// Inflates a message from connection `id` as [`inflate_from`](Self::inflate_from)
    /// does and compresses it for the same connection as
    /// [`compress_for`](Self::compress_for) does: an echo.
    pub fn recompress_for(
        &mut self,
        id: usize,
        agreement: Agreement,
        compressed: &[u8],
        text: bool,
        limit: u64,
    ) -> Result<&[u8], ProtocolError> {
        self.inflate_from(id, agreement, compressed, text, limit)?;
        let inflated = std::mem::take(&mut self.inflated);
        self.compress_for(id, agreement, &inflated);
        self.inflated = inflated;
        Ok(&self.deflated)
    }

    /// Drops connection `id`'s context (it closed), if it had one.
    pub fn forget(&mut self, id: usize) {
        self.contexts.remove(&id);
    }

    /// Connections with a context, and the bytes their windows hold.
    #[cfg(test)]
    fn contexts(&self) -> (usize, usize) {
        let held = self.contexts.values().map(Context::held).sum();
        (self.contexts.len(), held)
    }
}

/// How much of what a client sent its context holds: its window, and at least 512
/// bytes, since a client asked for 8 bits may still compress with 9 (zlib does: it
/// has no 256-byte window for raw deflate).
fn inbound_size(agreement: Agreement) -> usize {
    1 << agreement.client_window_bits().max(9)
}

/// The compressor for a window of `window_bits`, made on first use.
fn deflater(deflaters: &mut [Option<Deflater>; 8], window_bits: u8) -> &mut Deflater {
    let bits = window_bits.clamp(8, 15);
    deflaters[usize::from(bits - 8)].get_or_insert_with(|| Deflater::new(bits))
}

/// Inflates `compressed`, handing each piece to `keep` once it is checked: the size
/// limit while inflating, and UTF-8 for `text` (§8.1) as the pieces come and at the end.
fn inflate_checked(
    inflater: &mut Inflater,
    compressed: &[u8],
    text: bool,
    limit: u64,
    mut keep: impl FnMut(&[u8]),
) -> Result<(), ProtocolError> {
    let mut utf8 = Utf8Validator::default();
    inflater.inflate(compressed, text, limit, |piece| {
        if text {
            utf8.feed(piece)?;
        }
        keep(piece);
        Ok(())
    })?;
    if text {
        utf8.finish()?;
    }
    Ok(())
}

/// Inflates a message from connection `id` as [`inflate_checked`] does: after the
/// connection's context when the client keeps one (the last window of what it sent,
/// inflated), which then slides on past the message; without one otherwise.
fn inflate_for(
    inflater: &mut Inflater,
    contexts: &mut HashMap<usize, Context>,
    (id, agreement): (usize, Agreement),
    compressed: &[u8],
    text: bool,
    limit: u64,
    mut keep: impl FnMut(&[u8]),
) -> Result<(), ProtocolError> {
    if !agreement.client_takeover() {
        return inflate_checked(inflater, compressed, text, limit, keep);
    }
    let context = &mut contexts.entry(id).or_default().inbound;
    let size = inbound_size(agreement);
    inflater.prime(context);
    inflate_checked(inflater, compressed, text, limit, |piece| {
        keep(piece);
        context::slide(context, size, piece);
    })
}

/// Empties a reusable buffer, releasing it first if a large message grew it.
fn reuse(buffer: &mut Vec<u8>) -> &mut Vec<u8> {
    if buffer.capacity() > KEEP_CAPACITY {
        *buffer = Vec::new();
    }
    buffer.clear();
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client asking for a server window of `bits` agrees to, without context.
    fn server_window(bits: u8) -> Agreement {
        let offer = format!("server_max_window_bits={bits}");
        accept([offer.as_bytes()].into_iter(), None).unwrap()
    }

    /// RFC 7692 §7.2.3.1: "Hello" compressed in one block, without the sync flush's tail.
    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    fn inflated(
        codec: &mut Codec,
        compressed: &[u8],
        text: bool,
    ) -> Result<Vec<u8>, ProtocolError> {
        codec.inflate(compressed, text, 1 << 20).map(<[u8]>::to_vec)
    }

    #[test]
    fn the_rfc_examples_inflate() {
        let mut codec = Codec::default();
        assert_eq!(inflated(&mut codec, &HELLO, true).unwrap(), b"Hello");
        // §7.2.3.3: an uncompressed (stored) block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
        ];
        assert_eq!(inflated(&mut codec, &stored, true).unwrap(), b"Hello");
        // §7.2.3.4: a final block (BFINAL set) may end the message.
        let last = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflated(&mut codec, &last, true).unwrap(), b"Hello");
        // §7.2.3.6: an empty message compresses to a single 0x00.
        assert_eq!(inflated(&mut codec, &[0x00], true).unwrap(), b"");
        assert_eq!(codec.compress(b"", 15), [0x00]);
    }

    #[test]
    fn messages_round_trip_and_each_stands_alone() {
        let mut codec = Codec::default();
        let texts: Vec<Vec<u8>> = vec![
            b"a".to_vec(),
            "κόσμε 🦀 ".repeat(5000).into_bytes(),
            (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            vec![0; 300_000],
        ];
        for message in &texts {
            let compressed = codec.compress(message, 15).to_vec();
            // No context takeover: a fresh inflater (or the shared one, reset) reads it.
            assert_eq!(&inflated(&mut codec, &compressed, false).unwrap(), message);
            assert_eq!(
                &inflated(&mut Codec::default(), &compressed, false).unwrap(),
                message
            );
            codec
                .check(&compressed, false, message.len() as u64)
                .unwrap();
        }
    }

    #[test]
    fn a_smaller_window_is_honoured_and_8_bits_get_stored_blocks() {
        let mut codec = Codec::default();
        let message: Vec<u8> = "abcdefgh".repeat(4000).into_bytes();
        let at_15 = codec.compress(&message, 15).to_vec();
        let at_15_again = codec
            .recompress_for(0, server_window(15), &at_15, true, 1 << 20)
            .unwrap()
            .to_vec();
        assert_eq!(at_15, at_15_again);
        for bits in 9..15 {
            let smaller = codec
                .recompress_for(0, server_window(bits), &at_15, true, 1 << 20)
                .unwrap()
                .to_vec();
            // An inflater with exactly that window reads it.
            let mut z = flate2::Decompress::new_with_window_bits(false, bits);
            let mut out = vec![0; message.len() + 16];
            let input = [&smaller[..], &[0, 0, 0xFF, 0xFF]].concat();
            z.decompress(&input, &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            assert_eq!(&out[..z.total_out() as usize], &message[..], "{bits} bits");
        }
        // No deflate implementation here compresses with a 256-byte window: 8 bits get
        // stored blocks, which refer to nothing before them, so any window reads them.
        let stored = codec.compress(&message, 8).to_vec();
        assert!(stored.len() > message.len());
        assert_eq!(codec.inflate(&stored, true, 1 << 20).unwrap(), &message[..]);
    }

    #[test]
    fn the_limit_holds_while_inflating() {
        let mut codec = Codec::default();
        let zeros = codec.compress(&vec![0; 10 << 20], 15).to_vec();
        assert!(
            zeros.len() < 20_000,
            "10 MiB of zeros is {} bytes",
            zeros.len()
        );
        let mut seen = 0u64;
        let result = codec.inflater.inflate(&zeros, false, 1 << 20, |piece| {
            seen += piece.len() as u64;
            Ok(())
        });
        assert_eq!(result, Err(ProtocolError::MessageTooBig));
        assert!(seen <= 1 << 20, "{seen} bytes handed on past a 1 MiB limit");
        assert_eq!(
            codec.check(&zeros, true, (10 << 20) - 1),
            Err(ProtocolError::MessageTooBig)
        );
        codec.check(&zeros, true, 10 << 20).unwrap();
        // The limit is exact, and the shared inflater is fine after an error.
        assert_eq!(
            codec.check(&HELLO, true, 4),
            Err(ProtocolError::MessageTooBig)
        );
        codec.check(&HELLO, true, 5).unwrap();
    }

    #[test]
    fn what_does_not_inflate_is_1007_for_text_and_1002_for_binary() {
        let mut codec = Codec::default();
        // Block type 3 is reserved (RFC 1951 §3.2.3).
        let garbage = [0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            inflated(&mut codec, &garbage, true),
            Err(ProtocolError::BadCompressedText)
        );
        assert_eq!(
            inflated(&mut codec, &garbage, false),
            Err(ProtocolError::BadCompressedBinary)
        );
        assert_eq!(ProtocolError::BadCompressedText.close_code().0, 1007);
        assert_eq!(ProtocolError::BadCompressedBinary.close_code().0, 1002);
        // Bytes after a final block are not deflate data.
        let trailing = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x01, 0x02];
        assert_eq!(
            inflated(&mut codec, &trailing, false),
            Err(ProtocolError::BadCompressedBinary)
        );
        // Valid deflate data whose text is not UTF-8: 1007 too.
        let latin1 = codec.compress(b"caf\xe9", 15).to_vec();
        assert_eq!(
            codec.check(&latin1, true, 100),
            Err(ProtocolError::InvalidUtf8)
        );
        codec.check(&latin1, false, 100).unwrap();
        // A text cut inside a code point is caught at the message's end.
        let cut = codec.compress("é".as_bytes().split_at(1).0, 15).to_vec();
        assert_eq!(
            codec.check(&cut, true, 100),
            Err(ProtocolError::InvalidUtf8)
        );
        // And the shared decompressor still works afterwards.
        assert_eq!(inflated(&mut codec, &HELLO, true).unwrap(), b"Hello");
    }

    #[test]
    fn a_large_buffer_is_released_after_its_message() {
        let mut codec = Codec::default();
        let big = codec.compress(&vec![1; 4 << 20], 15).to_vec();
        assert_eq!(codec.inflate(&big, false, 8 << 20).unwrap().len(), 4 << 20);
        codec.compress(b"small", 15);
        codec.inflate(&[0x00], false, 1).unwrap();
        assert!(codec.inflated.capacity() <= KEEP_CAPACITY);
        assert!(codec.deflated.capacity() <= KEEP_CAPACITY);
    }

    /// A peer that keeps its context (as RFC 7692 §7.1.1 has it without the
    /// `*_no_context_takeover` parameters): one zlib stream for a whole session.
    struct Peer {
        deflate: flate2::Compress,
        inflate: flate2::Decompress,
    }

    impl Peer {
        fn new(bits: u8) -> Peer {
            Peer {
                deflate: flate2::Compress::new_with_window_bits(
                    flate2::Compression::default(),
                    false,
                    bits,
                ),
                inflate: flate2::Decompress::new_with_window_bits(false, 15),
            }
        }

        fn send(&mut self, message: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(message.len() + 64);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(message, &mut out, flate2::FlushCompress::Sync)
                .unwrap();
            assert_eq!(self.deflate.total_in() - before, message.len() as u64);
            assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
            out.truncate(out.len() - 4);
            out
        }

        fn receive(&mut self, compressed: &[u8]) -> Vec<u8> {
            let input = [compressed, &[0, 0, 0xFF, 0xFF]].concat();
            let mut out = Vec::with_capacity(1 << 20);
            let before = self.inflate.total_in();
            self.inflate
                .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            assert_eq!(self.inflate.total_in() - before, input.len() as u64);
            out
        }
    }

    /// Varied text in which each message repeats much of the one before: what a
    /// dictionary from the wrong context would garble.
    fn chatter(i: usize) -> Vec<u8> {
        format!(
            "{{\"seq\":{i},\"user\":\"user-{}\",\"text\":\"the quick brown fox {} jumps\"}}",
            i % 7,
            i * 31 % 101
        )
        .repeat(1 + i % 3)
        .into_bytes()
    }

    #[test]
    fn with_context_takeover_both_ways_a_peer_that_keeps_its_streams_understands_us() {
        for bits in [9, 12, 15] {
            let agreement = accept(
                ["client_max_window_bits"].iter().map(|p| p.as_bytes()),
                Some(bits),
            )
            .unwrap();
            let mut codec = Codec::default();
            let mut client = Peer::new(bits);
            let (mut sent, mut carried) = (0, 0);
            for i in 0..300 {
                let message = chatter(i);
                // Another connection's messages in between use the same shared streams.
                codec.compress_for(7, agreement, &chatter(i + 1000));
                let compressed = client.send(&message);
                let inflated = codec
                    .inflate_from(1, agreement, &compressed, true, 1 << 20)
                    .unwrap();
                assert_eq!(inflated, &message[..], "{bits} bits, message {i}");
                let echoed = codec.compress_for(1, agreement, &message).to_vec();
                assert_eq!(client.receive(&echoed), message, "{bits} bits, echo {i}");
                sent += message.len();
                carried += echoed.len();
                if i > 0 {
                    // The echo refers to what came before it: a fresh inflater cannot
                    // read it (or reads something else).
                    let fresh = Codec::default()
                        .inflate(&echoed, true, 1 << 20)
                        .map(<[u8]>::to_vec);
                    assert_ne!(
                        fresh,
                        Ok(message.clone()),
                        "{bits} bits, echo {i} used no context"
                    );
                }
            }
            assert!(carried * 4 < sent, "{bits} bits: {carried} of {sent} bytes");
            let (connections, held) = codec.contexts();
            assert_eq!(connections, 2);
            assert!(held <= 4 << bits, "{held} bytes held at {bits} bits");
            codec.forget(1);
            codec.forget(7);
            assert_eq!(codec.contexts(), (0, 0));
        }
    }

    #[test]
    fn a_client_asked_to_keep_no_context_is_inflated_without_one() {
        let agreement = accept(std::iter::empty(), Some(9)).unwrap();
        assert!(agreement.server_takeover() && !agreement.client_takeover());
        let mut codec = Codec::default();
        let mut client = Peer::new(15);
        for i in 0..50 {
            let message = chatter(i);
            // A client without context: a fresh stream per message.
            let compressed = Peer::new(15).send(&message);
            let echoed = codec
                .recompress_for(3, agreement, &compressed, true, 1 << 20)
                .unwrap()
                .to_vec();
            assert_eq!(client.receive(&echoed), message, "echo {i}");
        }
        let (_, held) = codec.contexts();
        assert_eq!(held, 512, "the server's window only");
    }
}
