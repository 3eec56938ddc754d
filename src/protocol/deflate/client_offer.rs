//! The permessage-deflate handshake, client side (RFC 7692 §5, §7.1): the offer the
//! client role makes, and the check of the server's answer to it, which becomes the
//! [`Agreement`] the client then compresses and inflates by.
//!
//! The plain offer ([`Offer::SHARED`]) asks for no context takeover in both directions,
//! so that every message is a deflate stream of its own: one compressor and one
//! decompressor serve every connection of a process, and an idle connection holds no
//! zlib state (the server's shared mode, seen from the other side). The client then
//! compresses with the full 15-bit window, as it offers no `client_max_window_bits`
//! (§7.1.2.2), and inflates with it, which reads whatever window the server chose.
//!
//! [`Offer::takeover`] asks for context takeover both ways with windows of its bits
//! (§7.1.2.1, §7.1.2.2), which the server may still turn down per direction with
//! `*_no_context_takeover` (§7.1.1). A direction that keeps its context is followed
//! with the codec's per-connection windows, as the server follows them: the client's
//! agreement is the server's seen from the other end ([`Agreement::mirrored`]).

use std::num::NonZeroU8;

use super::agreement::{Agreement, Window};
use super::negotiation::{read_params, unquote, window_bits};
use crate::protocol::http::Headers;

/// What the client offers in `Sec-WebSocket-Extensions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The window bits (9 to 15) of context takeover both ways; `None` asks for none.
    window: Option<u8>,
}

impl Offer {
    /// No context takeover either way.
    pub const SHARED: Offer = Offer { window: None };

    /// Context takeover both ways with windows of at most `bits` (clamped to 9 to 15:
    /// zlib has no 8-bit window for raw deflate).
    pub fn takeover(bits: u8) -> Offer {
        Offer {
            window: Some(bits.clamp(9, 15)),
        }
    }

    /// The header's value.
    pub fn value(self) -> String {
        match self.window {
            None => OFFER.to_owned(),
            Some(bits) => format!(
                "permessage-deflate; client_max_window_bits={bits}; server_max_window_bits={bits}"
            ),
        }
    }
}

/// The `Sec-WebSocket-Extensions` value of [`Offer::SHARED`].
const OFFER: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

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

/// Checks the `Sec-WebSocket-Extensions` of a 101 against what was offered (RFC 6455
/// §4.1 client rule 5: an extension not offered fails the connection), and returns
/// what was agreed, if an offer was made.
pub fn check_answer(
    headers: &Headers<'_, '_>,
    offered: Option<Offer>,
) -> Result<Option<Agreement>, ExtensionError> {
    let mut agreed = None;
    for element in headers.tokens("sec-websocket-extensions") {
        let mut params = element.split(|&b| b == b';').map(<[u8]>::trim_ascii);
        let name = params.next().unwrap_or_default();
        // One answer to one offer (§7.1: the server picks one).
        let Some(offer) = offered else {
            return Err(ExtensionError::Invalid);
        };
        if agreed.is_some() || !name.eq_ignore_ascii_case(b"permessage-deflate") {
            return Err(ExtensionError::Invalid);
        }
        agreed = Some(check_params(params, offer)?);
    }
    match (offered, agreed) {
        (Some(_), None) => Err(ExtensionError::Declined),
        _ => Ok(agreed),
    }
}

