//! The permessage-deflate handshake, server side (RFC 7692 §5, §7.1): reading the
//! client's offers from `Sec-WebSocket-Extensions` and choosing the first one the server
//! can honour, in the client's order of preference (RFC 6455 §9.1).
//!
//! Without `--deflate-window` the server always answers with `server_no_context_takeover`
//! and `client_no_context_takeover`: both are the server's to add (§7.1.1.1, §7.1.1.2),
//! and with them every message is compressed and inflated on its own, by one compressor
//! and one decompressor shared by all the connections of a reactor, so that a connection
//! that negotiated compression costs nothing more while it is idle.
//!
//! With `--deflate-window BITS` each side keeps its context where the offer allows it and
//! the window is at most BITS: the server's (`server_max_window_bits`, which the server may
//! answer unasked, §7.1.2.1) unless the client asked for `server_no_context_takeover`, and
//! the client's only if it offered `client_max_window_bits` (§7.1.2.2: without the offer
//! the answer may not bound the client's window, so it gets `client_no_context_takeover`
//! instead, and its context is never one the server would have to keep at 32 KiB).

use std::num::NonZeroU8;

use super::agreement::{Agreement, Window};
use crate::protocol::http::Headers;

/// The extension's name (§5).
const NAME: &str = "permessage-deflate";

/// Why an offer is declined (§7.1: the server MUST decline an offer that has a parameter
/// not defined for an offer, an invalid value, or a parameter twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declined {
    /// A parameter permessage-deflate does not define for an offer.
    UnknownParameter,
    /// A parameter with a value it may not have, or without one it needs.
    InvalidValue,
    /// The same parameter twice.
    Duplicate,
}

/// Chooses the first acceptable permessage-deflate offer among the client's
/// `Sec-WebSocket-Extensions` fields, in order; `None` declines them all (the connection
/// then opens without compression, §7.1).
/// `window` is the server's `--deflate-window`: the bits of the context it keeps per
/// connection and direction, if it keeps any.
pub fn negotiate(headers: &Headers<'_, '_>, window: Option<u8>) -> Option<Agreement> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .flat_map(|h| split_outside_quotes(h.value, b','))
        .filter_map(|offer| {
            let mut parts = split_outside_quotes(offer, b';');
            let name = parts.next()?.trim_ascii();
            name.eq_ignore_ascii_case(NAME.as_bytes())
                .then(|| accept(parts, window))
        })
        .find_map(Result::ok)
}

/// Judges one permessage-deflate offer by its parameters (§7.1.1, §7.1.2), for a server
/// that keeps a context of `window` bits per connection and direction, if any.
pub fn accept<'a>(
    params: impl Iterator<Item = &'a [u8]>,
    window: Option<u8>,
) -> Result<Agreement, Declined> {
    let [server_no, client_no, server_max, client_max] = read_params(params)?;
    // §7.1.1.1, §7.1.1.2: the context takeover parameters have no value.
    if matches!(server_no, Some(Some(_))) || matches!(client_no, Some(Some(_))) {
        return Err(Declined::InvalidValue);
    }
    let seen = [server_no.is_some(), client_no.is_some()];
    // §7.1.2.1: server_max_window_bits needs a value, 8 to 15.
    let server_max_window_bits = match server_max {
        None => None,
        Some(value) => Some(window_bits(value.and_then(unquote))?),
    };
    // §7.1.2.2: client_max_window_bits may come without a value (15).
    let client_max_window_bits = match client_max {
        None => None,
        Some(None) => Some(15),
        Some(Some(value)) => Some(window_bits(unquote(value))?.get()),
    };
    let asked = server_max_window_bits.map_or(15, NonZeroU8::get);
    // The server keeps a context only of the size it chose, and not for 8 bits, which
    // it writes as stored blocks (see `Deflater`): they refer to nothing.
    let server = match window {
        Some(bits) if !seen[0] && asked.min(bits) >= 9 => Window::new(asked.min(bits), true),
        _ => Window::new(asked, false),
    };
    // Without the client's offer of client_max_window_bits the server cannot bound its
    // window (§7.1.2.2), so it keeps no context of the client's (§7.1.1.1 lets the
    // server ask that); with it, the answer bounds the window to the server's.
    let client = match (window, client_max_window_bits) {
        (Some(bits), Some(offered)) if !seen[1] => Window::new(offered.min(bits), true),
        _ => Window::new(15, false),
    };
    Ok(Agreement {
        server: server.asked(server_max_window_bits.is_some()),
        client,
    })
}

/// The parameters permessage-deflate defines (§7.1.1, §7.1.2), in the order of [`Params`].
const PARAMS: [&str; 4] = [
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
];

