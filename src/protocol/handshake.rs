//! The opening handshake (RFC 6455 §4): routing a request head to an upgrade, a plain
//! page, or the HTTP error that explains why not; and the client's side of it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

use super::http::{Request, Response, Status};

/// The GUID appended to the key (§1.3).
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1.
pub const ACCEPT_LEN: usize = 28;

/// The room a `/chat` upgrade joins when it names none.
pub const DEFAULT_ROOM: &str = "lobby";

/// The longest room name accepted.
pub const MAX_ROOM_LEN: usize = 64;

/// What the server's operator allows, as `route` needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'c> {
    /// Origins allowed to upgrade; empty means any (and no Origin needed).
    pub allowed_origins: &'c [String],
    /// Subprotocols the server speaks, for `Sec-WebSocket-Protocol` (§4.2.2 item 5.4).
    pub protocols: &'c [String],
}

/// Where a valid request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// A valid WebSocket upgrade: answer 101 with this accept value and subprotocol.
    Upgrade {
        accept: [u8; ACCEPT_LEN],
        endpoint: Endpoint<'a>,
        protocol: Option<&'a str>,
    },
    /// `GET /`: the demo page.
    Page,
    /// `GET /stats`: the counters as JSON.
    Stats,
}

/// What an upgraded connection does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// Sends every message back to its sender (any path but `/chat`).
    Echo,
    /// `/chat?room=NAME`: sends every message to every member of the room.
    Chat { room: &'a str },
}

/// Why a request is not served; each maps to the status that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not GET (§4.1: the handshake is a GET; every route here is GET-only): 405.
    Method,
    /// No such page: 404.
    NotFound,
    /// An upgrade request missing or botching a required field: 400.
    Invalid(&'static str),
    /// A `Sec-WebSocket-Version` other than 13 (§4.4): 426.
    Version,
    /// An `Origin` that is not allowed (§10.2): 403.
    Origin,
}

impl HandshakeError {
    pub fn status(self) -> Status {
        match self {
            HandshakeError::Method => Status::METHOD_NOT_ALLOWED,
            HandshakeError::NotFound => Status::NOT_FOUND,
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
            HandshakeError::NotFound => "not_found",
            HandshakeError::Invalid(_) => "bad_upgrade",
            HandshakeError::Version => "websocket_version",
            HandshakeError::Origin => "origin_forbidden",
        }
    }

    /// A short human explanation for the response body and the debug log.
    pub fn reason(self) -> &'static str {
        match self {
            HandshakeError::Method => "only GET is served",
            HandshakeError::NotFound => "no such page",
            HandshakeError::Invalid(why) => why,
            HandshakeError::Version => "Sec-WebSocket-Version must be 13",
            HandshakeError::Origin => "origin not allowed",
        }
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

/// Routes a request head: an upgrade on any path, `/` and `/stats` without one.
pub fn route<'a>(req: &Request<'_, 'a>, policy: &Policy) -> Result<Route<'a>, HandshakeError> {
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
        return match req.path() {
            "/" => Ok(Route::Page),
            "/stats" => Ok(Route::Stats),
            _ => Err(HandshakeError::NotFound),
        };
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
    Ok(Route::Upgrade {
        accept: accept_key(key),
        endpoint: endpoint(req)?,
        protocol: select_protocol(req, policy.protocols),
    })
}

/// `/chat` with an optional `room=NAME` in the query joins a room; any other path echoes.
/// Room names are kept to RFC 3986 §2.3 unreserved characters, which never need
/// percent-encoding, so the name a page sends is the name it asked for.
fn endpoint<'a>(req: &Request<'_, 'a>) -> Result<Endpoint<'a>, HandshakeError> {
    if req.path() != "/chat" {
        return Ok(Endpoint::Echo);
    }
    let query = req.target.split_once('?').map_or("", |(_, q)| q);
    let room = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("room="))
        .unwrap_or(DEFAULT_ROOM);
    let unreserved = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
    if room.is_empty() || room.len() > MAX_ROOM_LEN || !room.bytes().all(unreserved) {
        return Err(HandshakeError::Invalid(
            "room must be 1 to 64 letters, digits, '-', '.', '_' or '~'",
        ));
    }
    Ok(Endpoint::Chat { room })
}

