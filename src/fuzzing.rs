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
use std::sync::OnceLock;

use crate::protocol::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::protocol::handshake::{
    accept_key, route, Endpoint, HandshakeError, Policy, Route, DEFAULT_ROOM, MAX_ROOM_LEN,
};
use crate::protocol::http::{
    parse_request, parse_response, Header, Headers, HttpError, MAX_HEADERS, MAX_HEAD_LEN,
};
use crate::protocol::message::{Event, Receiver, ReceiverConfig, Role};
use crate::server::harness::{Harness, Step};
use crate::server::Config;

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
                assert!(policy
                    .allowed_origins
                    .iter()
                    .any(|o| o.as_bytes() == origin));
            }
            match endpoint {
                Endpoint::Echo => assert_ne!(parsed.path(), "/chat"),
                Endpoint::Chat { room } => {
                    assert_eq!(parsed.path(), "/chat");
                    assert!((1..=MAX_ROOM_LEN).contains(&room.len()));
                    assert!(room == DEFAULT_ROOM || req.target.contains(room));
                }
            }
            // §4.2.2 item 5.4: only a subprotocol the client offered and we speak.
            if let Some(p) = protocol {
                assert!(policy.protocols.iter().any(|ours| ours == p));
                assert!(h
                    .tokens("sec-websocket-protocol")
                    .any(|t| t == p.as_bytes()));
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
            protocols: if input.flags & 2 != 0 {
                &protocols
            } else {
                &[]
            },
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

// ---- connection --------------------------------------------------------------------

/// The server configurations the `connection` target picks from (flags bits 0–1).
fn connection_config(pick: u8) -> Config {
    static CONFIGS: OnceLock<[Config; 4]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [
            Config::from_args(&[]),
            Config::from_args(&["--max-message-size", "100"]),
            Config::from_args(&[
                "--allowed-origin",
                "https://ok.example",
                "--protocol",
                "chat",
            ]),
            // Deadlines that a few clock steps reach.
            Config::from_args(&[
                "--handshake-timeout",
                "2",
                "--ping-interval",
                "1",
                "--idle-timeout",
                "3",
                "--send-timeout",
                "2",
                "--max-message-size",
                "1000",
            ]),
        ]
    })[usize::from(pick & 3)]
    .clone()
}

/// The status our own protocol core gives the request at the start of `input`, or
/// `None` while its head is unfinished (what the connection must answer).
fn expected_status(input: &[u8], config: &Config) -> Option<u16> {
    let mut storage = [Header::default(); MAX_HEADERS];
    match parse_request(input, 0, &mut storage) {
        Ok(None) => None,
        Err(e) => Some(e.status().0),
        Ok(Some((req, _))) => Some(match route(&req, &config.policy()) {
            Ok(Route::Upgrade { .. }) => 101,
            Ok(Route::Page | Route::Stats) => 200,
            Err(e) => e.status().0,
        }),
    }
}

/// What the server must send back for what the client sent (RFC 6455 §5.5, §7):
/// every message as it came (echo, or a room of one), a Pong for each Ping with its
/// payload, a Close echoing the client's status code (§5.5.1) or carrying the code of
/// the first violation (§7.4.1); nothing after that.
fn expected_replies(client: &[Seen]) -> Vec<Seen> {
    client
        .iter()
        .filter_map(|seen| match seen {
            Seen::Message(..) => Some(seen.clone()),
            Seen::Ping(p) => Some(Seen::Pong(p.clone())),
            Seen::Pong(_) => None,
            Seen::Close(code, _) => Some(Seen::Close(*code, String::new())),
            // The reason names the violation (`Connection::fail`).
            Seen::Error(e) => Some(Seen::Close(Some(e.close_code().0), e.to_string())),
        })
        .collect()
}