/// One element's parameters, in the order of [`PARAMS`]: `None` if absent, else its
/// value as written (`Some(None)`: without one).
pub(super) type Params<'a> = [Option<Option<&'a [u8]>>; 4];

/// Reads one element's parameters (after its name): each one permessage-deflate defines,
/// at most once (§7.1: anything else is declined, by a server, or fails a client).
pub(super) fn read_params<'a>(
    params: impl Iterator<Item = &'a [u8]>,
) -> Result<Params<'a>, Declined> {
    let mut read: Params<'a> = [None; 4];
    for param in params {
        let param = param.trim_ascii();
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(i) => (param[..i].trim_ascii(), Some(param[i + 1..].trim_ascii())),
            None => (param, None),
        };
        let index = PARAMS
            .iter()
            .position(|known| name.eq_ignore_ascii_case(known.as_bytes()))
            .ok_or(Declined::UnknownParameter)?;
        if read[index].replace(value).is_some() {
            return Err(Declined::Duplicate);
        }
    }
    Ok(read)
}

/// A window size parameter's value: a decimal integer from 8 to 15 without leading
/// zeros (§7.1.2.1, after unquoting).
pub(super) fn window_bits(value: Option<&[u8]>) -> Result<NonZeroU8, Declined> {
    let bits = match value.ok_or(Declined::InvalidValue)? {
        [d @ b'8'..=b'9'] => d - b'0',
        [b'1', d @ b'0'..=b'5'] => 10 + d - b'0',
        _ => return Err(Declined::InvalidValue),
    };
    Ok(NonZeroU8::new(bits).expect("8 to 15"))
}

/// A parameter value without its quotes, if it is a quoted-string (RFC 9110 §5.6.4);
/// `None` for one with escapes, which no valid value here needs.
pub(super) fn unquote(value: &[u8]) -> Option<&[u8]> {
    match value {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') && !inner.contains(&b'"') => {
            Some(inner)
        }
        [b'"', ..] => None,
        _ => Some(value),
    }
}