/// The parameters of an answer to `offer` (§7.1.1, §7.1.2).
fn check_params<'a>(
    params: impl Iterator<Item = &'a [u8]>,
    offer: Offer,
) -> Result<Agreement, ExtensionError> {
    let [server_no, client_no, server_max, client_max] =
        read_params(params).map_err(|_| ExtensionError::Invalid)?;
    let seen = [server_no, client_no, server_max, client_max].map(|p| p.is_some());
    // The context takeover parameters have no value (§7.1.1); in an answer, a window
    // size has one (§7.1.2).
    if matches!(server_no, Some(Some(_))) || matches!(client_no, Some(Some(_))) {
        return Err(ExtensionError::Invalid);
    }
    let bits = |param: Option<Option<&[u8]>>| {
        param
            .map(|value| window_bits(value.and_then(unquote)).map(NonZeroU8::get))
            .transpose()
            .map_err(|_| ExtensionError::Invalid)
    };
    let (server_bits, client_bits) = (bits(server_max)?, bits(client_max)?);
    match offer.window {
        None => {
            // §7.1.1.1: an offer with server_no_context_takeover is accepted only with
            // it in the answer; without it the server would compress with context,
            // which the shared decompressor cannot follow. §7.1.2.2:
            // client_max_window_bits only answers an offer that had it. §7.1.2.1: the
            // server may name its window even unasked; 15 bits inflate it.
            if !seen[0] || seen[3] {
                return Err(ExtensionError::Invalid);
            }
            Ok(Agreement {
                server: Window::new(server_bits.unwrap_or(15), false),
                client: Window::new(15, false),
            })
        }
        Some(offered) => {
            // §7.1.2.1: the server accepts server_max_window_bits by answering it,
            // no larger than offered; §7.1.2.2: a client_max_window_bits answered is
            // no larger than offered, and without it the client keeps to its own.
            let server = server_bits.ok_or(ExtensionError::Invalid)?;
            let client = client_bits.unwrap_or(offered);
            if server > offered || client > offered {
                return Err(ExtensionError::Invalid);
            }
            Ok(Agreement {
                server: Window::new(server, !seen[0]),
                client: Window::new(client, !seen[1]),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::{parse_response, Header, MAX_HEADERS};

    fn check(fields: &[&str], offered: bool) -> Result<(), ExtensionError> {
        agreed(fields, offered.then_some(Offer::SHARED)).map(drop)
    }

    fn agreed(
        fields: &[&str],
        offered: Option<Offer>,
    ) -> Result<Option<Agreement>, ExtensionError> {
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

    /// The agreement both ways: (server's bits, kept), (client's bits, kept).
    fn ways(agreement: Agreement) -> ((u8, bool), (u8, bool)) {
        (
            (agreement.server_window_bits(), agreement.server_takeover()),
            (agreement.client_window_bits(), agreement.client_takeover()),
        )
    }

    #[test]
    fn a_takeover_offer_names_its_windows_both_ways() {
        assert_eq!(
            Offer::takeover(9).value(),
            "permessage-deflate; client_max_window_bits=9; server_max_window_bits=9"
        );
        assert_eq!(
            Offer::takeover(8),
            Offer::takeover(9),
            "zlib has no 8-bit window"
        );
        assert_eq!(Offer::SHARED.value(), OFFER);
    }

    #[test]
    fn a_takeover_offer_takes_what_the_server_keeps_and_what_it_does_not() {
        let offer = Some(Offer::takeover(12));
        let cases = [
            // `serve --deflate-window 9`: both keep a 9-bit context.
            (
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
                ((9, true), (9, true)),
            ),
            // `serve --deflate-window 15`: no larger than offered.
            (
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                ((12, true), (12, true)),
            ),
            // `serve --deflate`: the server keeps no context either way (§7.1.1).
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
                ((12, false), (12, false)),
            ),
            // Without client_max_window_bits the client keeps to what it offered.
            (
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=\"10\"",
                ((10, true), (12, false)),
            ),
            (
                "permessage-deflate; server_max_window_bits=9",
                ((9, true), (12, true)),
            ),
        ];
        for (answer, expected) in cases {
            let agreement = agreed(&[answer], offer).unwrap().unwrap();
            assert_eq!(ways(agreement), expected, "{answer}");
            // Seen from the client, its own compression is the mirrored server side.
            let (server, client) = expected;
            assert_eq!(ways(agreement.mirrored()), (client, server), "{answer}");
        }
    }

    #[test]
    fn a_takeover_offer_refuses_an_answer_past_it() {
        let offer = Some(Offer::takeover(9));
        assert_eq!(agreed(&[], offer), Err(ExtensionError::Declined));
        for answer in [
            // Larger windows than offered (§7.1.2.1, §7.1.2.2).
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=15",
            // The server must answer server_max_window_bits to accept it (§7.1.2.1).
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=9; mystery",
        ] {
            assert_eq!(
                agreed(&[answer], offer),
                Err(ExtensionError::Invalid),
                "{answer}"
            );
        }
    }
}
