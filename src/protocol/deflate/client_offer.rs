//! The permessage-deflate handshake, client side (RFC 7692 §5, §7.1): the one offer the
//! client role makes, and the check of the server's answer to it.
//!
//! The offer asks for no context takeover in both directions, so that every message is
//! a deflate stream of its own: one compressor and one decompressor serve every
//! connection of a process, and an idle connection holds no zlib state (the server's
//! shared mode, seen from the other side). The client compresses with the full 15-bit
//! window, as it offers no `client_max_window_bits` (§7.1.2.2), and inflates with it,
//! which reads whatever window the server chose.

use crate::protocol::http::Headers;

/// The `Sec-WebSocket-Extensions` value the client offers.
pub const OFFER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Why the server's answer to a request does not agree to what the client offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionError {
    /// permessage-deflate was offered and the 101 does not accept it (§7.1: the server
    /// may decline; the caller asked for compression, so the caller decides).
    Declined,
    /// An extension that was not offered, or a permessage-deflate answer the offer does
    /// not allow (§7.1: the client MUST _Fail the WebSocket Connection_).
    Invalid,
}

/// Checks the `Sec-WebSocket-Extensions` of a 101 against what was offered: [`OFFER`]
/// if `offered`, else nothing (RFC 6455 §4.1 client rule 5: an extension not offered
/// fails the connection).
pub fn check_answer(headers: &Headers<'_, '_>, offered: bool) -> Result<(), ExtensionError> {
    let mut agreed = false;
    for element in headers.tokens("sec-websocket-extensions") {
        let mut params = element.split(|&b| b == b';').map(<[u8]>::trim_ascii);
        let name = params.next().unwrap_or_default();
        // One answer to one offer (§7.1: the server picks one).
        if !offered || agreed || !name.eq_ignore_ascii_case(b"permessage-deflate") {
            return Err(ExtensionError::Invalid);
        }
        check_params(params)?;
        agreed = true;
    }
    match (offered, agreed) {
        (true, false) => Err(ExtensionError::Declined),
        _ => Ok(()),
    }
}

/// The parameters of an answer to [`OFFER`] (§7.1.1, §7.1.2).
fn check_params<'a>(params: impl Iterator<Item = &'a [u8]>) -> Result<(), ExtensionError> {
    let mut seen = [false; 3];
    for param in params {
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(i) => (param[..i].trim_ascii(), Some(param[i + 1..].trim_ascii())),
            None => (param, None),
        };
        let index = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
        ]
        .iter()
        .position(|known| name.eq_ignore_ascii_case(known.as_bytes()))
        // §7.1.2.2: client_max_window_bits only answers an offer that had it; anything
        // else is not permessage-deflate's.
        .ok_or(ExtensionError::Invalid)?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(ExtensionError::Invalid);
        }
        let valid = match (index, value) {
            (0 | 1, None) => true,
            // §7.1.2.1: the server may name its window even unasked; 15 bits inflate it.
            (2, Some(value)) => is_window_bits(
                value
                    .strip_prefix(b"\"")
                    .map_or(value, |v| v.strip_suffix(b"\"").unwrap_or(b"")),
            ),
            _ => false,
        };
        if !valid {
            return Err(ExtensionError::Invalid);
        }
    }
    // §7.1.1.1: an offer with server_no_context_takeover is accepted only with it in
    // the answer; without it the server would compress with context, which the shared
    // decompressor cannot follow.
    if seen[0] {
        Ok(())
    } else {
        Err(ExtensionError::Invalid)
    }
}

/// A window size value: 8 to 15, no leading zeros (§7.1.2.1).
fn is_window_bits(value: &[u8]) -> bool {
    matches!(value, [b'8' | b'9'] | [b'1', b'0'..=b'5'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::{parse_response, Header, MAX_HEADERS};

    fn check(fields: &[&str], offered: bool) -> Result<(), ExtensionError> {
        let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
        for field in fields {
            head.push_str(&format!("Sec-WebSocket-Extensions: {field}\r\n"));
        }
        head.push_str("\r\n");
        let mut storage = [Header::default(); MAX_HEADERS];
        let (response, _) = parse_response(head.as_bytes(), 0, &mut storage)
            .unwrap()
            .unwrap();
        check_answer(&response.headers, offered)
    }

    #[test]
    fn the_answers_a_server_may_give_are_accepted() {
        let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        for answer in [
            both,
            "permessage-deflate;server_no_context_takeover",
            "PERMESSAGE-DEFLATE; Server_No_Context_Takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=\"8\"",
        ] {
            assert_eq!(check(&[answer], true), Ok(()), "{answer}");
        }
        // Not offering and getting nothing is a plain connection.
        assert_eq!(check(&[], false), Ok(()));
        // The server's own answer in shared mode.
        assert_eq!(
            check(&[&format!("{both}; server_max_window_bits=9")], true),
            Ok(())
        );
    }

    #[test]
    fn a_decline_is_told_apart_from_a_broken_answer() {
        assert_eq!(check(&[], true), Err(ExtensionError::Declined));
        for answer in [
            // Context takeover kept by the server, which this client did not allow.
            "permessage-deflate",
            "permessage-deflate; client_no_context_takeover",
            // A parameter not offered, duplicated, or with a bad value.
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=08",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits",
            "permessage-deflate; server_no_context_takeover; mystery",
            // Two answers, or an extension never offered.
            "permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(check(&[answer], true), Err(ExtensionError::Invalid), "{answer}");
        }
        assert_eq!(
            check(&["permessage-deflate; server_no_context_takeover"], false),
            Err(ExtensionError::Invalid),
            "an extension that was not offered"
        );
    }
}
