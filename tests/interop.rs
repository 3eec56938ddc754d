//! The interop checklist for `tungstenite`: text, binary, a 1 MiB message,
//! ping/pong, and the closing handshake with a code and a reason. The other clients
//! (Python `websockets`, Node `ws`, Chromium) run the same list in tests/clients/, by
//! scripts/clients.sh.
//!
//! tests/echo.rs already covers most of it with tungstenite: text
//! (`text_message_is_echoed`), binary (`binary_message_is_echoed`), a Ping's payload in
//! the Pong (`ping_gets_a_pong_with_the_same_payload`), messages of 8 and 9 MiB under a
//! raised limit (`large_message_is_echoed_byte_for_byte`), and closes with 1000 "bye" and
//! 4000 (`client_close_1000_gets_close_1000_then_eof`, `close_code_4000_is_echoed`).
//! This file adds only what those leave out.

mod common;

use std::borrow::Cow;
use std::io::Read;

use common::{pseudo_random_bytes, ws_client, Server};
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error, Message};

const MIB: usize = 1 << 20;

#[test]
fn one_mebibyte_messages_are_echoed_under_the_clients_default_limits() {
    // tungstenite's defaults (no config): the server's frames must fit what a client
    // accepts out of the box, not only a client configured for this server.
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);

    let binary = pseudo_random_bytes(MIB, 5);
    ws.send(Message::Binary(binary.clone())).unwrap();
    match ws.read() {
        Ok(Message::Binary(got)) => {
            assert_eq!(got.len(), MIB);
            assert!(got == binary, "the 1 MiB binary echo differs");
        }
        other => panic!("expected the 1 MiB binary echo, got {other:?}"),
    }

    // Exactly 1 MiB of text, with two-, three- and four-byte code points.
    let unit = "κόσμε ✓ 𝄞 ascii ";
    let mut text = unit.repeat(MIB / unit.len());
    text.push_str(&"x".repeat(MIB - text.len()));
    assert_eq!(text.len(), MIB);
    ws.send(Message::Text(text.clone())).unwrap();
    match ws.read() {
        Ok(Message::Text(got)) => assert!(got == text, "the 1 MiB text echo differs"),
        other => panic!("expected the 1 MiB text echo, got {other:?}"),
    }
}

#[test]
fn close_with_a_registered_code_and_the_longest_reason_completes_the_handshake() {
    // 3000-3999 are registered codes a client may send (§7.4.2), and a Close body holds
    // at most 123 bytes of reason (§5.5: 125 bytes of payload, 2 of them the code).
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    let reason = format!("{}x", "κ".repeat(61));
    assert_eq!(reason.len(), 123);
    ws.close(Some(CloseFrame {
        code: 3001.into(),
        reason: Cow::Owned(reason),
    }))
    .unwrap();
    // The reply echoes the code (§5.5.1: "typically echos the status code it
    // received"); its reason is the server's own, and tungstenite has already checked it
    // is UTF-8 and that the frame is a valid control frame.
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 3001),
        other => panic!("expected Close 3001, got {other:?}"),
    }
    match ws.read() {
        Err(Error::ConnectionClosed) => {}
        other => panic!("expected the closing handshake to be complete, got {other:?}"),
    }
    // §7.1.1: the server closes the TCP connection first; nothing follows its Close.
    let mut rest = Vec::new();
    let n = ws.get_mut().read_to_end(&mut rest).expect("read to EOF");
    assert_eq!(n, 0, "bytes after the server's Close: {rest:?}");
}
