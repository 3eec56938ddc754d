//! The bodies of the fuzz targets in `fuzz/`, kept in the library so that
//! `tests/fuzz_corpus.rs` replays the checked-in corpus through exactly the same checks
//! on every `cargo test` (CI does not run the fuzzer). Not part of the public API.
//!
//! Every target reads the same input layout, so a corpus file means the same thing to
//! the fuzzer and to the replay test:
//!
//! ```text
//! byte 0        flags (each target says what its bits choose)
//! byte 1        n: how many step bytes follow (taken mod 16)
//! bytes 2..2+n  steps: chunk lengths, used in turn and cyclically, that cut the
//!               payload into the pieces a socket might deliver (0 = an empty read)
//! the rest      the payload: the bytes on the wire
//! ```
//!
//! Each target checks that the code under test never panics, never claims more bytes
//! than it was given, and reaches the same result whether the payload arrives whole,
//! one byte at a time, or in the pieces the steps choose. A failed check panics, which
//! is what the fuzzer reports as a crash.

use std::fmt::Debug;

use crate::protocol::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::protocol::handshake::{
    accept_key, route, Endpoint, HandshakeError, Policy, Route, MAX_ROOM_LEN,
};
use crate::protocol::http::{
    parse_request, parse_response, Header, Headers, HttpError, MAX_HEADERS, MAX_HEAD_LEN,
};
use crate::protocol::message::{Event, Receiver, ReceiverConfig, Role};

/// A fuzz input split into its control bytes and its payload (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub flags: u8,
    pub steps: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        let flags = data.first().copied().unwrap_or(0);
        let n = data.get(1).map_or(0, |&n| usize::from(n % 16));
        let rest = data.get(2..).unwrap_or(&[]);
        let (steps, payload) = rest.split_at(n.min(rest.len()));
        Input {
            flags,
            steps,
            payload,
        }
    }

    /// The payload cut into the pieces the steps choose (one piece without a non-zero
    /// step); empty pieces are kept, as a read of nothing new.
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = self.payload;
        if self.steps.iter().any(|&s| s != 0) {
            for &step in self.steps.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at(usize::from(step).min(rest.len()));
                out.push(piece);
                rest = tail;
            }
        }
        if !rest.is_empty() || out.is_empty() {
            out.push(rest);
        }
        out
    }

    /// Where the pieces end, ascending; the last is the payload's length.
    fn chunk_ends(&self) -> Vec<usize> {
        self.chunks()
            .iter()
            .scan(0, |at, piece| {
                *at += piece.len();
                Some(*at)
            })
            .collect()
    }

    /// The three ways every target delivers its payload, as the ends of the prefixes
    /// seen: whole, in the fuzzer's pieces, and one byte at a time (an empty read first).
    fn deliveries(&self) -> [Vec<usize>; 3] {
        let len = self.payload.len();
        [vec![len], self.chunk_ends(), (0..=len).collect()]
    }
}

// ---- http_head ---------------------------------------------------------------------

/// Header fields as owned `(name, value)` pairs, in order.
pub type OwnedFields = Vec<(String, Vec<u8>)>;

/// A parsed request head as owned values, so results can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRequest {
    pub method: String,
    pub target: String,
    pub minor: u8,
    pub headers: OwnedFields,
    pub head_len: usize,
}

/// A parsed response head as owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedResponse {
    pub status: u16,
    pub headers: OwnedFields,
    pub head_len: usize,
}

pub fn owned_fields(headers: &Headers<'_, '_>) -> OwnedFields {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}

/// [`parse_request`] with an owned result.
pub fn request_owned(buf: &[u8], scanned: usize) -> Result<Option<OwnedRequest>, HttpError> {
    let mut storage = [Header::default(); MAX_HEADERS];
    Ok(
        parse_request(buf, scanned, &mut storage)?.map(|(req, head_len)| OwnedRequest {
            method: req.method.to_owned(),
            target: req.target.to_owned(),
            minor: req.minor,
            headers: owned_fields(&req.headers),
            head_len,
        }),
    )
}

