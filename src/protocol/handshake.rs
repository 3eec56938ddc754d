//! The opening handshake (RFC 6455 §4): routing a request head to an upgrade, a plain
//! page, or the HTTP error that explains why not; and the client's side of it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

use super::deflate::{negotiate, Agreement};
use super::http::{write_response, HttpError, Request, Response, Status};

/// The GUID appended to the key (§1.3).
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1.
pub const ACCEPT_LEN: usize = 28;

/// What the server's operator allows, as [`check_request`] needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'c> {
    /// Origins allowed to upgrade; empty means any (and no Origin needed).
    pub allowed_origins: &'c [String],
    /// Subprotocols the server speaks, for `Sec-WebSocket-Protocol` (§4.2.2 item 5.4).
    pub protocols: &'c [String],
    /// Whether permessage-deflate offers are accepted (RFC 7692).
    pub deflate: bool,
    /// With `deflate`, the window (in bits, 9 to 15) of the context the server keeps per
    /// connection and direction where the offer allows context takeover; `None`: none.
    pub deflate_window: Option<u8>,
}

/// A valid WebSocket upgrade: what the 101 answers it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade<'a> {
    /// The `Sec-WebSocket-Accept` value (§4.2.2 step 5.4).
    pub accept: [u8; ACCEPT_LEN],
    /// The subprotocol selected, if any.
    pub protocol: Option<&'a str>,
    /// The permessage-deflate offer accepted, if any (RFC 7692 §7.1).
    pub deflate: Option<Agreement>,
}

/// Why a request is not served; each maps to the status that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not GET (§4.1: the handshake is a GET; every route here is GET-only): 405.
    Method,
    /// An upgrade request missing or botching a required field: 400.
    Invalid(&'static str),
    /// A `Sec-WebSocket-Version` other than 13 (§4.4): 426.
    Version,
    /// An `Origin` that is not allowed (§10.2): 403.
    Origin,
}

impl HandshakeError {
    /// The status that reports this error.
    pub fn status(self) -> Status {
        match self {
            HandshakeError::Method => Status::METHOD_NOT_ALLOWED,
            HandshakeError::Invalid(_) => Status::BAD_REQUEST,
            HandshakeError::Version => Status::UPGRADE_REQUIRED,
            HandshakeError::Origin => Status::FORBIDDEN,
        }
    }

    /// The extra headers the error response must carry.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            // §4.4: tell the client which version we speak.
            HandshakeError::Version => &[("Sec-WebSocket-Version", "13")],
            HandshakeError::Method => &[("Allow", "GET")],
            _ => &[],
        }
    }

    /// A stable name for the `/stats` breakdown of failed handshakes.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeError::Method => "method_not_allowed",
            HandshakeError::Invalid(_) => "bad_upgrade",
            HandshakeError::Version => "websocket_version",
            HandshakeError::Origin => "origin_forbidden",
        }
    }

    /// A short human explanation for the response body and the debug log.
    pub fn reason(self) -> &'static str {
        match self {
            HandshakeError::Method => "only GET is served",
            HandshakeError::Invalid(why) => why,
            HandshakeError::Version => "Sec-WebSocket-Version must be 13",
            HandshakeError::Origin => "origin not allowed",
        }
    }
}

/// An HTTP error answer, from the protocol (a bad head or upgrade) or the application
/// (no such page, over capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The status line's code and reason.
    pub status: Status,
    /// Extra headers the status calls for (`Allow`, `Sec-WebSocket-Version`, …).
    pub headers: &'static [(&'static str, &'static str)],
    /// A stable name for counting refusals by reason.
    pub name: &'static str,
    /// A short human explanation for the body and the log.
    pub reason: &'static str,
}

impl From<HttpError> for Refusal {
    fn from(e: HttpError) -> Refusal {
        Refusal {
            status: e.status(),
            headers: &[],
            name: e.name(),
            reason: e.reason(),
        }
    }
}

impl From<HandshakeError> for Refusal {
    fn from(e: HandshakeError) -> Refusal {
        Refusal {
            status: e.status(),
            headers: e.headers(),
            name: e.name(),
            reason: e.reason(),
        }
    }
}

