//! A bounded HTTP/1.1 message-head parser and response writer (RFC 9112), sans-IO.
//!
//! The head is parsed only once it is complete (`\r\n\r\n` seen); until then
//! [`parse_request`] returns `Ok(None)` and consumes nothing. The caller passes how much
//! of the buffer it had already scanned, so feeding a head one byte at a time costs
//! linear, not quadratic, work. Headers are borrowed into a caller's stack array.
//! Bounds: a head over [`MAX_HEAD_LEN`] bytes or with more than [`MAX_HEADERS`] fields
//! is refused with 431 before it can grow further.

use std::fmt;

/// The largest request head accepted (request line, fields and the blank line).
pub const MAX_HEAD_LEN: usize = 8192;
/// The most header fields accepted.
pub const MAX_HEADERS: usize = 64;

/// A header field; the value is raw bytes (obs-text is allowed in values, RFC 9110 §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header<'a> {
    /// The field name as sent (compare case-insensitively, RFC 9110 §5.1).
    pub name: &'a str,
    /// The field value without surrounding whitespace.
    pub value: &'a [u8],
}

/// The fields of a parsed head.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'h, 'b> {
    fields: &'h [Header<'b>],
}

impl<'b> Headers<'_, 'b> {
    /// The value of the first field with this name (names are case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'b [u8]> {
        self.fields
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Whether any field with this name holds `token` in its comma-separated list
    /// (case-insensitive, as `Connection: keep-alive, Upgrade` needs).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The non-empty elements of the comma-separated lists in every field with this name,
    /// in order, without surrounding whitespace (RFC 9110 §5.6.1; §5.3: repeated fields
    /// are one list).
    pub fn tokens<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.fields
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(|t| t.trim_ascii())
            .filter(|t| !t.is_empty())
    }

    /// How many fields have this name.
    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    }
}

impl<'h, 'b> Headers<'h, 'b> {
    /// The fields in the order they were sent (for tests and fuzzing, which compare
    /// whole heads; the server itself only asks by name).
    pub fn iter(&self) -> std::iter::Copied<std::slice::Iter<'h, Header<'b>>> {
        self.fields.iter().copied()
    }
}

/// A parsed request head, borrowing from the input buffer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'h, 'b> {
    /// The method token, e.g. `GET`.
    pub method: &'b str,
    /// The request-target as sent: origin-form (path and optional query), or another
    /// form (see [`Request::resource`]).
    pub target: &'b str,
    /// The minor version: HTTP/1.`minor`.
    pub minor: u8,
    /// The header fields.
    pub headers: Headers<'h, 'b>,
}

impl<'b> Request<'_, 'b> {
    /// The resource asked for, in origin-form: the target's path and query. RFC 9112
    /// §3.2.2: a server must accept the absolute-form (`http://host/path?query`, which
    /// clients send to proxies) too; its scheme and authority are dropped (the parser
    /// has checked them). Its path may be empty (`""` or `"?q"`): see [`split_resource`].
    /// Other forms (asterisk, authority) are returned as sent.
    pub fn resource(&self) -> &'b str {
        absolute_form(self.target).map_or(self.target, |(_, resource)| resource)
    }

    /// The resource's path, without the query (see [`split_resource`]).
    pub fn path(&self) -> &'b str {
        split_resource(self.resource()).0
    }
}

/// A resource's path and query (without the `?`). An empty path is `/` (RFC 9112
/// §3.2.1: an absolute-form target with no path asks for `/`).
pub fn split_resource(resource: &str) -> (&str, &str) {
    let (path, query) = resource.split_once('?').unwrap_or((resource, ""));
    (if path.is_empty() { "/" } else { path }, query)
}

/// An absolute-form target split into its authority and its resource (path and
/// query), if `target` looks like one (`scheme "://" ...`, RFC 9110 §4.2).
fn absolute_form(target: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = target.split_once("://")?;
    // RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let mut chars = scheme.bytes();
    let is_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if !is_scheme {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(rest.split_at(end))
}

/// Whether an absolute-form target is one this server answers: an `http`, `https`, `ws`
/// or `wss` URI (RFC 9110 §4.2, RFC 6455 §3) with a host and no userinfo (RFC 9110
/// §4.2.1: an empty host is invalid; §4.2.4: userinfo is to be treated as an error).
/// Targets in another form are not its business.
fn valid_if_absolute(target: &str) -> bool {
    let Some((authority, _)) = absolute_form(target) else {
        return true;
    };
    let scheme = &target[..target.find("://").unwrap_or(0)];
    let served = ["http", "https", "ws", "wss"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme));
    served && !authority.is_empty() && !authority.contains('@')
}

/// A parsed response head (the client role, used by the load generator).
#[derive(Debug, Clone, Copy)]
pub struct Response<'h, 'b> {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Headers<'h, 'b>,
}

