//! The receiving side of a WebSocket frame stream, sans-IO (RFC 6455 §5, §6.2).
//!
//! [`Receiver::poll`] takes the bytes that have arrived, unmasks them in place and yields
//! one [`Event`] at a time together with how many bytes it consumed. Data frames are
//! delivered as chunks as their payload arrives, already unmasked and (for text)
//! UTF-8-validated up to that byte, so a caller can echo a frame that is whole in its
//! read buffer without copying, and a violation is caught at the first bad byte rather
//! than when the message ends. A frame header or a control frame is consumed only when
//! whole; otherwise nothing is consumed and the caller keeps the bytes for the next call.
//!
//! Enforced here: masking by role (§5.1), the fragmentation rules (§5.4), control
//! frames (§5.5), UTF-8 (§8.1), Close bodies (§5.5.1, §7.4) and the message size limit,
//! which is checked from the frame header before a byte of payload is buffered. With
//! permessage-deflate negotiated (RFC 7692), RSV1 marks a compressed message on its first
//! frame only; a compressed message's chunks are passed on as they are, for the caller to
//! inflate once the message is whole (its UTF-8 and its inflated size are checked then,
//! see `protocol::deflate`), and its size on the wire is bounded here with the slack that
//! deflate's worst case needs.

use super::close::CloseBody;
use super::error::ProtocolError;
use super::frame::{apply_mask, FrameHeader, OpCode};
use super::utf8::Utf8Validator;

/// Which end of the connection this receiver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives client frames, which must be masked.
    Server,
    /// Receives server frames, which must not be masked.
    Client,
}

/// What a receiver enforces; shared by every connection of a reactor.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    /// Which end receives: server frames are unmasked, client frames masked (§5.1).
    pub role: Role,
    /// The largest message accepted, summed over its fragments (1009 above it).
    pub max_message_size: u64,
    /// Whether permessage-deflate was negotiated: RSV1 then marks a compressed message
    /// (RFC 7692 §6); otherwise it is a violation (§5.2).
    pub deflate: bool,
}

impl ReceiverConfig {
    /// The most a compressed message may take on the wire: the size limit, plus what
    /// deflate adds at worst to data it cannot compress (5 bytes of stored-block header
    /// per 65,535 bytes, RFC 1951 §3.2.4) and its last block. Its inflated size is held
    /// to the limit itself while it inflates.
    fn max_compressed_size(&self) -> u64 {
        self.max_message_size
            .saturating_add(self.max_message_size / 8192 + 64)
    }
}

/// A run of payload bytes of a data frame, unmasked and validated.
#[derive(Debug, PartialEq, Eq)]
pub struct DataChunk<'a> {
    /// The frame's opcode: `Text`/`Binary` for a message's first frame, else `Continuation`.
    pub opcode: OpCode,
    /// The message's type, `Text` or `Binary`, on every frame of it (what a relay that
    /// reassembles the message sends it as).
    pub message: OpCode,
    /// The frame's FIN bit.
    pub fin: bool,
    /// Whether the message is compressed (RFC 7692 §6: RSV1 on its first frame): its
    /// payload is deflate data, not validated yet.
    pub compressed: bool,
    /// The whole frame's payload length.
    pub frame_len: u64,
    /// Where `payload` starts within the frame's payload.
    pub offset: u64,
    /// The bytes, unmasked in place in the caller's buffer.
    pub payload: &'a [u8],
}

impl DataChunk<'_> {
    /// Whether this chunk is the frame's first.
    pub fn starts_frame(&self) -> bool {
        self.offset == 0
    }

    /// Whether this chunk completes the frame.
    pub fn ends_frame(&self) -> bool {
        self.offset + self.payload.len() as u64 == self.frame_len
    }

    /// Whether this chunk completes the message.
    pub fn ends_message(&self) -> bool {
        self.fin && self.ends_frame()
    }
}