impl Refusal {
    /// 408: the request head did not arrive within the handshake timeout.
    pub const TIMEOUT: Refusal = Refusal {
        status: Status(408, "Request Timeout"),
        headers: &[],
        name: "timeout",
        reason: "request head not received in time",
    };

    // The server at capacity: every answer to it is a 503 with `Retry-After` (RFC 9110
    // §15.6.4), and all of them are here.

    /// 503: an upgrade over `--max-connections`.
    pub const OVER_CAPACITY: Refusal = Refusal {
        status: Status::SERVICE_UNAVAILABLE,
        headers: &[("Retry-After", "1")],
        name: "over_capacity",
        reason: "server at --max-connections",
    };

    /// 503: every descriptor is taken and this connection has waited longest for its
    /// request head: it gives way to a newcomer.
    pub const GAVE_WAY: Refusal = Refusal {
        status: Status::SERVICE_UNAVAILABLE,
        headers: &[("Retry-After", "1")],
        name: "gave_way",
        reason: "server at capacity: the slowest request head gives way to a newcomer",
    };

    /// 503: every descriptor is taken and no connection can give way: a newcomer is
    /// told so at once rather than left in the backlog.
    pub const NO_DESCRIPTOR: Refusal = Refusal {
        status: Status::SERVICE_UNAVAILABLE,
        headers: &[("Retry-After", "1")],
        name: "no_descriptor",
        reason: "server at capacity: out of file descriptors",
    };

    /// The whole response: the status, the refusal's headers and a one-line plain-text
    /// body saying why. Every refusal goes out in this one shape.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
        headers.extend_from_slice(self.headers);
        let body = format!("{} {}: {}\n", self.status.0, self.status.1, self.reason);
        write_response(out, self.status, &headers, body.as_bytes());
    }
}

/// `base64(sha1(key + GUID))` (§4.2.2 step 5.4).
pub fn accept_key(key: &[u8]) -> [u8; ACCEPT_LEN] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID);
    let mut out = [0u8; ACCEPT_LEN];
    BASE64
        .encode_slice(sha.finalize(), &mut out)
        .expect("20 bytes encode to 28");
    out
}

/// Whether a `Sec-WebSocket-Key` is the base64 of 16 bytes (§4.1 item 7).
fn valid_key(key: &[u8]) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(BASE64.decode_slice(key, &mut decoded), Ok(16))
}

/// Checks a request head (§4.1, §4.2.1): `Some` for a valid WebSocket upgrade on any
/// path, `None` for a plain GET that the application may serve as a page, or the error
/// that refuses it. Which path leads where is the application's business, not this.
pub fn check_request<'a>(
    req: &Request<'_, 'a>,
    policy: &Policy<'_>,
) -> Result<Option<Upgrade<'a>>, HandshakeError> {
    if req.method != "GET" {
        return Err(HandshakeError::Method);
    }
    let h = &req.headers;
    // RFC 9112 §3.2: an HTTP/1.1 request without Host, or any with several, is a 400.
    match h.count("host") {
        0 if req.minor >= 1 => return Err(HandshakeError::Invalid("Host is required")),
        0 | 1 => {}
        _ => return Err(HandshakeError::Invalid("more than one Host")),
    }
    if !h.has_token("upgrade", "websocket") {
        if h.get("sec-websocket-key").is_some() {
            return Err(HandshakeError::Invalid("Upgrade: websocket is missing"));
        }
        return Ok(None);
    }
    // §4.1: the handshake is HTTP/1.1 or higher (so it has its one Host).
    if req.minor < 1 {
        return Err(HandshakeError::Invalid("the handshake needs HTTP/1.1"));
    }
    if !h.has_token("connection", "upgrade") {
        return Err(HandshakeError::Invalid("Connection must include Upgrade"));
    }
    if h.get("sec-websocket-version") != Some(b"13") {
        return Err(HandshakeError::Version);
    }
    let key = match h.get("sec-websocket-key") {
        Some(key) if h.count("sec-websocket-key") == 1 && valid_key(key) => key,
        _ => {
            return Err(HandshakeError::Invalid(
                "Sec-WebSocket-Key must be base64 of 16 bytes",
            ))
        }
    };
    // §10.2: browsers always send Origin, so with an allow-list a request without one
    // is refused too: the list is meant to admit named sites, not anonymous clients.
    if !policy.allowed_origins.is_empty() {
        let allowed = |origin: &[u8]| {
            policy
                .allowed_origins
                .iter()
                .any(|o| o.as_bytes() == origin)
        };
        if h.count("origin") != 1 || !h.get("origin").is_some_and(allowed) {
            return Err(HandshakeError::Origin);
        }
    }
    Ok(Some(Upgrade {
        accept: accept_key(key),
        protocol: select_protocol(req, policy.protocols),
        deflate: policy
            .deflate
            .then(|| negotiate(h, policy.deflate_window))
            .flatten(),
    }))
}

