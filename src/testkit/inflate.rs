//! The `inflate` fuzz target: a permessage-deflate message (RFC 7692 §7.2.2) of
//! arbitrary bytes through the reactor's shared codec, as the server inflates what a
//! client sent. Flags: bit 0 makes it a text message; bits 1–3 pick the size limit;
//! bits 4–6 the window bits (8 + n) a recompressed echo must fit. The steps (their sum)
//! choose a prefix of the payload inflated first, so the shared decompressor is used
//! dirty, as it is after another connection's message.
//!
//! Checks: never a panic; checking and inflating agree; what inflates is within the
//! limit (and UTF-8 for text); the shared codec gives the same answer after any earlier
//! message as a fresh one; what inflates compresses and inflates back to itself, with
//! the full window and with the smaller one.

use super::Input;
use crate::protocol::deflate::Codec;
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
        .recompress(message, text, limit, window_bits)
        .map(<[u8]>::to_vec)
        .expect("it inflated before");
    let back = shared.inflate(&smaller, text, limit).map(<[u8]>::to_vec);
    assert_eq!(back.as_deref(), Ok(&inflated[..]), "{window_bits} bits");
}