/// `connection`: the server's real `Connection` over the in-memory harness, with the
/// payload arriving in the pieces the steps choose. Flags: bits 0–1 pick the
/// configuration; bit 2 makes the client read slowly (64 bytes after each piece, the
/// rest at the end); bit 3 advances the clock a second after each piece; bit 4 ends
/// the client's side (EOF) after the last piece.
///
/// What the connection wrote must be one valid response head (the one our protocol
/// core decides for the request, with the right `Sec-WebSocket-Accept` for a 101) and,
/// after a 101, unmasked frames that a client decodes without error, nothing after a
/// Close. Without the clock, the frames must be exactly the replies
/// `expected_replies` derives from the client's frames. The gauges must match the
/// connection's state after every step.
pub fn connection(data: &[u8]) {
    let input = Input::new(data);
    let config = connection_config(input.flags);
    let (slow, clock, eof) = (
        input.flags & 4 != 0,
        input.flags & 8 != 0,
        input.flags & 16 != 0,
    );
    let max_message_size = config.max_message_size;
    let expected = expected_status(input.payload, &config);
    let mut h = Harness::new(config, if slow { 0 } else { usize::MAX })
        .expect("an in-memory connection opens");
    let check_gauges = |h: &Harness| {
        let stats = h.stats();
        assert_eq!(stats.connections, u64::from(h.is_alive()));
        assert_eq!(stats.websockets, u64::from(h.is_websocket()));
    };
    for piece in input.chunks() {
        h.step(Step::Input(piece));
        check_gauges(&h);
        if slow {
            h.step(Step::Read(64));
            check_gauges(&h);
        }
        if clock {
            h.step(Step::Advance(1));
            check_gauges(&h);
        }
    }
    if eof {
        h.step(Step::Eof);
        check_gauges(&h);
    }
    if slow {
        h.step(Step::Read(usize::MAX));
        check_gauges(&h);
    }
    // After the client's EOF nothing keeps a connection: it is dropped once the
    // output owed is written (and the client has read it all by now).
    if eof {
        assert!(!h.is_alive(), "held after EOF");
    }
    let bytes_out = h.stats().bytes_out_total;
    // A client that reads slowly while the clock runs can be dropped by a deadline
    // (send or close timeout) with output unsent: then what it got may stop anywhere.
    let cut_short = slow && clock && !h.is_alive() && h.stats().timeouts_total > 0;
    let written = h.written().to_vec();
    assert_eq!(
        bytes_out,
        written.len() as u64,
        "bytes_out_total counts what was written"
    );

    // The response head.
    let mut storage = [Header::default(); MAX_HEADERS];
    let Some((resp, head_len)) = parse_response(&written, 0, &mut storage)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&written)))
    else {
        // Nothing (or not yet a whole head) written: only while the request is unfinished.
        if cut_short {
            return;
        }
        assert!(
            written.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&written)
        );
        assert_eq!(expected, None, "a finished request gets an answer");
        return;
    };
    match expected {
        Some(status) => assert!(
            resp.status == status || (clock && resp.status == 408),
            "answered {} for {status}",
            resp.status
        ),
        None => assert!(
            clock && resp.status == 408,
            "answered {} early",
            resp.status
        ),
    }
    let after = &written[head_len..];
    if resp.status != 101 {
        // One response, then the connection closes (DESIGN.md: one request each).
        assert!(resp.headers.has_token("connection", "close"));
        let length = resp.headers.get("content-length").expect("Content-Length");
        let length: usize = std::str::from_utf8(length).unwrap().parse().unwrap();
        assert!(length == after.len() || (cut_short && length > after.len()));
        assert!(!h.is_websocket());
        return;
    }
    // §4.2.2 step 5.4: the accept answers this request's key.
    let mut req_storage = [Header::default(); MAX_HEADERS];
    let (req, req_len) = parse_request(input.payload, 0, &mut req_storage)
        .expect("upgraded")
        .expect("complete");
    let key = req.headers.get("sec-websocket-key").expect("upgraded");
    assert_eq!(
        resp.headers.get("sec-websocket-accept"),
        Some(&accept_key(key)[..])
    );

    // The frames after it, as a client decodes them.
    let client_role = ReceiverConfig {
        role: Role::Client,
        max_message_size: u64::MAX,
    };
    let (replies, used) = receive_counting(&client_role, after, &[after.len()]);
    assert!(
        !replies.iter().any(|r| matches!(r, Seen::Error(_))),
        "the server sent an invalid frame: {replies:?}"
    );
    if matches!(replies.last(), Some(Seen::Close(..))) || !cut_short {
        assert_eq!(
            used,
            after.len(),
            "a partial frame, or bytes after Close: {replies:?}"
        );
    }
    if matches!(replies.last(), Some(Seen::Close(..))) {
        assert!(!h.is_websocket(), "§5.5.1: closing after sending Close");
    }
    if clock {
        return;
    }
    let server_role = ReceiverConfig {
        role: Role::Server,
        max_message_size,
    };
    let frames = &input.payload[req_len..];
    let sent = receive(&server_role, frames, &[frames.len()]);
    let expected = expected_replies(&sent);
    let chat = matches!(
        route(&req, &Policy::default()),
        Ok(Route::Upgrade {
            endpoint: Endpoint::Chat { .. },
            ..
        })
    );
    if !chat {
        assert_eq!(replies, expected, "client sent {sent:?}");
        return;
    }
    // A chat message reaches its room, this member included, when the reactor fans out
    // at the end of the read turn that completed it: a Pong, sent at once, may overtake
    // it, and a Close sent in that same turn comes first, after which nothing is sent
    // (§5.5.1). So: Pongs and the Close exactly; messages in order, the last ones missing
    // only before that Close.
    let is_message = |r: &&Seen| matches!(r, Seen::Message(..));
    let messages: Vec<&Seen> = replies.iter().filter(is_message).collect();
    let expected_messages: Vec<&Seen> = expected.iter().filter(is_message).collect();
    assert_eq!(
        replies
            .iter()
            .filter(|r| !is_message(r))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .filter(|r| !is_message(r))
            .collect::<Vec<_>>(),
        "client sent {sent:?}"
    );
    assert!(
        expected_messages.starts_with(&messages),
        "client sent {sent:?}, got {replies:?}"
    );
    if messages.len() < expected_messages.len() {
        assert!(
            matches!(replies.last(), Some(Seen::Close(..))),
            "{replies:?}"
        );
    }
}