/// The subprotocol to answer with (§4.2.2 item 5.4): the first one the client offers,
/// in its order of preference (§4.1 item 10), that the server speaks; none otherwise.
fn select_protocol<'a>(req: &Request<'_, 'a>, protocols: &[String]) -> Option<&'a str> {
    req.headers
        .tokens("sec-websocket-protocol")
        .find(|offered| protocols.iter().any(|p| p.as_bytes() == *offered))
        .and_then(|offered| std::str::from_utf8(offered).ok())
}

/// A fresh random `Sec-WebSocket-Key` (§4.1 item 7: 16 random bytes, base64).
pub fn new_client_key() -> [u8; 24] {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).expect("the OS random source is available");
    let mut out = [0u8; 24];
    BASE64
        .encode_slice(nonce, &mut out)
        .expect("16 bytes encode to 24");
    out
}

/// The client's opening request (§4.1).
pub fn client_request(host: &str, path: &str, key: &[u8; 24]) -> Vec<u8> {
    let key = std::str::from_utf8(key).expect("base64 is ASCII");
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
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
        };
        route(&req, &policy).map(|r| format!("{r:?}"))
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
    fn valid_upgrade_on_any_path() {
        let ok = "Sec-WebSocket-Version: 13\r\nOrigin: https://ok.example\r\n";
        let r = route_of(&upgrade(ok)).unwrap();
        assert!(r.contains("Upgrade") && r.contains("Echo"), "{r}");
        let r = route_of(&upgrade(ok).replace("/echo", "/anything/else?x=1")).unwrap();
        assert!(r.contains("Echo"), "{r}");
    }

    #[test]
    fn chat_upgrades_name_their_room() {
        let ok = "Sec-WebSocket-Version: 13\r\nOrigin: https://ok.example\r\n";
        let chat = |target: &str| route_of(&upgrade(ok).replace("/echo", target));
        assert!(chat("/chat").unwrap().contains(r#"Chat { room: "lobby" }"#));
        assert!(chat("/chat?room=a-b.c_d~9")
            .unwrap()
            .contains(r#"Chat { room: "a-b.c_d~9" }"#));
        assert!(chat("/chat?x=1&room=r2&room=r3")
            .unwrap()
            .contains(r#"Chat { room: "r2" }"#));
        assert!(chat("/chat/?room=r").unwrap().contains("Echo"));
        for bad in ["/chat?room=", "/chat?room=a%20b", "/chat?room=a/b"] {
            assert_eq!(chat(bad).unwrap_err().status().0, 400, "{bad}");
        }
        let long = format!("/chat?room={}", "r".repeat(MAX_ROOM_LEN));
        assert!(chat(&long).is_ok());
        assert_eq!(chat(&format!("{long}r")).unwrap_err().status().0, 400);
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
    fn plain_requests_route_to_pages_or_404() {
        assert_eq!(
            route_of("GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap(),
            "Page"
        );
        assert_eq!(route_of("GET /stats HTTP/1.0\r\n\r\n").unwrap(), "Stats");
        assert_eq!(
            route_of("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n"),
            Err(HandshakeError::NotFound)
        );
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
        let key = new_client_key();
        let mut storage = [Header::default(); MAX_HEADERS];
        let req = client_request("127.0.0.1:9", "/", &key);
        let (parsed, _) = parse_request(&req, 0, &mut storage).unwrap().unwrap();
        let Ok(Route::Upgrade { accept, .. }) = route(&parsed, &Policy::default()) else {
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
            check_response(&resp, &new_client_key()),
            Err(ResponseError::BadAccept)
        );
    }
}
