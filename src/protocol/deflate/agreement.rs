//! What the server agreed to in the permessage-deflate handshake (RFC 7692 §7.1), in two
//! bytes so that it fits in a connection's spare room, and the `Sec-WebSocket-Extensions`
//! value of the 101 that says so.
//!
//! Each direction has a window (log2 of its size, 8 to 15, §7.1.2) and either keeps its
//! context between messages (context takeover) or compresses each message on its own
//! (`*_no_context_takeover`, §7.1.1).

use std::num::NonZeroU8;

/// One direction's LZ77 window: its bits (8 to 15) and, in [`Window::KEPT`], whether the
/// sender keeps its context between messages; in [`Window::ASKED`], whether the client
/// named its size in the offer. Never zero, so that `Option<Agreement>` costs nothing
/// more than the two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window(NonZeroU8);

impl Window {
    /// The flag of context takeover.
    const KEPT: u8 = 0x10;
    /// The flag of a size the client asked for.
    const ASKED: u8 = 0x20;

    /// A window of `bits` (8 to 15), kept between messages if `kept`.
    pub(super) fn new(bits: u8, kept: bool) -> Window {
        let bits = bits.clamp(8, 15);
        let byte = if kept { bits | Window::KEPT } else { bits };
        Window(NonZeroU8::new(byte).expect("at least 8"))
    }

    /// The same window, marked as one whose size the client asked for if `asked`.
    pub(super) fn asked(self, asked: bool) -> Window {
        if asked {
            Window(self.0 | Window::ASKED)
        } else {
            self
        }
    }

    fn bits(self) -> u8 {
        self.0.get() & 0x0F
    }

    fn kept(self) -> bool {
        self.0.get() & Window::KEPT != 0
    }

    fn was_asked(self) -> bool {
        self.0.get() & Window::ASKED != 0
    }
}

/// What the server agreed to, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// How the server compresses: its window is at most what the client asked for
    /// (`server_max_window_bits`, §7.1.2.1, which the answer then names even without
    /// context takeover) and, with context takeover, at most the server's
    /// `--deflate-window`.
    pub(super) server: Window,
    /// How the client compresses: without context unless the server answered
    /// `client_max_window_bits` (§7.1.2.2), which bounds the context it keeps.
    pub(super) client: Window,
}

impl Agreement {
    /// The largest LZ77 window (as log2 of its size) the server may compress with.
    pub fn server_window_bits(self) -> u8 {
        self.server.bits()
    }

    /// Whether the server keeps its compression context from message to message: the
    /// client inflates each message after the last `2^server_window_bits` bytes of the
    /// ones before it (§7.1.1.1, not agreed).
    pub fn server_takeover(self) -> bool {
        self.server.kept()
    }

    /// The window (as log2 of its size) the client compresses with: 15 unless the server
    /// answered `client_max_window_bits`.
    pub fn client_window_bits(self) -> u8 {
        self.client.bits()
    }

    /// Whether the client keeps its compression context from message to message: its
    /// messages then inflate only after the last `2^client_window_bits` bytes of the
    /// ones before (§7.1.1.2, not agreed).
    pub fn client_takeover(self) -> bool {
        self.client.kept()
    }

    /// Whether any message compressed without context, with any window, may go to this
    /// client as it is: it inflates ours with the full 15-bit window, and the server
    /// keeps no context for it that such a message would leave behind. Its own message
    /// may then be echoed as the very bytes it sent, when it too compressed without
    /// context, and another client's chat message goes to it as that client sent it.
    pub fn takes_full_window(self) -> bool {
        self.server_window_bits() == 15 && !self.server_takeover()
    }

    /// Whether a compressed message from this client may be echoed to it as the very
    /// bytes it sent: when they refer to no context and any window fits the client
    /// ([`takes_full_window`](Self::takes_full_window)), or when both sides keep their
    /// context and the client's window is no larger than the server's. An echo sends
    /// back exactly what came, compressed as it came, so the client's compression
    /// context and the context it inflates ours after hold the same bytes, message
    /// after message; the server then keeps only the client's side.
    pub fn echoes_as_sent(self) -> bool {
        match (self.client_takeover(), self.server_takeover()) {
            (false, _) => self.takes_full_window(),
            (true, true) => self.client_window_bits() <= self.server_window_bits(),
            (true, false) => false,
        }
    }