/// Why a head was refused; each maps to the status that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x syntax: 400.
    Malformed,
    /// HTTP/2+ or another major version in an HTTP/1 head: 505.
    Version,
    /// The head is over [`MAX_HEAD_LEN`]: 431.
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] fields: 431.
    TooManyHeaders,
}

impl HttpError {
    /// The status that reports this error.
    pub fn status(self) -> Status {
        match self {
            HttpError::Malformed => Status::BAD_REQUEST,
            HttpError::Version => Status::VERSION_NOT_SUPPORTED,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => Status::HEADERS_TOO_LARGE,
        }
    }
}

impl HttpError {
    /// A stable name for the `/stats` breakdown of failed handshakes.
    pub fn name(self) -> &'static str {
        match self {
            HttpError::Malformed => "malformed_head",
            HttpError::Version => "http_version",
            HttpError::HeadTooLarge => "head_too_large",
            HttpError::TooManyHeaders => "too_many_headers",
        }
    }

    /// A short human explanation for the response body and the debug log.
    pub fn reason(self) -> &'static str {
        match self {
            HttpError::Malformed => "malformed request head",
            HttpError::Version => "only HTTP/1.x is served",
            HttpError::HeadTooLarge => "request head over 8 KiB",
            HttpError::TooManyHeaders => "more than 64 header fields",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HttpError {}

/// An HTTP status code with its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    /// 101: the WebSocket handshake's answer (§4.2.2).
    pub const SWITCHING_PROTOCOLS: Status = Status(101, "Switching Protocols");
    /// 200: a page.
    pub const OK: Status = Status(200, "OK");
    /// 400: a malformed head or upgrade.
    pub const BAD_REQUEST: Status = Status(400, "Bad Request");
    /// 403: an Origin not allowed (§10.2).
    pub const FORBIDDEN: Status = Status(403, "Forbidden");
    /// 404: no such page.
    pub const NOT_FOUND: Status = Status(404, "Not Found");
    /// 405: not GET (§4.1).
    pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    /// 426: a WebSocket version other than 13 (§4.4).
    pub const UPGRADE_REQUIRED: Status = Status(426, "Upgrade Required");
    /// 431: a head over the size or field limit.
    pub const HEADERS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    /// 503: at capacity; try again later.
    pub const SERVICE_UNAVAILABLE: Status = Status(503, "Service Unavailable");
    /// 505: not HTTP/1.x.
    pub const VERSION_NOT_SUPPORTED: Status = Status(505, "HTTP Version Not Supported");
}

/// Finds the end of the head (just past `\r\n\r\n`) in `buf`, whose first `scanned`
/// bytes were already searched by an earlier call.
fn head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    let from = scanned.saturating_sub(3);
    buf[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

/// Splits a complete head into its start line and its field lines. Every line must end
/// in CRLF; a bare CR or LF is malformed (RFC 9112 §2.2 lets us be strict).
fn lines(head: &[u8]) -> Result<impl Iterator<Item = &[u8]>, HttpError> {
    let body = &head[..head.len() - 4];
    for (i, &b) in body.iter().enumerate() {
        let ok = match b {
            b'\r' => body.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && body[i - 1] == b'\r',
            _ => true,
        };
        if !ok {
            return Err(HttpError::Malformed);
        }
    }
    Ok(body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l)))
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn token(bytes: &[u8]) -> Result<&str, HttpError> {
    if bytes.is_empty() || !bytes.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::Malformed);
    }
    std::str::from_utf8(bytes).map_err(|_| HttpError::Malformed)
}

/// Parses `HTTP/1.x` into x.
fn version(bytes: &[u8]) -> Result<u8, HttpError> {
    match bytes {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor @ b'0'..=b'9'] => Ok(minor - b'0'),
        [b'H', b'T', b'T', b'P', b'/', b'0'..=b'9', b'.', b'0'..=b'9'] => Err(HttpError::Version),
        _ => Err(HttpError::Malformed),
    }
}

/// Strips the optional whitespace around a field value: SP and HTAB only (RFC 9110
/// §5.6.3 OWS), so any other control byte stays in the value and is refused there.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

fn parse_fields<'h, 'b>(
    field_lines: impl Iterator<Item = &'b [u8]>,
    storage: &'h mut [Header<'b>; MAX_HEADERS],
) -> Result<Headers<'h, 'b>, HttpError> {
    let mut n = 0;
    for line in field_lines {
        // RFC 9112 §5.2: obsolete line folding is rejected with 400.
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Err(HttpError::Malformed);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::Malformed)?;
        // §5.1: no whitespace between the field name and the colon.
        let name = token(&line[..colon])?;
        let value = trim_ows(&line[colon + 1..]);
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7F) {
            return Err(HttpError::Malformed);
        }
        let slot = storage.get_mut(n).ok_or(HttpError::TooManyHeaders)?;
        *slot = Header { name, value };
        n += 1;
    }
    Ok(Headers {
        fields: &storage[..n],
    })
}

