//! The `frame` fuzz target: the frame decoder and the receiver over arbitrary bytes.

use super::Input;
use crate::protocol::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::protocol::receiver::{Event, Receiver, ReceiverConfig, Role};

/// `FrameHeader::decode` on the first bytes: every prefix of a header is incomplete
/// until the first one that decides, which decides as the whole buffer does; what
/// decodes obeys §5.2/§5.5 and survives an encode → decode round trip.
fn check_header(buf: &[u8]) {
    let whole = FrameHeader::decode(buf);
    let decided = (0..=buf.len().min(MAX_HEADER_LEN))
        .map(|k| FrameHeader::decode(&buf[..k]))
        .find(|r| !matches!(r, Ok(None)));
    assert_eq!(decided.unwrap_or(Ok(None)), whole);
    let Ok(Some((header, len))) = whole else {
        return;
    };
    assert!(buf[0] & 0x30 == 0, "RSV2/RSV3 accepted");
    assert_eq!(header.rsv1, buf[0] & 0x40 != 0, "RSV1 is reported as it is");
    assert!(header.payload_len >> 63 == 0, "§5.2: the top bit must be 0");
    if header.opcode.is_control() {
        assert!(header.fin && header.payload_len <= MAX_CONTROL_PAYLOAD as u64);
    }
    let length_bytes = match buf[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask_bytes = if header.mask.is_some() { 4 } else { 0 };
    assert_eq!(len, 2 + length_bytes + mask_bytes);
    let (bytes, n) = header.encode();
    assert_eq!(FrameHeader::decode(&bytes[..n]), Ok(Some((header, n))));
    // The encoder always uses the shortest length form; decode also takes longer ones.
    assert!(n <= len);
    if n == len {
        assert_eq!(&bytes[..n], &buf[..len]);
    }
}

/// What a stream decodes to, as owned values for comparison between deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A whole data message: its type and payload.
    Message(OpCode, Vec<u8>),
    /// A Ping and its payload.
    Ping(Vec<u8>),
    /// A Pong and its payload.
    Pong(Vec<u8>),
    /// A Close: its code, if any, and reason.
    Close(Option<u16>, String),
    /// The stream broke the protocol here.
    Error(crate::protocol::error::ProtocolError),
}

/// How many bytes after the consumed ones are checked to be untouched by a poll: more
/// than a whole header plus a whole control frame, the most that is looked at without
/// being consumed.
const UNTOUCHED_WINDOW: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD + 1;

/// Drives a [`Receiver`] over `payload` delivered as the prefixes ending at `ends`,
/// keeping unconsumed bytes as a connection does, and reassembles what it yields.
pub fn receive(config: &ReceiverConfig, payload: &[u8], ends: &[usize]) -> Vec<Seen> {
    receive_counting(config, payload, ends).0
}

/// [`receive`], also returning how many bytes of `payload` were consumed: up to the end
/// of a Close frame, or all but an unfinished frame at the end (or all up to an error).
pub fn receive_counting(
    config: &ReceiverConfig,
    payload: &[u8],
    ends: &[usize],
) -> (Vec<Seen>, usize) {
    let mut rx = Receiver::default();
    let mut seen = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut message: Option<(OpCode, Vec<u8>)> = None;
    let mut start = 0;
    for &end in ends {
        pending.extend_from_slice(&payload[start..end]);
        start = end;
        let mut pos = 0;
        loop {
            let given = pending.len() - pos;
            let window = given.min(UNTOUCHED_WINDOW);
            let before = pending[pos..pos + window].to_vec();
            let (n, event) = match rx.poll(config, &mut pending[pos..]) {
                Err(e) => {
                    seen.push(Seen::Error(e));
                    return (seen, start - pending.len() + pos);
                }
                Ok((0, None)) => break,
                Ok((n, event)) => (n, event),
            };
            assert!(n <= given, "consumed {n} of {given}");
            assert!(n > 0, "an event must consume bytes: {event:?}");
            match event {
                None => {}
                Some(Event::Data(chunk)) => {
                    assert!(chunk.offset + chunk.payload.len() as u64 <= chunk.frame_len);
                    // A message's first frame says Text or Binary; later ones Continuation.
                    let (opcode, body) = match &mut message {
                        None => {
                            assert!(chunk.starts_frame(), "{chunk:?}");
                            assert!(matches!(chunk.opcode, OpCode::Text | OpCode::Binary));
                            message.insert((chunk.opcode, Vec::new()))
                        }
                        Some(m) => {
                            if chunk.starts_frame() {
                                assert_eq!(chunk.opcode, OpCode::Continuation);
                            }
                            m
                        }
                    };
                    assert_eq!(chunk.message, *opcode, "every chunk names its message type");
                    body.extend_from_slice(chunk.payload);
                    // A compressed message is checked once inflated (protocol::deflate);
                    // on the wire it may exceed the limit by deflate's worst case.
                    assert!(chunk.compressed || body.len() as u64 <= config.max_message_size);
                    assert!(config.deflate || !chunk.compressed);
                    if chunk.ends_message() {
                        let (opcode, body) = message.take().expect("in progress");
                        if opcode == OpCode::Text && !chunk.compressed {
                            assert!(std::str::from_utf8(&body).is_ok(), "§8.1: text is UTF-8");
                        }
                        seen.push(Seen::Message(opcode, body));
                    }
                }
                Some(Event::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
                Some(Event::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
                Some(Event::Close(c)) => {
                    seen.push(Seen::Close(c.code.map(|c| c.0), c.reason.into()));
                    return (seen, start - pending.len() + pos + n);
                }
            }
            // Unmasking in place must stop at the consumed bytes: the rest is kept.
            if n < window {
                assert_eq!(&pending[pos + n..pos + window], &before[n..]);
            }
            pos += n;
        }
        pending.drain(..pos);
    }
    (seen, payload.len() - pending.len())
}

/// `frame`: the frame header decoder and the message receiver over arbitrary bytes.
/// Flags: bit 0 selects the client role (server frames must be unmasked); bits 1–3 pick
/// the message size limit; bit 4 negotiates permessage-deflate (RSV1 allowed).
pub fn frame(data: &[u8]) {
    let input = Input::new(data);
    check_header(input.payload);
    // Limits around the edges: nothing, a control frame, the 16-bit form, no limit.
    const LIMITS: [u64; 8] = [0, 1, 7, 125, 126, 65_535, 1 << 20, u64::MAX];
    let config = ReceiverConfig {
        role: if input.flags & 1 != 0 {
            Role::Client
        } else {
            Role::Server
        },
        max_message_size: LIMITS[usize::from(input.flags >> 1) & 7],
        deflate: input.flags & 0x10 != 0,
    };
    let [whole, pieces, bytes] = input.deliveries();
    let expected = receive(&config, input.payload, &whole);
    assert_eq!(receive(&config, input.payload, &pieces), expected);
    assert_eq!(receive(&config, input.payload, &bytes), expected);
}