/// The subprotocol to answer with (§4.2.2 item 5.4): the first one the client offers,
/// in its order of preference (§4.1 item 10), that the server speaks; none otherwise.
fn select_protocol<'a>(req: &Request<'_, 'a>, protocols: &[String]) -> Option<&'a str> {
    req.headers
        .tokens("sec-websocket-protocol")
        .find(|offered| protocols.iter().any(|p| p.as_bytes() == *offered))
        .and_then(|offered| std::str::from_utf8(offered).ok())
}

/// The `Sec-WebSocket-Key` for a nonce (§4.1 item 7: 16 random bytes, base64); the
/// caller draws the nonce, so that this core never reads a random source.
pub fn client_key(nonce: [u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    BASE64
        .encode_slice(nonce, &mut out)
        .expect("16 bytes encode to 24");
    out
}

/// The client's opening request (§4.1), offering `extensions` (a
/// `Sec-WebSocket-Extensions` value, §9.1) if given.
pub fn client_request(host: &str, path: &str, key: &[u8; 24], extensions: Option<&str>) -> Vec<u8> {
    let key = std::str::from_utf8(key).expect("base64 is ASCII");
    let offer = extensions.map_or(String::new(), |e| {
        format!("Sec-WebSocket-Extensions: {e}\r\n")
    });
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    )
    .into_bytes()
}

/// Why a server's answer to [`client_request`] does not open a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// A status other than 101: the server refused (§4.1: "any status code other than
    /// 101 indicates that the WebSocket handshake has not completed").
    Refused(u16),
    /// 101 without `Upgrade: websocket` and `Connection: Upgrade` (§4.1 client rules 2, 3).
    NotWebSocket,
    /// A `Sec-WebSocket-Accept` that does not answer our key (§4.1 client rule 4).
    BadAccept,
}