/// Locates a complete head or reports that more bytes are needed (`Ok(None)`, nothing
/// consumed); refuses a head that has outgrown the bound.
fn complete_head(buf: &[u8], scanned: usize) -> Result<Option<&[u8]>, HttpError> {
    match head_end(buf, scanned) {
        Some(end) if end <= MAX_HEAD_LEN => Ok(Some(&buf[..end])),
        Some(_) => Err(HttpError::HeadTooLarge),
        None if buf.len() >= MAX_HEAD_LEN => Err(HttpError::HeadTooLarge),
        None => Ok(None),
    }
}

/// Parses a request head from the start of `buf`. Returns the request and the head's
/// length (the bytes after it belong to the next protocol), or `Ok(None)` if the head
/// is not complete yet. `scanned` is the length `buf` had at the previous call (0 at
/// first), which keeps byte-at-a-time delivery linear.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    scanned: usize,
    storage: &'h mut [Header<'b>; MAX_HEADERS],
) -> Result<Option<(Request<'h, 'b>, usize)>, HttpError> {
    let Some(head) = complete_head(buf, scanned)? else {
        return Ok(None);
    };
    let mut lines = lines(head)?;
    let start = lines.next().ok_or(HttpError::Malformed)?;
    let mut parts = start.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(ver), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed);
    };
    let method = token(method)?;
    if target.is_empty() || !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(HttpError::Malformed);
    }
    let target = std::str::from_utf8(target).map_err(|_| HttpError::Malformed)?;
    if !valid_if_absolute(target) {
        return Err(HttpError::Malformed);
    }
    let minor = version(ver)?;
    let headers = parse_fields(lines, storage)?;
    let request = Request {
        method,
        target,
        minor,
        headers,
    };
    Ok(Some((request, head.len())))
}

/// Parses a response head (status line and fields) from the start of `buf`, like
/// [`parse_request`].
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    scanned: usize,
    storage: &'h mut [Header<'b>; MAX_HEADERS],
) -> Result<Option<(Response<'h, 'b>, usize)>, HttpError> {
    let Some(head) = complete_head(buf, scanned)? else {
        return Ok(None);
    };
    let mut lines = lines(head)?;
    let start = lines.next().ok_or(HttpError::Malformed)?;
    let mut parts = start.splitn(3, |&b| b == b' ');
    let (Some(ver), Some(code)) = (parts.next(), parts.next()) else {
        return Err(HttpError::Malformed);
    };
    version(ver)?;
    let status = match code {
        [a, b, c] if code.iter().all(u8::is_ascii_digit) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(HttpError::Malformed),
    };
    let headers = parse_fields(lines, storage)?;
    Ok(Some((Response { status, headers }, head.len())))
}

