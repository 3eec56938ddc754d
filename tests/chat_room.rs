//! A chat room must deliver every whole message a member sent, even when the member's
//! connection ends right behind it: the message was received and validated, so the
//! room gets it whether the sender then says goodbye, hangs up, or both at once.

mod common;

use std::net::Shutdown;
use std::time::Duration;

use common::{client_frame, close_payload, eventually, op, upgrade_request, Raw, Server};
use wsreactor::protocol::frame::OpCode;

/// A member of `room` on a raw connection.
fn member(server: &Server, room: &str) -> Raw {
    let mut raw = server.connect();
    raw.send(&upgrade_request(&format!("/chat?room={room}"), ""));
    raw.read_response().assert_switching();
    raw
}

/// Sends `bytes` and then ends the sending side, in one TCP segment: with TCP_CORK the
/// kernel holds the bytes back and puts the FIN on the same segment, so the server
/// reads the message and the end of the stream in one turn, as it does whenever a
/// client's last bytes and its FIN arrive together.
fn send_then_hang_up(raw: &mut Raw, bytes: &[u8]) {
    socket2::SockRef::from(&raw.stream).set_cork(true).unwrap();
    raw.send(bytes);
    raw.stream.shutdown(Shutdown::Write).unwrap();
}

fn message_and_close() -> Vec<u8> {
    let mut bytes = client_frame(true, OpCode::Text, b"last words");
    bytes.extend(client_frame(true, OpCode::Close, &close_payload(1000, "")));
    bytes
}

/// Waits until the server has received the message, then expects `listener` to get it,
/// and the server to count `deliveries` (the listener, and the sender too when it was
/// still open, not closing, as the message went out: it is a member until dropped).
fn assert_delivered(server: &Server, listener: &mut Raw, deliveries: u64) {
    let received = eventually(Duration::from_secs(5), || {
        (server.stats()["messages_in_total"] == 1).then_some(())
    });
    assert!(received.is_some(), "the server never received the message");
    listener.expect_frame(true, op::TEXT, b"last words");
    let stats = server.stats();
    assert_eq!(stats["messages_out_total"], deliveries, "{stats:#}");
}

#[test]
fn a_message_followed_by_a_close_frame_reaches_the_room() {
    // The control case: the sender's connection stays up until the server answers.
    let server = Server::start();
    let mut listener = member(&server, "clean");
    let mut sender = member(&server, "clean");
    sender.send(&message_and_close());
    sender.expect_close(1000);
    assert_delivered(&server, &mut listener, 1);
}

// The two tests below failed on ead20eb: when the sender's end of stream arrived in the
// same read turn as its last message, the reactor closed the connection (taking it out
// of its room) before fanning the message out, so it went to nobody. The reactor now
// takes the message, with its room, before it follows the connection's verdict. The
// fan-out itself comes at the end of the turn, by which time a sender that hung up
// with nothing owed is gone: the room gets the message, the sender no copy of it.

#[test]
fn a_message_followed_by_a_hang_up_still_reaches_the_room() {
    let server = Server::start();
    let mut listener = member(&server, "abrupt");
    let mut sender = member(&server, "abrupt");
    send_then_hang_up(
        &mut sender,
        &client_frame(true, OpCode::Text, b"last words"),
    );
    assert_delivered(&server, &mut listener, 1);
}

#[test]
fn a_message_followed_by_a_close_frame_and_a_hang_up_still_reaches_the_room() {
    // A client may half-close right after its Close frame instead of waiting for the
    // server's (§7.1.1 only says it SHOULD wait).
    let server = Server::start();
    let mut listener = member(&server, "goodbye");
    let mut sender = member(&server, "goodbye");
    send_then_hang_up(&mut sender, &message_and_close());
    assert_delivered(&server, &mut listener, 1);
}