/// Checks the server's answer to [`client_request`] (§4.2.2, §4.1 client rules).
pub fn check_response(resp: &Response<'_, '_>, key: &[u8; 24]) -> Result<(), ResponseError> {
    if resp.status != 101 {
        return Err(ResponseError::Refused(resp.status));
    }
    if !resp.headers.has_token("upgrade", "websocket")
        || !resp.headers.has_token("connection", "upgrade")
    {
        return Err(ResponseError::NotWebSocket);
    }
    if resp.headers.get("sec-websocket-accept") != Some(&accept_key(key)[..]) {
        return Err(ResponseError::BadAccept);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::{parse_request, parse_response, Header, MAX_HEADERS};

    fn route_of(head: &str) -> Result<String, HandshakeError> {
        let mut storage = [Header::default(); MAX_HEADERS];
        let (req, _) = parse_request(head.as_bytes(), 0, &mut storage)
            .unwrap()
            .unwrap();
        let policy = Policy {
            allowed_origins: &["https://ok.example".to_owned()],
            protocols: &["chat.v2".to_owned(), "chat.v1".to_owned()],
            deflate: false,
            deflate_window: None,
        };
        check_request(&req, &policy).map(|r| format!("{r:?}"))
    }

    fn upgrade(extra: &str) -> String {
        format!(
            "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        )
    }

    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn the_first_offered_protocol_we_speak_is_selected() {
        let ok = "Sec-WebSocket-Version: 13\r\nOrigin: https://ok.example\r\n";
        let offer = |offer: &str| route_of(&upgrade(&format!("{ok}{offer}"))).unwrap();
        assert!(offer("").contains("protocol: None"));
        assert!(offer("Sec-WebSocket-Protocol: x, y\r\n").contains("protocol: None"));
        // The client's order decides (§4.1 item 10: in order of preference).
        assert!(offer("Sec-WebSocket-Protocol: x, chat.v1,chat.v2\r\n")
            .contains(r#"protocol: Some("chat.v1")"#));
        assert!(
            offer("Sec-WebSocket-Protocol: x\r\nSec-WebSocket-Protocol:  chat.v2 \r\n")
                .contains(r#"protocol: Some("chat.v2")"#)
        );
        // Subprotocol names are case-sensitive tokens.
        assert!(offer("Sec-WebSocket-Protocol: CHAT.V1\r\n").contains("protocol: None"));
    }

    #[test]
    fn plain_requests_are_left_to_the_application() {
        assert_eq!(
            route_of("GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap(),
            "None"
        );
        assert_eq!(route_of("GET /stats HTTP/1.0\r\n\r\n").unwrap(), "None");
        let host = |head: &str| route_of(head).unwrap_err().status().0;
        assert_eq!(host("GET / HTTP/1.1\r\n\r\n"), 400, "HTTP/1.1 needs Host");
        assert_eq!(
            host("GET /stats HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            400
        );
        assert_eq!(host("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
        assert_eq!(
            route_of("POST / HTTP/1.1\r\n\r\n"),
            Err(HandshakeError::Method)
        );
    }

    #[test]
    fn each_upgrade_defect_gets_its_status() {
        let v13 = "Sec-WebSocket-Version: 13\r\n";
        let status = |head: String| route_of(&head).unwrap_err().status().0;
        assert_eq!(status(upgrade("Sec-WebSocket-Version: 8\r\n")), 426);
        assert_eq!(status(upgrade("")), 426);
        assert_eq!(
            HandshakeError::Version.headers(),
            &[("Sec-WebSocket-Version", "13")]
        );
        assert_eq!(
            status(upgrade(v13).replace("dGhlIHNhbXBsZSBub25jZQ==", "short")),
            400
        );
        assert_eq!(
            status(upgrade(v13).replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ")),
            400
        );
        assert_eq!(
            status(upgrade(v13).replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")),
            400
        );
        assert_eq!(
            status(upgrade(v13).replace("Connection: Upgrade", "Connection: close")),
            400
        );
        assert_eq!(status(upgrade(v13).replace("Host: h\r\n", "")), 400);
        assert_eq!(status(upgrade(v13).replace("HTTP/1.1", "HTTP/1.0")), 400);
        assert_eq!(
            status(upgrade(v13).replace("Upgrade: WebSocket\r\n", "")),
            400
        );
        assert_eq!(status(upgrade(v13).replace("GET", "PUT")), 405);
        assert_eq!(
            status(upgrade(&format!("{v13}Origin: https://evil.example\r\n"))),
            403
        );
        assert_eq!(status(upgrade(v13)), 403, "no Origin with an allow-list");
        assert_eq!(
            status(upgrade(&format!(
                "{v13}Origin: https://ok.example\r\nOrigin: https://evil.example\r\n"
            ))),
            403,
            "two Origins"
        );
        assert!(route_of(&upgrade(&format!("{v13}Origin: https://ok.example\r\n"))).is_ok());
    }

    #[test]
    fn client_side_checks_the_accept_value() {
        let key = client_key([7; 16]);
        let mut storage = [Header::default(); MAX_HEADERS];
        let req = client_request("127.0.0.1:9", "/", &key, None);
        let (parsed, _) = parse_request(&req, 0, &mut storage).unwrap().unwrap();
        let Ok(Some(Upgrade { accept, .. })) = check_request(&parsed, &Policy::default()) else {
            panic!("the client's own request must be a valid upgrade");
        };
        let good = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: {}\r\n\r\n",
            std::str::from_utf8(&accept).unwrap()
        );
        let mut storage = [Header::default(); MAX_HEADERS];
        let (resp, _) = parse_response(good.as_bytes(), 0, &mut storage)
            .unwrap()
            .unwrap();
        assert_eq!(check_response(&resp, &key), Ok(()));
        assert_eq!(
            check_response(&resp, &client_key([8; 16])),
            Err(ResponseError::BadAccept)
        );
    }
}