/// [`parse_response`] with an owned result.
pub fn response_owned(buf: &[u8], scanned: usize) -> Result<Option<OwnedResponse>, HttpError> {
    let mut storage = [Header::default(); MAX_HEADERS];
    Ok(
        parse_response(buf, scanned, &mut storage)?.map(|(resp, head_len)| OwnedResponse {
            status: resp.status,
            headers: owned_fields(&resp.headers),
            head_len,
        }),
    )
}

/// Feeds growing prefixes of `buf` (ending at each of `ends`) to an incremental head
/// parser, passing the previous length as `scanned`, as a connection does. Until the
/// head is complete every call must answer `Ok(None)`; the first other answer ends the
/// feeding (a connection acts on it) and must equal the answer for the whole buffer.
fn check_incremental<T: PartialEq + Debug>(
    buf: &[u8],
    ends: &[usize],
    whole: &Result<Option<T>, HttpError>,
    parse: impl Fn(&[u8], usize) -> Result<Option<T>, HttpError>,
) {
    let mut scanned = 0;
    for &end in ends {
        let got = parse(&buf[..end], scanned);
        if !matches!(got, Ok(None)) {
            assert_eq!(&got, whole, "prefix of {end} bytes (scanned {scanned})");
            return;
        }
        scanned = end;
    }
    assert!(matches!(whole, Ok(None)), "whole buffer: {whole:?}");
}

/// RFC 9110 §5.6.2 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What every accepted head's fields satisfy: token names, values without the
/// surrounding whitespace (RFC 9112 §5.1) and without CR, LF, NUL or other controls.
fn check_fields(fields: &OwnedFields) {
    assert!(fields.len() <= MAX_HEADERS);
    for (name, value) in fields {
        assert!(is_token(name), "field name {name:?}");
        assert_eq!(value.trim_ascii(), &value[..], "value keeps whitespace");
        assert!(
            value
                .iter()
                .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7F)),
            "control byte in value {value:?}"
        );
    }
}

/// Checks an accepted head's length: it ends at the first CRLFCRLF, within the bound.
fn check_head_len(buf: &[u8], head_len: usize) {
    assert!(head_len <= MAX_HEAD_LEN && head_len <= buf.len());
    let first_end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    assert_eq!(first_end, Some(head_len));
}

/// Writes a request back out, minimally (`name:value`, so never longer than the head it
/// came from and so within [`MAX_HEAD_LEN`]).
fn write_request(req: &OwnedRequest) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.{}\r\n", req.method, req.target, req.minor).into_bytes();
    for (name, value) in &req.headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Routes an accepted request and checks the decision against RFC 6455 §4.2.1.
fn check_route(buf: &[u8], req: &OwnedRequest, policy: &Policy) {
    let mut storage = [Header::default(); MAX_HEADERS];
    let (parsed, _) = parse_request(buf, 0, &mut storage)
        .expect("parsed before")
        .expect("complete before");
    let h = parsed.headers;
    match route(&parsed, policy) {
        Ok(Route::Upgrade {
            accept,
            endpoint,
            protocol,
        }) => {
            assert_eq!(req.method, "GET");
            assert!(req.minor >= 1, "an upgrade needs HTTP/1.1 (§4.1)");
            assert_eq!(h.count("host"), 1);
            assert!(h.has_token("upgrade", "websocket"));
            assert!(h.has_token("connection", "upgrade"));
            assert_eq!(h.get("sec-websocket-version"), Some(&b"13"[..]));
            assert_eq!(h.count("sec-websocket-key"), 1);
            let key = h.get("sec-websocket-key").expect("counted");
            assert_eq!(key.len(), 24);
            assert_eq!(accept, accept_key(key));
            if !policy.allowed_origins.is_empty() {
                let origin = h.get("origin").expect("§10.2: checked");
                assert!(policy.allowed_origins.iter().any(|o| o.as_bytes() == origin));
            }
            match endpoint {
                Endpoint::Echo => assert_ne!(parsed.path(), "/chat"),
                Endpoint::Chat { room } => {
                    assert_eq!(parsed.path(), "/chat");
                    assert!((1..=MAX_ROOM_LEN).contains(&room.len()));
                    assert!(req.target.contains(room));
                }
            }
            // §4.2.2 item 5.4: only a subprotocol the client offered and we speak.
            if let Some(p) = protocol {
                assert!(policy.protocols.iter().any(|ours| ours == p));
                assert!(h.tokens("sec-websocket-protocol").any(|t| t == p.as_bytes()));
            }
        }
        Ok(Route::Page) => assert_eq!((req.method.as_str(), parsed.path()), ("GET", "/")),
        Ok(Route::Stats) => assert_eq!((req.method.as_str(), parsed.path()), ("GET", "/stats")),
        Err(HandshakeError::Method) => assert_ne!(req.method, "GET"),
        Err(HandshakeError::Origin) => assert!(!policy.allowed_origins.is_empty()),
        Err(e) => {
            assert_eq!(req.method, "GET");
            assert!(matches!(e.status().0, 400 | 404 | 426), "{e:?}");
        }
    }
}