/// One thing the peer sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Payload of a data frame, validated so far.
    Data(DataChunk<'a>),
    /// A Ping with its payload, for the Pong that answers it (§5.5.2).
    Ping(&'a [u8]),
    /// A Pong with its payload (§5.5.3).
    Pong(&'a [u8]),
    /// A valid Close frame; the caller answers it and stops reading (§5.5.1).
    Close(CloseBody<'a>),
}

/// Where the receiver is within the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameState {
    /// Waiting for a whole frame header.
    Header,
    /// Inside a data frame's payload. An unmasked frame keeps the all-zero key, which
    /// masking leaves unchanged.
    Payload {
        opcode: OpCode,
        fin: bool,
        mask: [u8; 4],
        frame_len: u64,
        remaining: u64,
    },
}

/// Whether a (possibly fragmented) data message is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageState {
    Idle,
    Text {
        utf8: Utf8Validator,
        len: u64,
    },
    Binary {
        len: u64,
    },
    /// A compressed message (RFC 7692 §6): its bytes are checked once inflated.
    Compressed {
        text: bool,
        len: u64,
    },
}

/// A connection's receive state: small and `Copy`, with no heap, since it is part of every
/// idle connection's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receiver {
    frame: FrameState,
    message: MessageState,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver {
            frame: FrameState::Header,
            message: MessageState::Idle,
        }
    }
}

impl Receiver {
    /// Whether a data message is in progress: part of a frame's payload or of a
    /// fragmented message is still to come.
    pub fn in_message(&self) -> bool {
        self.frame != FrameState::Header || self.message != MessageState::Idle
    }

