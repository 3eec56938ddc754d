//! Differential tests: our HTTP request-head parser against `httparse`, and our frame
//! header decoder against `tungstenite`'s, on generated inputs. On every input both
//! consider valid the results must be identical. Where they differ by design, the rule
//! is stated here with its RFC section, the case is recognised exactly, and what each
//! side does with it is still asserted (see `Rule` and `FrameRule`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Runs `check` on `cases` inputs from `strategy` (deterministically seeded, so a
/// failure reproduces) and returns how often each outcome was seen.
fn run<S: Strategy>(
    cases: u32,
    strategy: S,
    check: impl Fn(&S::Value) -> &'static str,
) -> BTreeMap<&'static str, u32> {
    let counts = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let result = runner.run(&strategy, |value| {
        *counts.borrow_mut().entry(check(&value)).or_insert(0) += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    counts.into_inner()
}

mod http {
    use super::*;
    use wsreactor::protocol::http::{HttpError, MAX_HEADERS, MAX_HEAD_LEN};
    use wsreactor::testkit::http_head::{request_owned, OwnedRequest};

    /// httparse's answer as the same owned values as ours; `Ok(None)` is `Partial`.
    /// It gets as many header slots as we allow, so both count the same fields.
    fn httparse_request(buf: &[u8]) -> Result<Option<OwnedRequest>, httparse::Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        Ok(match req.parse(buf)? {
            httparse::Status::Partial => None,
            httparse::Status::Complete(head_len) => Some(OwnedRequest {
                method: req.method.expect("complete").to_owned(),
                target: req.path.expect("complete").to_owned(),
                minor: req.version.expect("complete"),
                headers: req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), h.value.to_vec()))
                    .collect(),
                head_len,
            }),
        })
    }

    /// The ways the two parsers differ by design. Each is recognised exactly, and in
    /// each our answer is still checked.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Rule {
        /// httparse ends lines at a bare LF. RFC 9112 §2.2 lets a recipient do so, and
        /// lets it be strict: we require CRLF everywhere (one line-ending rule means no
        /// two parsers on a path can disagree about where a field ends).
        BareLf,
        /// httparse skips empty lines before the request line (RFC 9112 §2.2: a server
        /// SHOULD ignore at least one). We answer one request per connection, which
        /// opens with the request line, so a leading CRLF is refused as malformed.
        LeadingEmptyLine,
        /// httparse accepts UTF-8 bytes 0x80–0xFF in the request-target. A target is
        /// a URI (RFC 9112 §3.2, RFC 3986 §2), which is ASCII: we refuse them.
        NonAsciiTarget,
        /// The head is over our 8 KiB bound (httparse has none): we answer 431.
        HeadTooLarge,
        /// httparse takes any request-target. An absolute-form one (RFC 9110 §4.2) we
        /// answer only for the schemes we serve (http, https, ws, wss), with a host and
        /// without userinfo (§4.2.1, §4.2.4): the rest we refuse as malformed.
        UnservedAbsoluteForm,
        /// httparse knows only HTTP/1.0 and HTTP/1.1. RFC 9112 §2.3: a recipient
        /// SHOULD process a higher minor version as the highest it implements, so we
        /// accept HTTP/1.2–1.9 (and route them as 1.1).
        HigherMinorVersion,
    }

    /// Whether `target` is absolute-form (`scheme "://" authority ...`) that we do not
    /// serve: another scheme, no host, or userinfo.
    fn unserved_absolute_form(target: &str) -> bool {
        let Some((scheme, rest)) = target.split_once("://") else {
            return false;
        };
        let mut chars = scheme.chars();
        let is_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let served = ["http", "https", "ws", "wss"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme));
        is_scheme && (!served || authority.is_empty() || authority.contains('@'))
    }

    fn has_bare_lf(head: &[u8]) -> bool {
        head.iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
    }

    /// The request line as httparse would see it: from the first non-empty line.
    fn request_line(buf: &[u8]) -> &[u8] {
        let start = buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(buf.len());
        let line = &buf[start..];
        &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())]
    }

    /// Compares the two parsers on `buf`; returns what was found, or panics on a
    /// disagreement that no `Rule` explains.
    pub fn compare(buf: &[u8]) -> &'static str {
        let ours = request_owned(buf, 0);
        let theirs = httparse_request(buf);
        let rule = match &theirs {
            Ok(Some(t)) => {
                let head = &buf[..t.head_len];
                if has_bare_lf(head) {
                    Some(Rule::BareLf)
                } else if head.starts_with(b"\r\n") {
                    Some(Rule::LeadingEmptyLine)
                } else if !t.target.is_ascii() {
                    Some(Rule::NonAsciiTarget)
                } else if t.head_len > MAX_HEAD_LEN {
                    Some(Rule::HeadTooLarge)
                } else if unserved_absolute_form(&t.target) {
                    Some(Rule::UnservedAbsoluteForm)
                } else {
                    assert_eq!(
                        ours,
                        Ok(Some(t.clone())),
                        "{:?}",
                        String::from_utf8_lossy(buf)
                    );
                    return "agreed: valid";
                }
            }
            Err(httparse::Error::Version)
                if matches!(
                    request_line(buf).rsplit(|&b| b == b' ').next(),
                    Some([b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9', ..])
                ) =>
            {
                Some(Rule::HigherMinorVersion)
            }
            // httparse refused it or wants more: we must not accept it.
            _ => None,
        };
        match rule {
            None => {
                assert!(
                    !matches!(ours, Ok(Some(_))),
                    "we accept what httparse answers {theirs:?}: {:?}",
                    String::from_utf8_lossy(buf)
                );
                match theirs {
                    Err(_) => "agreed: invalid",
                    _ => "agreed: incomplete or invalid",
                }
            }
            Some(Rule::HeadTooLarge) => {
                assert_eq!(ours, Err(HttpError::HeadTooLarge));
                "excluded: head over 8 KiB"
            }
            Some(Rule::HigherMinorVersion) => {
                if let Ok(Some(r)) = &ours {
                    assert!(r.minor >= 2, "{r:?}");
                }
                "excluded: HTTP/1.2-1.9"
            }
            Some(rule) => {
                assert!(
                    !matches!(ours, Ok(Some(_))),
                    "{rule:?}: we should refuse {:?}",
                    String::from_utf8_lossy(buf)
                );
                match rule {
                    Rule::BareLf => "excluded: bare LF",
                    Rule::LeadingEmptyLine => "excluded: leading empty line",
                    Rule::UnservedAbsoluteForm => "excluded: absolute-form we do not serve",
                    _ => "excluded: non-ASCII target",
                }
            }
        }
    }

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("GET".to_owned()),
            1 => prop::sample::select(vec!["POST", "HEAD", "OPTIONS", "M-SEARCH", "get"])
                .prop_map(str::to_owned),
            // RFC 9110 §5.6.2 tchar.
            1 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}",
        ]
    }

    fn target() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "/[a-zA-Z0-9/?=&%._~-]{0,40}",
            1 => "/[!-~]{0,20}",
            1 => prop::sample::select(vec![
                "*",
                "http://example.com/a?b",
                "/chat?room=x",
                "ws://h",
                "http:///a",
                "https://u@h/",
            ])
                .prop_map(str::to_owned),
            1 => "/[\u{80}-\u{10FFFF}]{1,3}",
        ]
    }

    fn version() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => Just("HTTP/1.1".to_owned()),
            2 => Just("HTTP/1.0".to_owned()),
            1 => "HTTP/[0-9]\\.[0-9]",
            1 => prop::sample::select(vec!["HTTP/1.1 ", "http/1.1", "HTTP/1.10", "HTTP/1"])
                .prop_map(str::to_owned),
        ]
    }

    /// A field value: visible ASCII, spaces and tabs inside, obs-text (RFC 9110 §5.5);
    /// sometimes long enough to push the head past 8 KiB.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            8 => 0x21u8..=0x7E,
            2 => Just(b' '),
            1 => Just(b'\t'),
            1 => 0x80u8..=0xFF,
        ];
        prop_oneof![
            30 => prop::collection::vec(byte, 0..40),
            1 => (1000usize..9000).prop_map(|n| vec![b'a'; n]),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => prop::sample::select(vec![
                "Host", "Upgrade", "Connection", "Sec-WebSocket-Key",
                "Sec-WebSocket-Version", "Origin", "host",
            ])
            .prop_map(str::to_owned),
            3 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}",
        ]
    }

    fn ows() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "", " ", " ", "\t", " \t "])
    }

    /// A line ending: CRLF, or in one request in twenty any mix with bare LFs.
    fn eol() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["\r\n", "\n"])
    }

    /// A request from the RFC 9112 grammar, with the variations both parsers must
    /// handle alike and the ones a `Rule` covers; a few bytes may follow the head.
    fn request() -> impl Strategy<Value = Vec<u8>> {
        let field = || (name(), ows(), value(), ows(), eol());
        let fields = prop_oneof![
            10 => prop::collection::vec(field(), 0..12),
            1 => prop::collection::vec(field(), 60..70),
        ];
        (
            prop_oneof![30 => Just(""), 1 => Just("\r\n")],
            method(),
            target(),
            version(),
            eol(),
            fields,
            prop_oneof![19 => Just(false), 1 => Just(true)],
            prop::sample::select(vec!["", "", "x", "\r\n"]),
        )
            .prop_map(|(lead, method, target, version, eol, fields, lf, after)| {
                let eol = if lf { eol } else { "\r\n" };
                let mut out = format!("{lead}{method} {target} {version}{eol}").into_bytes();
                for (name, ows1, value, ows2, field_eol) in fields {
                    let eol = if lf { field_eol } else { "\r\n" };
                    out.extend_from_slice(format!("{name}:{ows1}").as_bytes());
                    out.extend_from_slice(&value);
                    out.extend_from_slice(format!("{ows2}{eol}").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(after.as_bytes());
                out
            })
    }

    /// A grammar request with a few bytes replaced, inserted or removed; the new bytes
    /// favour the ones parsers get wrong (controls, delimiters, obs-text).
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            3 => prop::sample::select(b"\0\t\n\x0b\x0c\r \":;,/?\x7f\x80\xff".to_vec()),
            1 => any::<u8>(),
        ];
        let edit = (0u8..3, any::<prop::sample::Index>(), byte);
        (request(), prop::collection::vec(edit, 1..4)).prop_map(|(mut buf, edits)| {
            for (kind, at, byte) in edits {
                let i = at.index(buf.len() + 1);
                match kind {
                    0 if i < buf.len() => buf[i] = byte,
                    1 => buf.insert(i, byte),
                    _ if i < buf.len() => {
                        buf.remove(i);
                    }
                    _ => buf.push(byte),
                }
            }
            buf
        })
    }

    #[test]
    fn grammar_requests_agree_with_httparse() {
        let seen = run(2000, request(), |buf| compare(buf));
        eprintln!("{seen:#?}");
        // The comparison is not vacuous: most grammar requests are valid to both.
        assert!(
            seen.get("agreed: valid").copied().unwrap_or(0) > 1000,
            "{seen:#?}"
        );
        for rule in [
            "excluded: bare LF",
            "excluded: leading empty line",
            "excluded: non-ASCII target",
            "excluded: head over 8 KiB",
            "excluded: HTTP/1.2-1.9",
        ] {
            assert!(seen.contains_key(rule), "{rule} never generated: {seen:#?}");
        }
    }

    #[test]
    fn mutated_requests_agree_with_httparse() {
        let seen = run(3000, mutated(), |buf| compare(buf));
        eprintln!("{seen:#?}");
        assert!(
            seen.get("agreed: valid").copied().unwrap_or(0) > 300,
            "{seen:#?}"
        );
        assert!(
            seen.get("agreed: invalid").copied().unwrap_or(0) > 500,
            "{seen:#?}"
        );
    }

    /// Each documented disagreement, pinned on one input.
    #[test]
    fn documented_disagreements() {
        let cases: [(&[u8], &str); 5] = [
            (b"GET / HTTP/1.1\nHost: a\n\n", "excluded: bare LF"),
            (
                b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                "excluded: leading empty line",
            ),
            (
                "GET /\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes(),
                "excluded: non-ASCII target",
            ),
            (
                b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
                "excluded: HTTP/1.2-1.9",
            ),
            (
                &[
                    &b"GET / HTTP/1.1\r\nX: "[..],
                    &[b'a'; MAX_HEAD_LEN],
                    b"\r\n\r\n",
                ]
                .concat(),
                "excluded: head over 8 KiB",
            ),
        ];
        for (buf, rule) in cases {
            assert_eq!(compare(buf), rule, "{:?}", String::from_utf8_lossy(buf));
        }
        // HTTP/1.2 is served as a 1.x request: we parse it, httparse refuses it.
        assert_eq!(
            request_owned(b"GET / HTTP/1.2\r\n\r\n", 0)
                .unwrap()
                .unwrap()
                .minor,
            2
        );
        // And the rule found by this test (fixed): a form feed around a value.
        assert_eq!(
            compare(b"GET / HTTP/1.1\r\nA: b\x0c\r\n\r\n"),
            "agreed: invalid"
        );
    }
}