/// Appends a complete response. Every response but 101 carries `Content-Length` and
/// `Connection: close`: the server answers one request per connection.
pub fn write_response(out: &mut Vec<u8>, status: Status, headers: &[(&str, &str)], body: &[u8]) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status.0, status.1);
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if status != Status::SWITCHING_PROTOCOLS {
        let _ = write!(
            out,
            "Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /chat?room=a HTTP/1.1\r\nHost: server.example.com\r\n\
Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nFRAME";

    fn parse(buf: &[u8]) -> Result<Option<(String, String, u8, usize)>, HttpError> {
        let mut storage = [Header::default(); MAX_HEADERS];
        Ok(parse_request(buf, 0, &mut storage)?
            .map(|(r, n)| (r.method.to_owned(), r.target.to_owned(), r.minor, n)))
    }

    #[test]
    fn parses_a_complete_head_and_leaves_what_follows() {
        let mut storage = [Header::default(); MAX_HEADERS];
        let (req, n) = parse_request(REQUEST, 0, &mut storage).unwrap().unwrap();
        assert_eq!(
            (req.method, req.target, req.path(), req.minor),
            ("GET", "/chat?room=a", "/chat", 1)
        );
        assert_eq!(&REQUEST[n..], b"FRAME");
        assert_eq!(req.headers.get("sec-websocket-version"), Some(&b"13"[..]));
        assert!(req.headers.has_token("connection", "upgrade"));
        assert!(!req.headers.has_token("connection", "close"));
        assert_eq!(req.headers.count("HOST"), 1);
    }

    #[test]
    fn an_absolute_form_target_names_the_same_resource() {
        let resource = |head: &[u8]| {
            let mut storage = [Header::default(); MAX_HEADERS];
            let (req, _) = parse_request(head, 0, &mut storage).unwrap().unwrap();
            (req.resource().to_owned(), req.path().to_owned())
        };
        let cases: [(&[u8], &str, &str); 6] = [
            (
                b"GET /chat?room=a HTTP/1.1\r\n\r\n",
                "/chat?room=a",
                "/chat",
            ),
            (
                b"GET http://h:80/chat?room=a HTTP/1.1\r\n\r\n",
                "/chat?room=a",
                "/chat",
            ),
            (b"GET HTTPS://h/ HTTP/1.1\r\n\r\n", "/", "/"),
            (b"GET ws://h HTTP/1.1\r\n\r\n", "", "/"),
            (b"GET wss://h?x=1 HTTP/1.1\r\n\r\n", "?x=1", "/"),
            // Not absolute-form: as sent (and routed to 404).
            (
                b"GET 1http://h/a HTTP/1.1\r\n\r\n",
                "1http://h/a",
                "1http://h/a",
            ),
        ];
        for (head, want_resource, want_path) in cases {
            let got = resource(head);
            assert_eq!((got.0.as_str(), got.1.as_str()), (want_resource, want_path));
        }
        // RFC 9110 §4.2.1 (an empty host), §4.2.4 (userinfo), and schemes not served.
        for bad in ["http:///chat", "http://user@h/", "ftp://h/", "foo://h/chat"] {
            let head = format!("GET {bad} HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(parse(head.as_bytes()), Err(HttpError::Malformed), "{bad}");
        }
    }

    #[test]
    fn every_prefix_of_a_head_is_partial() {
        let end = REQUEST.len() - b"FRAME".len();
        for cut in 0..end {
            assert_eq!(parse(&REQUEST[..cut]), Ok(None), "cut {cut}");
        }
        assert!(parse(&REQUEST[..end]).unwrap().is_some());
    }

    #[test]
    fn incremental_scanning_finds_a_terminator_split_across_calls() {
        let mut storage = [Header::default(); MAX_HEADERS];
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 0..head.len() {
            assert!(
                parse_request(&head[..], split, &mut storage)
                    .unwrap()
                    .is_some(),
                "{split}"
            );
        }
    }

    #[test]
    fn malformed_heads_are_400() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nName : v\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Err(HttpError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(HttpError::Malformed.status().0, 400);
        }
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n"), Err(HttpError::Version));
    }

    /// Found by the differential test against httparse: `trim_ascii` also strips form
    /// feeds, so a field value with a leading or trailing FF was accepted with the FF
    /// silently dropped. RFC 9110 §5.5/§5.6.3: the whitespace around a field value is
    /// OWS (SP / HTAB only), and no other control character may appear in it.
    #[test]
    fn form_feed_around_a_field_value_is_malformed() {
        for bad in [
            &b"GET / HTTP/1.1\r\nA: \x0cb\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nA: b\x0c\r\n\r\n",
            b"GET / HTTP/1.1\r\nA:\x0c\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Err(HttpError::Malformed), "{bad:?}");
        }
        let mut storage = [Header::default(); MAX_HEADERS];
        let resp = b"HTTP/1.1 200 OK\r\nA: b\x0c\r\n\r\n";
        assert_eq!(
            parse_response(resp, 0, &mut storage).map(|r| r.is_some()),
            Err(HttpError::Malformed)
        );
        // Spaces and tabs around a value are OWS and are not part of it.
        let mut storage = [Header::default(); MAX_HEADERS];
        let ok = b"GET / HTTP/1.1\r\nA: \t b c\t \r\n\r\n";
        let (req, _) = parse_request(ok, 0, &mut storage).unwrap().unwrap();
        assert_eq!(req.headers.get("a"), Some(&b"b c"[..]));
    }

    #[test]
    fn oversized_heads_are_431_without_waiting_for_the_end() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_LEN, b'a');
        assert_eq!(parse(&big), Err(HttpError::HeadTooLarge));
        assert_eq!(parse(&big[..MAX_HEAD_LEN - 1]), Ok(None));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Err(HttpError::TooManyHeaders));
        assert_eq!(HttpError::TooManyHeaders.status().0, 431);
    }

    #[test]
    fn responses_round_trip_through_the_response_parser() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            Status::NOT_FOUND,
            &[("Content-Type", "text/plain")],
            b"nope",
        );
        let mut storage = [Header::default(); MAX_HEADERS];
        let (resp, n) = parse_response(&out, 0, &mut storage).unwrap().unwrap();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.headers.get("content-length"), Some(&b"4"[..]));
        assert_eq!(&out[n..], b"nope");
        let mut out = Vec::new();
        write_response(
            &mut out,
            Status::SWITCHING_PROTOCOLS,
            &[("Upgrade", "websocket")],
            b"",
        );
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        );
    }
}
