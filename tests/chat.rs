//! `/chat?room=NAME`: every message from a member goes to every member of its room, the
//! sender included, as one whole frame; rooms are separate; a slow member is dropped
//! without stalling the others.

mod common;

use std::thread;
use std::time::Duration;

use common::{close_payload, op, upgrade_request, Server};
use wsreactor::protocol::frame::OpCode;

#[test]
fn every_member_of_the_room_gets_each_message_and_other_rooms_do_not() {
    let server = Server::start();
    let mut alice = server.open_path("/chat?room=kitchen");
    let mut bob = server.open_path("/chat?room=kitchen");
    let mut carol = server.open_path("/chat?room=garden");
    alice.send_frame(true, OpCode::Text, "hi bob ✓".as_bytes());
    alice.expect_frame(true, op::TEXT, "hi bob ✓".as_bytes());
    bob.expect_frame(true, op::TEXT, "hi bob ✓".as_bytes());
    bob.send_frame(true, OpCode::Binary, &[0, 1, 2, 255]);
    bob.expect_frame(true, op::BINARY, &[0, 1, 2, 255]);
    alice.expect_frame(true, op::BINARY, &[0, 1, 2, 255]);
    // Carol's room is her own: she hears only herself.
    carol.send_frame(true, OpCode::Text, b"anyone?");
    carol.expect_frame(true, op::TEXT, b"anyone?");
    carol.set_read_timeout(Duration::from_millis(300));
    assert!(carol.try_read_frame().is_err(), "nothing from the kitchen");
    // The kitchen did not hear her either: its next frame is the next kitchen message.
    alice.send_frame(true, OpCode::Text, b"bye");
    bob.expect_frame(true, op::TEXT, b"bye");
    let stats = server.stats();
    assert_eq!(stats["rooms"], 2, "{stats}");
    assert_eq!(stats["messages_in_total"], 4, "{stats}");
    assert_eq!(stats["messages_out_total"], 7, "{stats}");
}

#[test]
fn chat_without_a_room_is_the_lobby() {
    let server = Server::start();
    let mut a = server.open_path("/chat");
    let mut b = server.open_path("/chat?room=lobby");
    a.send_frame(true, OpCode::Text, b"lobby");
    b.expect_frame(true, op::TEXT, b"lobby");
}

#[test]
fn a_fragmented_message_reaches_the_room_as_one_frame() {
    let server = Server::start();
    let mut sender = server.open_path("/chat?room=f");
    let mut listener = server.open_path("/chat?room=f");
    // Another member's message in between must not interleave with the fragments.
    sender.send_frame(false, OpCode::Text, b"frag");
    listener.send_frame(true, OpCode::Text, b"between");
    // Once the listener has its own copy back, the server has relayed it: only then
    // does the sender go on, so the order is fixed.
    listener.expect_frame(true, op::TEXT, b"between");
    sender.send_frame(false, OpCode::Continuation, b"men");
    sender.send_frame(true, OpCode::Ping, b"p");
    sender.send_frame(true, OpCode::Continuation, b"ted");
    listener.expect_frame(true, op::TEXT, b"fragmented");
    sender.expect_frame(true, op::TEXT, b"between");
    sender.expect_frame(true, op::PONG, b"p");
    sender.expect_frame(true, op::TEXT, b"fragmented");
}

#[test]
fn an_invalid_message_is_not_broadcast() {
    let server = Server::start();
    let mut bad = server.open_path("/chat?room=v");
    let mut good = server.open_path("/chat?room=v");
    // Valid UTF-8 so far, then an invalid byte in the last fragment: the member is
    // failed with 1007 and the room never sees any of the message.
    bad.send_frame(false, OpCode::Text, b"ok so far");
    bad.send_frame(true, OpCode::Continuation, &[0xC0, 0x80]);
    bad.expect_close(1007);
    good.send_frame(true, OpCode::Text, b"next");
    good.expect_frame(true, op::TEXT, b"next");
}

#[test]
fn room_names_outside_the_unreserved_set_get_400() {
    let server = Server::start();
    for target in ["/chat?room=", "/chat?room=a%20b", "/chat?room=a/b"] {
        let resp = server.request(&upgrade_request(target, ""));
        assert_eq!(resp.status, 400, "{target}: {resp:?}");
    }
    let long = format!("/chat?room={}", "x".repeat(65));
    assert_eq!(server.request(&upgrade_request(&long, "")).status, 400);
}

/// A member that stops reading must not hold up the room: the others keep getting
/// every message, and the stuck member is dropped once it is far enough behind.
#[test]
fn a_member_that_never_reads_is_dropped_and_never_stalls_the_others() {
    let server = Server::start();
    let stuck = server.open_path("/chat?room=s");
    socket2::SockRef::from(&stuck.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    let mut sender = server.open_path("/chat?room=s");
    let mut reader = server.open_path("/chat?room=s");
    let payload = common::pseudo_random_bytes(60_000, 3);
    // 100 × 60 kB = 6 MB: far past the stuck member's socket buffers and the 1 MiB
    // slow-member limit. The sender reads its own copies as it goes.
    let sending = thread::spawn(move || {
        for _ in 0..100 {
            sender.send_frame(true, OpCode::Binary, &payload);
            sender.expect_frame(true, op::BINARY, &payload);
        }
        sender
    });
    let expected = common::pseudo_random_bytes(60_000, 3);
    for i in 0..100 {
        let frame = reader.read_frame();
        assert_eq!(frame.opcode, op::BINARY, "message {i}");
        assert!(frame.payload == expected, "message {i} differs");
    }
    let mut sender = sending.join().unwrap();
    let stats = server.stats();
    assert_eq!(stats["slow_members_dropped_total"], 1, "{stats}");
    assert_eq!(stats["closes_by_code"]["1006"], 1, "{stats}");
    // The two others and this /stats request: the stuck member's socket is gone.
    assert_eq!(stats["connections"], 3, "{stats}");
    sender.send_frame(true, OpCode::Close, &close_payload(1000, ""));
    sender.expect_close(1000);
    // (The stuck client itself would now read what its kernel had already received,
    // then the end; with a 4 KiB window that trickle takes minutes, so it is not read.)
    drop(stuck);
}

/// A member's last message, sent together with its Close and the end of its stream,
/// still reaches the room: the sender leaves only after its messages went out.
#[test]
fn a_last_message_sent_with_the_close_still_reaches_the_room() {
    let server = Server::start();
    let mut leaving = server.open_path("/chat?room=bye");
    let mut staying = server.open_path("/chat?room=bye");
    let mut last = common::client_frame(true, OpCode::Text, b"goodbye");
    last.extend(common::client_frame(
        true,
        OpCode::Close,
        &close_payload(1000, ""),
    ));
    leaving.send(&last);
    leaving.shutdown_write();
    staying.expect_frame(true, op::TEXT, b"goodbye");
}