mod frame {
    use super::*;
    use std::io::Cursor;
    use tungstenite::error::{Error as WsError, ProtocolError as WsProtocolError};
    use tungstenite::protocol::frame::FrameHeader as WsHeader;
    use wsreactor::protocol::error::ProtocolError;
    use wsreactor::protocol::frame::{FrameHeader, MAX_CONTROL_PAYLOAD};

    /// Compares our decoder with tungstenite's `FrameHeader::parse` on `buf`.
    ///
    /// They must agree exactly on every complete valid header, and both wait for more
    /// on every incomplete one. By design tungstenite's header parser checks less than
    /// ours, and its protocol layer (`WebSocketContext::read_frame`) rejects the rest
    /// later; ours rejects as soon as the bytes show it:
    /// - RSV2 or RSV3 set (§5.2, no extension that defines them): ours `ReservedBits`;
    ///   tungstenite returns the bits. Both return RSV1, which only permessage-deflate
    ///   gives a meaning (RFC 7692 §6): the receiver judges it.
    /// - a reserved opcode (§5.2): both reject, ours from the first two bytes,
    ///   tungstenite only once the header is complete (`Ok(None)` until then).
    /// - a 64-bit length with the top bit set (§5.2): ours `LengthTopBit`; tungstenite
    ///   returns the length (its size limit refuses it later).
    /// - a control frame over 125 bytes or without FIN (§5.5): ours `ControlTooLong` /
    ///   `FragmentedControl`; tungstenite returns the header.
    /// - both accept non-minimal length encodings (§5.2 says the minimal one MUST be
    ///   used, but neither checks it).
    pub fn compare(buf: &[u8]) -> &'static str {
        let ours = FrameHeader::decode(buf);
        let mut cursor = Cursor::new(buf);
        let theirs = WsHeader::parse(&mut cursor);
        let consumed = cursor.position() as usize;
        let complete = |t: &Result<Option<(WsHeader, u64)>, WsError>| !matches!(t, Ok(None));
        match (ours, theirs) {
            (Ok(Some((h, n))), Ok(Some((t, len)))) => {
                assert_eq!(n, consumed);
                assert_eq!(
                    (
                        h.fin,
                        h.rsv1,
                        false,
                        false,
                        h.opcode.as_u8(),
                        h.mask,
                        h.payload_len
                    ),
                    (
                        t.is_final,
                        t.rsv1,
                        t.rsv2,
                        t.rsv3,
                        u8::from(t.opcode),
                        t.mask,
                        len
                    ),
                    "{buf:?}"
                );
                // The encoders agree too: both write the minimal length form.
                let (bytes, m) = h.encode();
                let mut written = Vec::new();
                t.format(len, &mut written).expect("writes to a Vec");
                assert_eq!(&bytes[..m], &written[..]);
                "agreed: valid"
            }
            (Ok(None), Ok(None)) => "agreed: incomplete",
            (Ok(ours), theirs) => panic!("ours {ours:?}, tungstenite {theirs:?}: {buf:?}"),
            (Err(e), theirs) => {
                let b0 = buf[0];
                match (e, theirs) {
                    (
                        ProtocolError::ReservedOpCode,
                        Err(WsError::Protocol(WsProtocolError::InvalidOpcode(op))),
                    ) => {
                        assert_eq!(op, b0 & 0x0F);
                        return "agreed: reserved opcode";
                    }
                    (ProtocolError::ReservedOpCode, ref t) => assert!(!complete(t), "{t:?}"),
                    (ProtocolError::ReservedBits, Ok(Some((t, _)))) => {
                        assert!(t.rsv2 || t.rsv3);
                    }
                    (ProtocolError::ReservedBits, ref t) => {
                        // Tungstenite reports the opcode if that is reserved too.
                        assert!(
                            !complete(t)
                                || matches!(
                                    t,
                                    Err(WsError::Protocol(WsProtocolError::InvalidOpcode(_)))
                                ),
                            "{t:?}"
                        );
                    }
                    (ProtocolError::LengthTopBit, Ok(Some((_, len)))) => assert!(len >> 63 == 1),
                    (ProtocolError::ControlTooLong, Ok(Some((t, len)))) => {
                        assert!(u8::from(t.opcode) & 0x8 != 0);
                        assert!(len > MAX_CONTROL_PAYLOAD as u64);
                    }
                    (ProtocolError::FragmentedControl, Ok(Some((t, len)))) => {
                        assert!(u8::from(t.opcode) & 0x8 != 0 && !t.is_final);
                        assert!(len <= MAX_CONTROL_PAYLOAD as u64);
                    }
                    // Ours decided before the mask key arrived; tungstenite waits for it.
                    (
                        ProtocolError::LengthTopBit
                        | ProtocolError::ControlTooLong
                        | ProtocolError::FragmentedControl,
                        Ok(None),
                    ) => {}
                    (e, t) => panic!("ours {e:?}, tungstenite {t:?}: {buf:?}"),
                }
                match e {
                    ProtocolError::ReservedBits => "excluded: RSV bits",
                    ProtocolError::ReservedOpCode => "excluded: reserved opcode, incomplete",
                    ProtocolError::LengthTopBit => "excluded: length top bit",
                    _ => "excluded: control frame rules",
                }
            }
        }
    }

    /// A frame header: any first byte (weighted to valid ones), a mask or not, each of
    /// the three length forms with its boundary values (including non-minimal
    /// encodings), a few bytes after it, and sometimes cut short.
    fn header() -> impl Strategy<Value = Vec<u8>> {
        let b0 = prop_oneof![
            3 => (any::<bool>(), prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]))
                .prop_map(|(fin, op)| (u8::from(fin) << 7) | op),
            1 => any::<u8>(),
        ];
        let len7 = prop_oneof![prop::sample::select(vec![0u8, 1, 124, 125]), 0u8..126,];
        let len16 = prop_oneof![
            prop::sample::select(vec![0u16, 125, 126, 127, 65535]),
            any::<u16>(),
        ];
        let len64 = prop_oneof![
            prop::sample::select(vec![
                0u64,
                125,
                126,
                65535,
                65536,
                (1 << 63) - 1,
                1 << 63,
                u64::MAX,
            ]),
            any::<u64>(),
        ];
        let length = prop_oneof![
            len7.prop_map(|n| (n, Vec::new())),
            len16.prop_map(|n| (126u8, n.to_be_bytes().to_vec())),
            len64.prop_map(|n| (127u8, n.to_be_bytes().to_vec())),
        ];
        (
            b0,
            any::<Option<[u8; 4]>>(),
            length,
            prop::collection::vec(any::<u8>(), 0..4),
            prop_oneof![3 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
        )
            .prop_map(|(b0, mask, (len_byte, extended), after, cut)| {
                let mut out = vec![b0, (u8::from(mask.is_some()) << 7) | len_byte];
                out.extend_from_slice(&extended);
                out.extend_from_slice(mask.as_ref().map_or(&[][..], |m| &m[..]));
                out.extend_from_slice(&after);
                if let Some(cut) = cut {
                    out.truncate(cut.index(out.len() + 1));
                }
                out
            })
    }

    #[test]
    fn generated_headers_agree_with_tungstenite() {
        let seen = run(20_000, header(), |buf| compare(buf));
        eprintln!("{seen:#?}");
        for outcome in [
            "agreed: valid",
            "agreed: incomplete",
            "agreed: reserved opcode",
            "excluded: RSV bits",
            "excluded: reserved opcode, incomplete",
            "excluded: length top bit",
            "excluded: control frame rules",
        ] {
            assert!(
                seen.contains_key(outcome),
                "{outcome} never seen: {seen:#?}"
            );
        }
        assert!(seen["agreed: valid"] > 5000, "{seen:#?}");
    }

    /// Every two-byte start with every length form, exhaustively: all 65,536 first
    /// byte pairs, followed by enough bytes for any header.
    #[test]
    fn every_first_two_bytes_agree_with_tungstenite() {
        for b0 in 0..=255u8 {
            for b1 in 0..=255u8 {
                let mut buf = vec![b0, b1, 0, 0x10, 0, 0, 0, 0, 0, 0x7E, 1, 2, 3, 4];
                compare(&buf);
                buf.truncate(2);
                compare(&buf);
            }
        }
    }
}