/// `http_head`: the request and response head parsers over arbitrary bytes.
/// Flags: bit 0 routes with an `--allowed-origin` configured, bit 1 with subprotocols.
pub fn http_head(data: &[u8]) {
    let input = Input::new(data);
    let buf = input.payload;

    let whole = request_owned(buf, 0);
    for ends in input.deliveries() {
        check_incremental(buf, &ends, &whole, request_owned);
    }
    if let Ok(Some(req)) = &whole {
        check_head_len(buf, req.head_len);
        assert!(is_token(&req.method), "method {:?}", req.method);
        assert!(!req.target.is_empty() && req.target.bytes().all(|b| b.is_ascii_graphic()));
        check_fields(&req.headers);
        // What we accept, written back out, parses to the same request.
        let again = write_request(req);
        let reparsed = request_owned(&again, 0).expect("a written head parses");
        let expected = OwnedRequest {
            head_len: again.len(),
            ..req.clone()
        };
        assert_eq!(reparsed, Some(expected));
        let origins = ["https://ok.example".to_owned()];
        let protocols = ["chat".to_owned(), "echo".to_owned()];
        let policy = Policy {
            allowed_origins: if input.flags & 1 != 0 { &origins } else { &[] },
            protocols: if input.flags & 2 != 0 { &protocols } else { &[] },
        };
        check_route(buf, req, &policy);
    }

    let whole = response_owned(buf, 0);
    for ends in input.deliveries() {
        check_incremental(buf, &ends, &whole, response_owned);
    }
    if let Ok(Some(resp)) = &whole {
        check_head_len(buf, resp.head_len);
        assert!(resp.status <= 999);
        check_fields(&resp.headers);
    }
}

// ---- frame -------------------------------------------------------------------------

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
    assert!(buf[0] & 0x70 == 0, "RSV bits accepted");
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
    Message(OpCode, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(crate::protocol::error::ProtocolError),
}

/// How many bytes after the consumed ones are checked to be untouched by a poll: more
/// than a whole header plus a whole control frame, the most that is looked at without
/// being consumed.
const UNTOUCHED_WINDOW: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD + 1;

/// Drives a [`Receiver`] over `payload` delivered as the prefixes ending at `ends`,
/// keeping unconsumed bytes as a connection does, and reassembles what it yields.
pub fn receive(config: &ReceiverConfig, payload: &[u8], ends: &[usize]) -> Vec<Seen> {
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
                    return seen;
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
                    assert!(body.len() as u64 <= config.max_message_size);
                    if chunk.ends_message() {
                        let (opcode, body) = message.take().expect("in progress");
                        if opcode == OpCode::Text {
                            assert!(std::str::from_utf8(&body).is_ok(), "§8.1: text is UTF-8");
                        }
                        seen.push(Seen::Message(opcode, body));
                    }
                }
                Some(Event::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
                Some(Event::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
                Some(Event::Close(c)) => {
                    seen.push(Seen::Close(c.code.map(|c| c.0), c.reason.into()));
                    return seen;
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
    seen
}

/// `frame`: the frame header decoder and the message receiver over arbitrary bytes.
/// Flags: bit 0 selects the client role (server frames must be unmasked); bits 1–3 pick
/// the message size limit.
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
    };
    let [whole, pieces, bytes] = input.deliveries();
    let expected = receive(&config, input.payload, &whole);
    assert_eq!(receive(&config, input.payload, &pieces), expected);
    assert_eq!(receive(&config, input.payload, &bytes), expected);
}