    /// Consumes bytes from the front of `input` (unmasking them in place) and returns
    /// how many, with the event they completed if any. `(0, None)` means more input is
    /// needed and the caller must keep `input` (a partial header or control frame).
    pub fn poll<'a>(
        &mut self,
        config: &ReceiverConfig,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        let FrameState::Payload {
            opcode,
            fin,
            mask,
            frame_len,
            remaining,
        } = &mut self.frame
        else {
            return self.poll_header(config, input);
        };
        let (opcode, fin, mask, frame_len) = (*opcode, *fin, *mask, *frame_len);
        let n = (*remaining).min(input.len() as u64) as usize;
        if n == 0 {
            return Ok((0, None));
        }
        let offset = frame_len - *remaining;
        *remaining -= n as u64;
        let frame_done = *remaining == 0;
        if frame_done {
            self.frame = FrameState::Header;
        }
        let payload = &mut input[..n];
        apply_mask(payload, mask, (offset % 4) as usize);
        let (message, compressed) = self.message_kind();
        self.accept_payload(payload, fin && frame_done)?;
        let chunk = DataChunk {
            opcode,
            message,
            fin,
            compressed,
            frame_len,
            offset,
            payload,
        };
        Ok((n, Some(Event::Data(chunk))))
    }

    fn poll_header<'a>(
        &mut self,
        config: &ReceiverConfig,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        let Some((header, header_len)) = FrameHeader::decode(input)? else {
            return Ok((0, None));
        };
        if header.mask.is_some() != (config.role == Role::Server) {
            return Err(ProtocolError::Masking);
        }
        let mask = header.mask.unwrap_or([0; 4]);
        if header.rsv1 {
            if !config.deflate {
                return Err(ProtocolError::ReservedBits);
            }
            // RFC 7692 §6.1: control frames are never compressed; §6: RSV1 is set on a
            // message's first frame only.
            if header.opcode.is_control() || header.opcode == OpCode::Continuation {
                return Err(ProtocolError::MisplacedCompression);
            }
        }
        if header.opcode.is_control() {
            // Control frames are at most 125 bytes (checked by decode): wait until the
            // whole frame is here and hand it over in one piece.
            let end = header_len + header.payload_len as usize;
            if input.len() < end {
                return Ok((0, None));
            }
            let payload = &mut input[header_len..end];
            apply_mask(payload, mask, 0);
            let payload = &*payload;
            let event = match header.opcode {
                OpCode::Ping => Event::Ping(payload),
                OpCode::Pong => Event::Pong(payload),
                _ => Event::Close(CloseBody::parse(payload)?),
            };
            return Ok((end, Some(event)));
        }
        self.start_data_frame(config, &header)?;
        if header.payload_len > 0 {
            self.frame = FrameState::Payload {
                opcode: header.opcode,
                fin: header.fin,
                mask,
                frame_len: header.payload_len,
                remaining: header.payload_len,
            };
            return Ok((header_len, None));
        }
        // An empty data frame is complete as soon as its header is.
        let (message, compressed) = self.message_kind();
        self.accept_payload(&[], header.fin)?;
        let chunk = DataChunk {
            opcode: header.opcode,
            message,
            fin: header.fin,
            compressed,
            frame_len: 0,
            offset: 0,
            payload: &[],
        };
        Ok((header_len, Some(Event::Data(chunk))))
    }

    /// Applies the fragmentation rules (§5.4) and the size limit to a data frame header.
    fn start_data_frame(
        &mut self,
        config: &ReceiverConfig,
        header: &FrameHeader,
    ) -> Result<(), ProtocolError> {
        let too_big = |len: u64, max: u64| {
            len.checked_add(header.payload_len)
                .filter(|&total| total <= max)
                .ok_or(ProtocolError::MessageTooBig)
        };
        let max = config.max_message_size;
        // A compressed message's first frame (RSV1, judged by the caller): apart, so that
        // the match below, once per frame, stays as cheap as without compression.
        if header.rsv1 {
            if self.message != MessageState::Idle {
                return Err(ProtocolError::ExpectedContinuation);
            }
            self.message = MessageState::Compressed {
                text: header.opcode == OpCode::Text,
                len: too_big(0, config.max_compressed_size())?,
            };
            return Ok(());
        }
        self.message = match (header.opcode, self.message) {
            (OpCode::Continuation, MessageState::Idle) => {
                return Err(ProtocolError::UnexpectedContinuation)
            }
            (OpCode::Continuation, MessageState::Text { utf8, len }) => MessageState::Text {
                utf8,
                len: too_big(len, max)?,
            },
            (OpCode::Continuation, MessageState::Binary { len }) => MessageState::Binary {
                len: too_big(len, max)?,
            },
            (OpCode::Continuation, MessageState::Compressed { text, len }) => {
                MessageState::Compressed {
                    text,
                    len: too_big(len, config.max_compressed_size())?,
                }
            }
            (
                _,
                MessageState::Text { .. }
                | MessageState::Binary { .. }
                | MessageState::Compressed { .. },
            ) => return Err(ProtocolError::ExpectedContinuation),
            (OpCode::Text, MessageState::Idle) => MessageState::Text {
                utf8: Utf8Validator::default(),
                len: too_big(0, max)?,
            },
            (_, MessageState::Idle) => MessageState::Binary {
                len: too_big(0, max)?,
            },
        };
        Ok(())
    }

    /// The type of the message in progress, and whether it is compressed.
    fn message_kind(&self) -> (OpCode, bool) {
        match self.message {
            MessageState::Text { .. } => (OpCode::Text, false),
            MessageState::Idle | MessageState::Binary { .. } => (OpCode::Binary, false),
            MessageState::Compressed { text, .. } => {
                (if text { OpCode::Text } else { OpCode::Binary }, true)
            }
        }
    }

    /// Validates payload bytes of the current message; ends the message on its last byte.
    fn accept_payload(&mut self, payload: &[u8], ends_message: bool) -> Result<(), ProtocolError> {
        if let MessageState::Text { utf8, .. } = &mut self.message {
            utf8.feed(payload)?;
            if ends_message {
                utf8.finish()?;
            }
        }
        if ends_message {
            self.message = MessageState::Idle;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::close::CloseCode;
    use crate::protocol::frame::encode_frame;

    const SERVER: ReceiverConfig = ReceiverConfig {
        role: Role::Server,
        max_message_size: 1 << 20,
        deflate: false,
    };

    /// A masked client frame, as a client would send it.
    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let key = Some([0xA5, 0x01, 0x7E, 0x33]);
        encode_frame(&mut out, fin, opcode, key, payload.len(), |p| {
            p.copy_from_slice(payload)
        });
        out
    }

    /// What a stream decodes to, as owned values for comparison.
    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Seen {
        Message(OpCode, Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, String),
        Error(ProtocolError),
    }

    /// Feeds `stream` to a receiver in the given pieces, keeping unconsumed bytes as a
    /// connection does, and reassembles messages from the data chunks.
    fn decode_in_pieces(config: &ReceiverConfig, stream: &[u8], cuts: &[usize]) -> Vec<Seen> {
        let mut rx = Receiver::default();
        let mut seen = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut message: Option<(OpCode, Vec<u8>)> = None;
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            pending.extend_from_slice(&stream[start..cut]);
            start = cut;
            let mut pos = 0;
            loop {
                match rx.poll(config, &mut pending[pos..]) {
                    Err(e) => {
                        seen.push(Seen::Error(e));
                        return seen;
                    }
                    Ok((0, None)) => break,
                    Ok((n, event)) => {
                        pos += n;
                        match event {
                            None => {}
                            Some(Event::Data(chunk)) => {
                                let (_, body) = message.get_or_insert((chunk.opcode, Vec::new()));
                                body.extend_from_slice(chunk.payload);
                                if chunk.ends_message() {
                                    let (op, body) = message.take().unwrap();
                                    seen.push(Seen::Message(op, body));
                                }
                            }
                            Some(Event::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
                            Some(Event::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
                            Some(Event::Close(c)) => {
                                seen.push(Seen::Close(c.code.map(|c| c.0), c.reason.into()));
                                return seen;
                            }
                        }
                    }
                }
            }
            pending.drain(..pos);
        }
        seen
    }

    fn decode(stream: &[u8]) -> Vec<Seen> {
        decode_in_pieces(&SERVER, stream, &[])
    }

    #[test]
    fn single_and_fragmented_messages_with_a_ping_between_fragments() {
        let mut s = client_frame(true, OpCode::Text, b"Hello");
        s.extend(client_frame(false, OpCode::Binary, b"ab"));
        s.extend(client_frame(true, OpCode::Ping, b"p"));
        s.extend(client_frame(false, OpCode::Continuation, b""));
        s.extend(client_frame(true, OpCode::Continuation, b"cd"));
        s.extend(client_frame(true, OpCode::Close, &[0x03, 0xE8, b'o', b'k']));
        assert_eq!(
            decode(&s),
            vec![
                Seen::Message(OpCode::Text, b"Hello".to_vec()),
                Seen::Ping(b"p".to_vec()),
                Seen::Message(OpCode::Binary, b"abcd".to_vec()),
                Seen::Close(Some(1000), "ok".into()),
            ]
        );
    }

    #[test]
    fn each_violation_maps_to_its_error_and_close_code() {
        use ProtocolError::*;
        let unmasked = [0x81, 0x01, b'a'];
        let cases: Vec<(Vec<u8>, ProtocolError, u16)> = vec![
            (unmasked.to_vec(), Masking, 1002),
            (
                client_frame(true, OpCode::Continuation, b"x"),
                UnexpectedContinuation,
                1002,
            ),
            (
                [
                    client_frame(false, OpCode::Text, b"a"),
                    client_frame(true, OpCode::Text, b"b"),
                ]
                .concat(),
                ExpectedContinuation,
                1002,
            ),
            (
                client_frame(true, OpCode::Text, b"\xce\xba\xe1\xbd"),
                InvalidUtf8,
                1007,
            ),
            (
                client_frame(true, OpCode::Close, &[0x03, 0xEE]),
                InvalidCloseCode,
                1002,
            ),
            (
                client_frame(true, OpCode::Close, &[0x03]),
                InvalidCloseCode,
                1002,
            ),
            (
                client_frame(true, OpCode::Close, &[0x03, 0xE8, 0xFF]),
                InvalidUtf8,
                1007,
            ),
            (
                vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4],
                MessageTooBig,
                1009,
            ),
        ];
        for (stream, error, code) in cases {
            assert_eq!(decode(&stream).last(), Some(&Seen::Error(error)), "{error}");
            assert_eq!(error.close_code(), CloseCode(code));
        }
    }

    #[test]
    fn message_size_is_summed_over_fragments_and_checked_at_the_header() {
        let config = ReceiverConfig {
            role: Role::Server,
            max_message_size: 10,
            deflate: false,
        };
        let mut s = client_frame(false, OpCode::Binary, b"123456");
        // Only the header of the offending fragment: the error needs no payload.
        s.extend_from_slice(&client_frame(true, OpCode::Continuation, b"12345")[..6]);
        assert_eq!(
            decode_in_pieces(&config, &s, &[]),
            vec![Seen::Error(ProtocolError::MessageTooBig)]
        );
        let exact = [
            client_frame(false, OpCode::Binary, b"123456"),
            client_frame(true, OpCode::Continuation, b"7890"),
        ]
        .concat();
        assert_eq!(
            decode_in_pieces(&config, &exact, &[]),
            vec![Seen::Message(OpCode::Binary, b"1234567890".to_vec())]
        );
    }

    #[test]
    fn invalid_utf8_fails_at_the_bad_byte_before_the_frame_is_complete() {
        // Autobahn 6.4.3/6.4.4: a frame whose payload arrives in pieces.
        let payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64";
        let frame = client_frame(true, OpCode::Text, payload);
        let bad_at = 2 + 4 + 13; // header, mask key, payload up to and including \x90
        let mut rx = Receiver::default();
        let mut buf = frame[..bad_at - 1].to_vec();
        let (n, _) = rx.poll(&SERVER, &mut buf).unwrap();
        let (m, _) = rx.poll(&SERVER, &mut buf[n..]).unwrap();
        assert_eq!(n + m, bad_at - 1, "the valid prefix is consumed");
        let mut next = frame[bad_at - 1..bad_at].to_vec();
        assert_eq!(rx.poll(&SERVER, &mut next), Err(ProtocolError::InvalidUtf8));
    }

    /// A masked client frame with RSV1 set (a compressed message's first frame).
    fn compressed_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut frame = client_frame(fin, opcode, payload);
        frame[0] |= 0x40;
        frame
    }

    const DEFLATE: ReceiverConfig = ReceiverConfig {
        role: Role::Server,
        max_message_size: 1 << 20,
        deflate: true,
    };

    #[test]
    fn rsv1_is_a_violation_unless_deflate_was_negotiated() {
        let frame = compressed_frame(true, OpCode::Text, b"\xf2\x48");
        assert_eq!(
            decode(&frame),
            vec![Seen::Error(ProtocolError::ReservedBits)]
        );
        // RSV2 and RSV3 stay reserved with deflate too.
        for bit in [0x20, 0x10] {
            let mut frame = client_frame(true, OpCode::Text, b"a");
            frame[0] |= bit;
            let seen = decode_in_pieces(&DEFLATE, &frame, &[]);
            assert_eq!(seen, vec![Seen::Error(ProtocolError::ReservedBits)]);
        }
    }

    #[test]
    fn rsv1_belongs_on_a_data_messages_first_frame_only() {
        use ProtocolError::MisplacedCompression;
        let cases = [
            compressed_frame(true, OpCode::Ping, b"p"),
            compressed_frame(true, OpCode::Pong, b""),
            compressed_frame(true, OpCode::Close, &[0x03, 0xE8]),
            [
                compressed_frame(false, OpCode::Binary, b"ab"),
                compressed_frame(true, OpCode::Continuation, b"cd"),
            ]
            .concat(),
            [
                client_frame(false, OpCode::Binary, b"ab"),
                compressed_frame(true, OpCode::Continuation, b"cd"),
            ]
            .concat(),
        ];
        for stream in cases {
            let seen = decode_in_pieces(&DEFLATE, &stream, &[]);
            assert_eq!(
                seen.last(),
                Some(&Seen::Error(MisplacedCompression)),
                "{stream:02x?}"
            );
            assert_eq!(MisplacedCompression.close_code(), CloseCode(1002));
        }
    }

    #[test]
    fn a_compressed_message_passes_unchecked_and_marked_on_every_chunk() {
        // Not UTF-8 on the wire: compressed text is checked once inflated.
        let stream = [
            compressed_frame(false, OpCode::Text, b"\xff\xfe"),
            client_frame(true, OpCode::Ping, b"between"),
            client_frame(true, OpCode::Continuation, b"\xc0"),
            client_frame(true, OpCode::Text, b"plain"),
        ]
        .concat();
        let mut rx = Receiver::default();
        let mut data = stream.clone();
        let (mut pos, mut marks) = (0, Vec::new());
        while pos < data.len() {
            let (n, event) = rx.poll(&DEFLATE, &mut data[pos..]).unwrap();
            pos += n;
            if let Some(Event::Data(chunk)) = event {
                marks.push((chunk.message, chunk.compressed, chunk.payload.to_vec()));
            }
        }
        assert_eq!(
            marks,
            vec![
                (OpCode::Text, true, b"\xff\xfe".to_vec()),
                (OpCode::Text, true, b"\xc0".to_vec()),
                (OpCode::Text, false, b"plain".to_vec()),
            ]
        );
    }

    #[test]
    fn a_compressed_message_may_pass_the_limit_on_the_wire_by_deflates_worst_case_only() {
        let config = ReceiverConfig {
            max_message_size: 8192,
            ..DEFLATE
        };
        // 8192 + 8192/8192 + 64 = 8257 bytes of incompressible data, stored.
        let at = compressed_frame(true, OpCode::Binary, &[0; 8257]);
        assert!(matches!(
            decode_in_pieces(&config, &at, &[])[..],
            [Seen::Message(..)]
        ));
        let over = compressed_frame(true, OpCode::Binary, &[0; 8258]);
        let seen = decode_in_pieces(&config, &over, &[]);
        assert_eq!(seen, vec![Seen::Error(ProtocolError::MessageTooBig)]);
    }

    #[test]
    fn client_role_requires_unmasked_frames() {
        let client = ReceiverConfig {
            role: Role::Client,
            max_message_size: 100,
            deflate: false,
        };
        assert_eq!(
            decode_in_pieces(&client, &[0x82, 0x02, 7, 8], &[]),
            vec![Seen::Message(OpCode::Binary, vec![7, 8])]
        );
        assert_eq!(
            decode_in_pieces(&client, &client_frame(true, OpCode::Binary, b"x"), &[]),
            vec![Seen::Error(ProtocolError::Masking)]
        );
    }

    #[test]
    fn partial_control_frames_consume_nothing() {
        let ping = client_frame(true, OpCode::Ping, b"hello");
        for cut in 0..ping.len() {
            let mut rx = Receiver::default();
            let mut part = ping[..cut].to_vec();
            assert_eq!(rx.poll(&SERVER, &mut part), Ok((0, None)), "cut {cut}");
        }
    }

    mod splits {
        use super::*;
        use proptest::prelude::*;

        /// A valid client stream: messages with random fragmentation and pings between
        /// fragments, ending in a Close.
        fn stream() -> impl Strategy<Value = Vec<u8>> {
            let message = (
                any::<bool>(),
                prop_oneof![
                    ".{0,40}".prop_map(String::into_bytes),
                    proptest::collection::vec(any::<u8>(), 0..300),
                ],
                proptest::collection::vec(0usize..40, 0..4),
                any::<bool>(),
            );
            proptest::collection::vec(message, 0..6).prop_map(|messages| {
                let mut out = Vec::new();
                for (binary, body, cuts, ping) in messages {
                    let text = !binary && std::str::from_utf8(&body).is_ok();
                    let mut pieces: Vec<&[u8]> = Vec::new();
                    let mut rest = &body[..];
                    for c in cuts {
                        let c = c.min(rest.len());
                        pieces.push(&rest[..c]);
                        rest = &rest[c..];
                    }
                    pieces.push(rest);
                    let last = pieces.len() - 1;
                    for (i, piece) in pieces.into_iter().enumerate() {
                        let op = match (i, text) {
                            (0, true) => OpCode::Text,
                            (0, false) => OpCode::Binary,
                            _ => OpCode::Continuation,
                        };
                        out.extend(client_frame(i == last, op, piece));
                        if ping && i != last {
                            out.extend(client_frame(true, OpCode::Ping, b"between"));
                        }
                    }
                }
                out.extend(client_frame(true, OpCode::Close, &[0x03, 0xE8]));
                out
            })
        }

        proptest! {
            #[test]
            fn any_split_yields_the_same_events(
                s in stream(),
                mut cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            ) {
                let whole = decode(&s);
                prop_assert!(!whole.iter().any(|e| matches!(e, Seen::Error(_))));
                prop_assert!(matches!(whole.last(), Some(Seen::Close(Some(1000), _))));
                cuts.sort_by_key(|i| i.index(s.len() + 1));
                let cuts: Vec<usize> = cuts.iter().map(|i| i.index(s.len() + 1)).collect();
                prop_assert_eq!(decode_in_pieces(&SERVER, &s, &cuts), whole);
            }

            #[test]
            fn byte_at_a_time_equals_whole(s in stream()) {
                let cuts: Vec<usize> = (1..s.len()).collect();
                prop_assert_eq!(decode_in_pieces(&SERVER, &s, &cuts), decode(&s));
            }
        }
    }
}