    /// The agreement seen from the client's end, for the client role: its `server` side
    /// is how the client compresses and its `client` side how the server does, so that
    /// the codec's per-connection calls made for a server ([`Codec::compress_for`] with
    /// the context of what it sends, [`Codec::inflate_from`] with the context of what it
    /// receives) serve a client as they are.
    ///
    /// [`Codec::compress_for`]: super::Codec::compress_for
    /// [`Codec::inflate_from`]: super::Codec::inflate_from
    pub fn mirrored(self) -> Agreement {
        Agreement {
            server: self.client,
            client: self.server,
        }
    }

    /// The value of the `Sec-WebSocket-Extensions` header of the 101 (§7.1), written
    /// on the stack, so that answering allocates nothing.
    pub fn response(self) -> Response {
        let mut out = Response {
            bytes: [0; RESPONSE_CAPACITY],
            len: 0,
        };
        out.push("permessage-deflate");
        if !self.server_takeover() {
            out.push("; server_no_context_takeover");
        }
        if !self.client_takeover() {
            out.push("; client_no_context_takeover");
        }
        if self.server_takeover() || self.server.was_asked() {
            out.push("; server_max_window_bits=");
            out.push_bits(self.server_window_bits());
        }
        if self.client_takeover() {
            out.push("; client_max_window_bits=");
            out.push_bits(self.client_window_bits());
        }
        out
    }
}

/// The longest answer: both `*_no_context_takeover` and both window sizes do not occur
/// together, so this has room to spare.
const RESPONSE_CAPACITY: usize = 128;

/// The `Sec-WebSocket-Extensions` value of the 101, as [`Agreement::response`] wrote it.
#[derive(Debug, Clone, Copy)]
pub struct Response {
    bytes: [u8; RESPONSE_CAPACITY],
    len: usize,
}

impl Response {
    /// The header's value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, text: &str) {
        self.bytes[self.len..self.len + text.len()].copy_from_slice(text.as_bytes());
        self.len += text.len();
    }

    fn push_bits(&mut self, bits: u8) {
        if bits >= 10 {
            self.push("1");
        }
        self.bytes[self.len] = b'0' + bits % 10;
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(agreement: Agreement) -> String {
        String::from_utf8(agreement.response().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn a_window_keeps_its_bits_and_its_flag_apart() {
        for bits in 8..=15 {
            for kept in [false, true] {
                let window = Window::new(bits, kept);
                assert_eq!((window.bits(), window.kept()), (bits, kept));
            }
        }
        assert_eq!(std::mem::size_of::<Option<Agreement>>(), 2);
        let asked = Window::new(12, true).asked(true);
        assert_eq!(
            (asked.bits(), asked.kept(), asked.was_asked()),
            (12, true, true)
        );
    }

    #[test]
    fn the_answer_names_what_each_side_keeps() {
        let shared = Agreement {
            server: Window::new(15, false),
            client: Window::new(15, false),
        };
        assert_eq!(
            text(shared),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(shared.takes_full_window());
        let both = Agreement {
            server: Window::new(9, true),
            client: Window::new(12, true),
        };
        assert_eq!(
            text(both),
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12"
        );
        assert!(!both.takes_full_window());
        assert!(
            !both.echoes_as_sent(),
            "the client may refer 4 KiB back, we keep 512"
        );
        let symmetric = Agreement {
            server: Window::new(9, true),
            client: Window::new(9, true),
        };
        assert!(symmetric.echoes_as_sent());
        assert!(shared.echoes_as_sent());
        let server_only = Agreement {
            server: Window::new(15, true).asked(true),
            client: Window::new(15, false),
        };
        assert_eq!(
            text(server_only),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=15"
        );
        assert!(
            !server_only.takes_full_window(),
            "a message compressed without our context would leave ours stale"
        );
        assert!(!server_only.echoes_as_sent());
    }
}
