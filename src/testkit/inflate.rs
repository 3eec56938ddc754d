//! The `inflate` fuzz target: a permessage-deflate message (RFC 7692 §7.2.2) of
//! arbitrary bytes through the reactor's shared codec, as the server inflates what a
//! client sent. Flags: bit 0 makes it a text message; bits 1–3 pick the size limit;
//! bits 4–6 the window bits (8 + n) a recompressed echo must fit; bit 7 drives context
//! takeover too (`--deflate-window`, with those bits or 9). The steps (their sum)
//! choose a prefix of the payload inflated first, so the shared decompressor is used
//! dirty, as it is after another connection's message (and, with bit 7, the prefix is
//! the context the message is inflated after).
//!
//! Checks: never a panic; checking and inflating agree; what inflates is within the
//! limit (and UTF-8 for text); the shared codec gives the same answer after any earlier
//! message as a fresh one; what inflates compresses and inflates back to itself, with
//! the full window and with the smaller one; with context takeover, a message inflated
//! after any context stays within the limit (and UTF-8 for text), and what the server
//! compresses after its context inflates back after the same context.

use super::Input;
use crate::protocol::deflate::{accept, Codec};
use crate::protocol::error::ProtocolError;

/// Limits around the edges: nothing, one byte, one scratch buffer, more.
const LIMITS: [u64; 8] = [
    0,
    1,
    100,
    32 * 1024,
    32 * 1024 + 1,
    100_000,
    1 << 20,
    16 << 20,
];

/// `inflate`: see the module doc.
pub fn inflate(data: &[u8]) {
    let input = Input::new(data);
    let text = input.flags & 1 != 0;
    let limit = LIMITS[usize::from(input.flags >> 1) & 7];
    let window_bits = 8 + ((input.flags >> 4) & 7);
    let message = input.payload;

    let mut fresh = Codec::default();
    let inflated: Result<Vec<u8>, ProtocolError> =
        fresh.inflate(message, text, limit).map(<[u8]>::to_vec);
    assert_eq!(
        fresh.check(message, text, limit),
        inflated.as_ref().map(|_| ()).map_err(|e| *e)
    );

    // The shared codec after some other message, whole or broken.
    let mut shared = Codec::default();
    let prefix: usize = input.steps.iter().map(|&s| usize::from(s)).sum();
    if input.flags & 0x80 != 0 {
        takeover(
            &mut shared,
            &message[..prefix.min(message.len())],
            message,
            text,
            limit,
            window_bits.max(9),
        );
    }
    let _ = shared.inflate(&message[..prefix.min(message.len())], !text, limit);
    let again = shared.inflate(message, text, limit).map(<[u8]>::to_vec);
    assert_eq!(
        again, inflated,
        "the shared decompressor kept state across messages"
    );

    let Ok(inflated) = inflated else {
        return;
    };
    assert!(inflated.len() as u64 <= limit);
    if text {
        assert!(
            std::str::from_utf8(&inflated).is_ok(),
            "§8.1: text is UTF-8"
        );
    }
    // What inflates compresses and inflates back to itself.
    let compressed = shared.compress(&inflated, 15).to_vec();
    let back = shared.inflate(&compressed, text, limit).map(<[u8]>::to_vec);
    assert_eq!(back.as_deref(), Ok(&inflated[..]));
    let smaller = shared
        .recompress_for(0, server_window(window_bits), message, text, limit)
        .map(<[u8]>::to_vec)
        .expect("it inflated before");
    let back = shared.inflate(&smaller, text, limit).map(<[u8]>::to_vec);
    assert_eq!(back.as_deref(), Ok(&inflated[..]), "{window_bits} bits");
}

/// What a client asking for a server window of `bits` agrees to, without context.
fn server_window(bits: u8) -> crate::protocol::deflate::Agreement {
    let offer = format!("server_max_window_bits={bits}");
    accept([offer.as_bytes()].into_iter(), None).expect("a valid offer")
}

/// Context takeover: `message` inflated after whatever `context` left (if it inflated at
/// all), and what inflates compressed after the server's context and inflated back.
fn takeover(codec: &mut Codec, context: &[u8], message: &[u8], text: bool, limit: u64, bits: u8) {
    let agreement =
        accept([&b"client_max_window_bits"[..]].into_iter(), Some(bits)).expect("a valid offer");
    let _ = codec.inflate_from(1, agreement, context, text, limit);
    let Ok(inflated) = codec
        .inflate_from(1, agreement, message, text, limit)
        .map(<[u8]>::to_vec)
    else {
        codec.forget(1);
        return;
    };
    assert!(inflated.len() as u64 <= limit);
    if text {
        assert!(
            std::str::from_utf8(&inflated).is_ok(),
            "§8.1: text is UTF-8"
        );
    }
    // The server's context for connection 2 and the one connection 3 keeps of what it
    // receives see the same bytes: each message inflates back.
    for _ in 0..2 {
        let compressed = codec.compress_for(2, agreement, &inflated).to_vec();
        let back = codec.inflate_from(3, agreement, &compressed, text, u64::MAX);
        assert_eq!(back, Ok(&inflated[..]), "{bits} bits, after the context");
    }
    for id in 1..=3 {
        codec.forget(id);
    }
}