/// Splits a field value at `sep`, except inside a quoted-string (RFC 9110 §5.6.4), so
/// that a quoted value holding a comma or semicolon stays one piece.
fn split_outside_quotes(value: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let s = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, &b) in s.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                _ if b == sep && !quoted => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::{parse_request, Header, MAX_HEADERS};

    /// What the server answers to these `Sec-WebSocket-Extensions` fields: the 101's
    /// header value, or `None` for a decline.
    fn answer(fields: &[&str]) -> Option<String> {
        answer_keeping(None, fields)
    }

    /// What a server with `--deflate-window` = `window` answers.
    fn answer_keeping(window: Option<u8>, fields: &[&str]) -> Option<String> {
        let mut head = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        for field in fields {
            head.push_str(&format!("Sec-WebSocket-Extensions: {field}\r\n"));
        }
        head.push_str("\r\n");
        let mut storage = [Header::default(); MAX_HEADERS];
        let (req, _) = parse_request(head.as_bytes(), 0, &mut storage)
            .unwrap()
            .unwrap();
        negotiate(&req.headers, window)
            .map(|agreed| String::from_utf8(agreed.response().as_bytes().to_vec()).unwrap())
    }

    const PLAIN: &str =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn what_browsers_and_libraries_offer_is_accepted_without_context_takeover() {
        for offer in [
            "permessage-deflate; client_max_window_bits", // Chromium, Firefox, Node ws
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; client_max_window_bits=12",
            "PerMessage-Deflate; Client_Max_Window_Bits",
            "permessage-deflate ;client_max_window_bits = 15 ",
        ] {
            assert_eq!(answer(&[offer]), Some(PLAIN.to_string()), "{offer}");
        }
    }

    #[test]
    fn server_max_window_bits_is_answered_with_the_same_value() {
        for bits in 8..=15 {
            let offer = format!("permessage-deflate; server_max_window_bits={bits}");
            let expected = format!("{PLAIN}; server_max_window_bits={bits}");
            assert_eq!(answer(&[&offer]), Some(expected), "{offer}");
        }
        // A quoted-string value is the same value (§7.1.2.1).
        let quoted = answer(&["permessage-deflate; server_max_window_bits=\"10\""]);
        assert_eq!(quoted, Some(format!("{PLAIN}; server_max_window_bits=10")));
    }

    #[test]
    fn malformed_offers_are_declined() {
        for offer in [
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=9.0",
            "permessage-deflate; server_max_window_bits=\"1\\0\"",
            "permessage-deflate; server_max_window_bits=\"10",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; ; client_max_window_bits",
            "x-webkit-deflate-frame",
            "deflate-frame; no_context_takeover",
        ] {
            assert_eq!(answer(&[offer]), None, "{offer}");
        }
    }

    #[test]
    fn the_first_acceptable_offer_wins_in_the_clients_order() {
        // A declined offer is skipped, not fatal: the next one is judged (§7.1).
        let second =
            answer(&["permessage-deflate; bogus, permessage-deflate; server_max_window_bits=9"]);
        assert_eq!(second, Some(format!("{PLAIN}; server_max_window_bits=9")));
        let first = answer(&["permessage-deflate; server_max_window_bits=11, permessage-deflate"]);
        assert_eq!(first, Some(format!("{PLAIN}; server_max_window_bits=11")));
        // Offers spread over several fields are one list (RFC 9110 §5.3).
        let fields = answer(&[
            "x-webkit-deflate-frame",
            "permessage-deflate; foo=1",
            "permessage-deflate",
        ]);
        assert_eq!(fields, Some(PLAIN.to_string()));
        // A quoted comma does not split an offer.
        let quoted = answer(&["other; p=\"a,permessage-deflate\", permessage-deflate"]);
        assert_eq!(quoted, Some(PLAIN.to_string()));
        assert_eq!(answer(&[]), None);
        assert_eq!(answer(&["other, another"]), None);
    }

    #[test]
    fn declines_say_why() {
        let judge = |params: &[&str]| accept(params.iter().map(|p| p.as_bytes()), None);
        assert_eq!(judge(&["what"]), Err(Declined::UnknownParameter));
        assert_eq!(
            judge(&["client_max_window_bits", "client_max_window_bits=9"]),
            Err(Declined::Duplicate)
        );
        assert_eq!(
            judge(&["server_max_window_bits=99"]),
            Err(Declined::InvalidValue)
        );
        let agreed = judge(&["server_max_window_bits=12"]).unwrap();
        assert_eq!(agreed.server_window_bits(), 12);
        assert!(
            !agreed.takes_full_window(),
            "a client may compress with 15 bits"
        );
        let agreed = judge(&["client_max_window_bits"]).unwrap();
        assert_eq!(agreed.server_window_bits(), 15);
        assert!(agreed.takes_full_window());
    }

    #[test]
    fn with_a_window_each_side_keeps_its_context_where_the_offer_allows() {
        let keeping = |offer: &str| answer_keeping(Some(9), &[offer]);
        let expect = |params: &str| Some(format!("permessage-deflate; {params}"));
        // Browsers and Node ws: the client's window may be bounded, so both keep theirs.
        assert_eq!(
            keeping("permessage-deflate; client_max_window_bits"),
            expect("server_max_window_bits=9; client_max_window_bits=9")
        );
        // A client asking for 12 bits both ways gets the server's smaller window.
        assert_eq!(
            keeping("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
            expect("server_max_window_bits=9; client_max_window_bits=9")
        );
        // §7.1.2.2: no client_max_window_bits offered, none may be answered: the client
        // is asked to compress without context (§7.1.1.1), the server keeps its own.
        assert_eq!(
            keeping("permessage-deflate"),
            expect("client_no_context_takeover; server_max_window_bits=9")
        );
        // A smaller window offered is the one agreed, both ways (§7.1.2).
        assert_eq!(
            answer_keeping(
                Some(15),
                &["permessage-deflate; server_max_window_bits=10; client_max_window_bits=11"]
            ),
            expect("server_max_window_bits=10; client_max_window_bits=11")
        );
        // What the client refuses to keep, or asks the server not to keep, is not kept.
        assert_eq!(
            keeping("permessage-deflate; client_no_context_takeover; client_max_window_bits"),
            expect("client_no_context_takeover; server_max_window_bits=9")
        );
        assert_eq!(
            keeping("permessage-deflate; server_no_context_takeover; client_max_window_bits"),
            expect("server_no_context_takeover; client_max_window_bits=9")
        );
        assert_eq!(
            keeping("permessage-deflate; server_no_context_takeover; server_max_window_bits=12"),
            expect(
                "server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12"
            )
        );
        // 8 bits are written as stored blocks, which need no context: none is kept.
        assert_eq!(
            keeping("permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"),
            expect(
                "server_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8"
            )
        );
        let agreed = accept(
            ["client_max_window_bits=10"].iter().map(|p| p.as_bytes()),
            Some(12),
        )
        .unwrap();
        assert!(agreed.server_takeover() && agreed.client_takeover());
        assert_eq!(
            (agreed.server_window_bits(), agreed.client_window_bits()),
            (12, 10)
        );
        assert!(!agreed.takes_full_window());
    }
}
