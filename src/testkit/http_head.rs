//! The `http_head` fuzz target: the request and response head parsers over
//! arbitrary bytes, every way of delivering them, and the handshake check's decision.

use std::fmt::Debug;

use super::Input;
use crate::chat_route::{RoomName, DEFAULT_ROOM};
use crate::protocol::handshake::{accept_key, check_request, HandshakeError, Policy};
use crate::protocol::http::{
    parse_request, parse_response, Header, Headers, HttpError, MAX_HEADERS, MAX_HEAD_LEN,
};
use crate::server::routes::{route, Route};

/// Header fields as owned `(name, value)` pairs, in order.
pub type OwnedFields = Vec<(String, Vec<u8>)>;

/// A parsed request head as owned values, so results can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRequest {
    /// The method.
    pub method: String,
    /// The request target, as sent.
    pub target: String,
    /// HTTP/1.`minor`.
    pub minor: u8,
    /// The fields, in order.
    pub headers: OwnedFields,
    /// The head's length, blank line included.
    pub head_len: usize,
}

/// A parsed response head as owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedResponse {
    /// The status code.
    pub status: u16,
    /// The fields, in order.
    pub headers: OwnedFields,
    /// The head's length, blank line included.
    pub head_len: usize,
}

/// A head's fields as owned pairs.
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

/// Checks the handshake decision on an accepted request against RFC 6455 §4.2.1, and
/// where the server's routes send it.
fn check_route(buf: &[u8], req: &OwnedRequest, policy: &Policy<'_>) {
    let mut storage = [Header::default(); MAX_HEADERS];
    let (parsed, _) = parse_request(buf, 0, &mut storage)
        .expect("parsed before")
        .expect("complete before");
    let h = parsed.headers;
    match check_request(&parsed, policy) {
        Ok(Some(upgrade)) => {
            assert_eq!(req.method, "GET");
            assert!(req.minor >= 1, "an upgrade needs HTTP/1.1 (§4.1)");
            assert_eq!(h.count("host"), 1);
            assert!(h.has_token("upgrade", "websocket"));
            assert!(h.has_token("connection", "upgrade"));
            assert_eq!(h.get("sec-websocket-version"), Some(&b"13"[..]));
            assert_eq!(h.count("sec-websocket-key"), 1);
            let key = h.get("sec-websocket-key").expect("counted");
            assert_eq!(key.len(), 24);
            assert_eq!(upgrade.accept, accept_key(key));
            if !policy.allowed_origins.is_empty() {
                let origin = h.get("origin").expect("§10.2: checked");
                assert!(policy
                    .allowed_origins
                    .iter()
                    .any(|o| o.as_bytes() == origin));
            }
            match route(parsed.resource(), true) {
                Ok(Route::Echo) => assert_ne!(parsed.path(), "/chat"),
                Ok(Route::Chat(room)) => {
                    let room = room.as_str();
                    assert_eq!(parsed.path(), "/chat");
                    assert!((1..=RoomName::MAX_LEN).contains(&room.len()));
                    assert!(room == DEFAULT_ROOM || parsed.resource().contains(room));
                }
                Ok(other) => panic!("an upgrade routed to {other:?}"),
                Err(refusal) => {
                    assert_eq!(parsed.path(), "/chat", "only a room name is refused");
                    assert_eq!(refusal.status.0, 400);
                }
            }
            // §4.2.2 item 5.4: only a subprotocol the client offered and we speak.
            if let Some(p) = upgrade.protocol {
                assert!(policy.protocols.iter().any(|ours| ours == p));
                assert!(h
                    .tokens("sec-websocket-protocol")
                    .any(|t| t == p.as_bytes()));
            }
        }
        Ok(None) => match route(parsed.resource(), false) {
            Ok(Route::Page) => assert_eq!((req.method.as_str(), parsed.path()), ("GET", "/")),
            Ok(Route::Stats) => {
                assert_eq!((req.method.as_str(), parsed.path()), ("GET", "/stats"))
            }
            Ok(other) => panic!("a plain request routed to {other:?}"),
            Err(refusal) => assert_eq!(refusal.status.0, 404),
        },
        Err(HandshakeError::Method) => assert_ne!(req.method, "GET"),
        Err(HandshakeError::Origin) => assert!(!policy.allowed_origins.is_empty()),
        Err(e) => {
            assert_eq!(req.method, "GET");
            assert!(matches!(e.status().0, 400 | 426), "{e:?}");
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
            deflate: input.flags & 4 != 0,
            // Bits 3–6: a context of 9 to 15 bits kept (values past 15 keep none).
            deflate_window: Some(9 + (input.flags >> 3) % 16).filter(|&bits| bits <= 15),
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
