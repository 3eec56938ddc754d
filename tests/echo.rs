//! The echo endpoint with well-behaved clients: `tungstenite` as an independent client,
//! and raw frames where the exact frame structure on the wire is the point.

mod common;

use std::borrow::Cow;
use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use common::{op, pseudo_random_bytes, ws_client, ws_client_with_timeout, Server};
use tungstenite::protocol::frame::coding::{Data, OpCode as WsOpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error, Message};
use wsreactor::protocol::frame::OpCode;

/// Reads the next message, which must be a data message (no control messages expected).
fn read_data(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Message {
    match ws.read() {
        Ok(m @ (Message::Text(_) | Message::Binary(_))) => m,
        Ok(other) => panic!("expected a data message, got {other:?}"),
        Err(e) => panic!("read: {e}"),
    }
}

#[test]
fn text_message_is_echoed() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    for text in ["hello", "κόσμε", "a€b𝄞c", "mixed ASCII and emoji 🦀🦀"] {
        ws.send(Message::Text(text.into())).unwrap();
        assert_eq!(read_data(&mut ws), Message::Text(text.into()));
    }
}

#[test]
fn binary_message_is_echoed() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    ws.send(Message::Binary(all_bytes.clone())).unwrap();
    assert_eq!(read_data(&mut ws), Message::Binary(all_bytes));
}

#[test]
fn empty_messages_are_echoed() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    ws.send(Message::Text(String::new())).unwrap();
    assert_eq!(read_data(&mut ws), Message::Text(String::new()));
    ws.send(Message::Binary(Vec::new())).unwrap();
    assert_eq!(read_data(&mut ws), Message::Binary(Vec::new()));
}

#[test]
fn sizes_around_every_length_encoding_are_echoed() {
    // 7-bit, 16-bit and 64-bit lengths (§5.2), and sizes around the server's 64 KiB
    // read buffer, so a frame is whole in one read or spread over several.
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    for (i, len) in [
        1, 125, 126, 127, 1000, 65_535, 65_536, 65_537, 65_550, 131_072, 200_003,
    ]
    .into_iter()
    .enumerate()
    {
        let payload = pseudo_random_bytes(len, i as u64 + 1);
        ws.send(Message::Binary(payload.clone())).unwrap();
        match read_data(&mut ws) {
            Message::Binary(got) => assert!(got == payload, "{len}-byte message differs"),
            other => panic!("{len}: expected binary, got {other:?}"),
        }
    }
}

#[test]
fn fragmented_message_comes_back_with_the_same_fragments() {
    let server = Server::start();
    let mut ws = server.open();
    // "Hello, wörld": the ö (C3 B6) is split between two fragments, which is legal:
    // UTF-8 validity is a property of the whole message (§5.6).
    let fragments: [(bool, OpCode, &[u8]); 4] = [
        (false, OpCode::Text, b"Hel"),
        (false, OpCode::Continuation, b"lo, w\xc3"),
        (false, OpCode::Continuation, b""),
        (true, OpCode::Continuation, b"\xb6rld"),
    ];
    for (fin, opcode, payload) in fragments {
        ws.send_frame(fin, opcode, payload);
    }
    let mut message = Vec::new();
    for (i, (fin, opcode, payload)) in fragments.into_iter().enumerate() {
        let frame = ws.read_frame();
        let want_op = if i == 0 { op::TEXT } else { op::CONTINUATION };
        assert_eq!(
            (frame.fin, frame.opcode, &frame.payload[..]),
            (fin, want_op, payload),
            "fragment {i} ({opcode:?})"
        );
        message.extend_from_slice(&frame.payload);
    }
    assert_eq!(String::from_utf8(message).unwrap(), "Hello, wörld");
}

#[test]
fn fragmented_message_reassembles_in_an_independent_client() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    let text = "fragmented κόσμε message";
    let bytes = text.as_bytes();
    // Cut inside the two-byte κ (bytes 11..13) to split a code point across frames.
    let pieces = [&bytes[..5], &bytes[5..12], &bytes[12..]];
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 {
            WsOpCode::Data(Data::Text)
        } else {
            WsOpCode::Data(Data::Continue)
        };
        let frame = Frame::message(piece.to_vec(), opcode, i == pieces.len() - 1);
        ws.write(Message::Frame(frame)).unwrap();
    }
    ws.flush().unwrap();
    assert_eq!(read_data(&mut ws), Message::Text(text.into()));

    let binary = pseudo_random_bytes(300_000, 7);
    for (i, piece) in binary.chunks(70_000).enumerate() {
        let opcode = if i == 0 {
            WsOpCode::Data(Data::Binary)
        } else {
            WsOpCode::Data(Data::Continue)
        };
        let fin = (i + 1) * 70_000 >= binary.len();
        ws.write(Message::Frame(Frame::message(piece.to_vec(), opcode, fin)))
            .unwrap();
    }
    ws.flush().unwrap();
    assert_eq!(read_data(&mut ws), Message::Binary(binary));
}

#[test]
fn ping_between_fragments_is_answered_in_order() {
    // §5.4: control frames may be injected in the middle of a fragmented message.
    let server = Server::start();
    let mut ws = server.open();
    ws.send_frame(false, OpCode::Binary, b"first");
    ws.send_frame(true, OpCode::Ping, b"between");
    ws.send_frame(true, OpCode::Continuation, b"second");
    ws.expect_frame(false, op::BINARY, b"first");
    ws.expect_frame(true, op::PONG, b"between");
    ws.expect_frame(true, op::CONTINUATION, b"second");
}

#[test]
fn large_message_is_echoed_byte_for_byte() {
    let server = Server::start();
    let config = WebSocketConfig {
        max_message_size: Some(64 << 20),
        max_frame_size: Some(64 << 20),
        ..WebSocketConfig::default()
    };
    // A debug build moving megabytes on a busy machine: give reads more time.
    let mut ws = ws_client_with_timeout(server.addr, Some(config), Duration::from_secs(60));

    // The echo streams back while the message is still arriving, so the client reads
    // while it writes (as every async client does): a writer thread sends the frame on
    // a clone of the socket, and tungstenite reads the echo.
    let send = |ws: &tungstenite::WebSocket<std::net::TcpStream>, opcode, payload: &[u8]| {
        let mut writer = ws.get_ref().try_clone().unwrap();
        let frame = common::client_frame(true, opcode, payload);
        thread::spawn(move || writer.write_all(&frame).expect("send the message"))
    };
    let binary = pseudo_random_bytes(9 << 20, 42);
    let sender = send(&ws, OpCode::Binary, &binary);
    match read_data(&mut ws) {
        Message::Binary(got) => {
            assert_eq!(got.len(), binary.len());
            assert!(got == binary, "the 9 MiB echo differs");
        }
        other => panic!("expected binary, got {other:?}"),
    }
    sender.join().unwrap();

    // Text: UTF-8 validated across many reads, with code points cut at read boundaries.
    let unit = "κόσμε 𝄞 ✓ ascii ";
    let text = unit.repeat((8 << 20) / unit.len() + 1);
    let sender = send(&ws, OpCode::Text, text.as_bytes());
    match read_data(&mut ws) {
        Message::Text(got) => assert!(got == text, "the 8 MiB text echo differs"),
        other => panic!("expected text, got {other:?}"),
    }
    sender.join().unwrap();
}

#[test]
fn many_pipelined_messages_come_back_in_order() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    let messages: Vec<Message> = (0..1000)
        .map(|i| {
            if i % 2 == 0 {
                Message::Text(format!("message {i} {}", "x".repeat(i % 97)))
            } else {
                Message::Binary(pseudo_random_bytes(i % 211, i as u64))
            }
        })
        .collect();
    // Queue them all, then one flush: they reach the server back to back.
    for m in &messages {
        ws.write(m.clone()).unwrap();
    }
    ws.flush().unwrap();
    for (i, want) in messages.iter().enumerate() {
        assert_eq!(&read_data(&mut ws), want, "message {i}");
    }
}

#[test]
fn ping_gets_a_pong_with_the_same_payload() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    ws.send(Message::Ping(b"are you there?".to_vec())).unwrap();
    match ws.read() {
        Ok(Message::Pong(payload)) => assert_eq!(payload, b"are you there?"),
        other => panic!("expected a Pong, got {other:?}"),
    }

    // Raw: an empty Ping and one of the largest allowed (125 bytes).
    let mut raw = server.open();
    raw.send_frame(true, OpCode::Ping, b"");
    raw.expect_frame(true, op::PONG, b"");
    let big: Vec<u8> = (0..125u8).collect();
    raw.send_frame(true, OpCode::Ping, &big);
    raw.expect_frame(true, op::PONG, &big);
    // An unsolicited Pong is ignored (§5.5.3), and the connection keeps echoing.
    raw.send_frame(true, OpCode::Pong, b"unsolicited");
    raw.send_frame(true, OpCode::Text, b"after pong");
    raw.expect_frame(true, op::TEXT, b"after pong");
}

#[test]
fn client_close_1000_gets_close_1000_then_eof() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    ws.send(Message::Text("before close".into())).unwrap();
    assert_eq!(read_data(&mut ws), Message::Text("before close".into()));
    ws.close(Some(CloseFrame {
        code: 1000.into(),
        reason: Cow::Borrowed("bye"),
    }))
    .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected Close 1000, got {other:?}"),
    }
    match ws.read() {
        Err(Error::ConnectionClosed) => {}
        other => panic!("expected the connection to be closed, got {other:?}"),
    }
    // The server closed its side of TCP too.
    let mut rest = Vec::new();
    let n = ws.get_mut().read_to_end(&mut rest).expect("read to EOF");
    assert_eq!(n, 0, "bytes after the server's Close: {rest:?}");

    // The same, raw: the reply is exactly Close 1000, then EOF.
    let mut raw = server.open();
    raw.send_frame(true, OpCode::Close, &common::close_payload(1000, "bye"));
    raw.expect_close(1000);
    raw.expect_eof();
}

#[test]
fn close_code_4000_is_echoed() {
    let server = Server::start();
    let mut ws = ws_client(server.addr, None);
    ws.close(Some(CloseFrame {
        code: 4000.into(),
        reason: Cow::Borrowed("application code"),
    }))
    .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected Close 4000, got {other:?}"),
    }

    let mut raw = server.open();
    raw.send_frame(true, OpCode::Close, &common::close_payload(4000, ""));
    raw.expect_close(4000);
    raw.expect_eof();
}

#[test]
fn close_without_a_code_gets_a_close_then_eof() {
    // §5.5.1: a Close may have no body; the answer then carries no code either (1005
    // must never be sent on the wire).
    let server = Server::start();
    let mut raw = server.open();
    raw.send_frame(true, OpCode::Close, b"");
    let frame = raw.read_frame();
    assert_eq!(frame.opcode, op::CLOSE, "{}", common::describe(&frame));
    assert!(
        frame.payload.is_empty() || frame.close_code() == Some(1000),
        "unexpected close body {:?}",
        frame.payload
    );
    raw.expect_eof();
}

#[test]
fn nothing_is_echoed_after_the_client_close() {
    // Frames after a Close are not answered (§5.5.1: the Close is the last frame).
    let server = Server::start();
    let mut raw = server.open();
    let mut burst = common::client_frame(true, OpCode::Close, &common::close_payload(1000, ""));
    burst.extend(common::client_frame(true, OpCode::Text, b"too late"));
    burst.extend(common::client_frame(true, OpCode::Ping, b"too late"));
    raw.send(&burst);
    raw.expect_close(1000);
    raw.expect_eof();
}

#[test]
fn several_concurrent_clients_each_get_their_own_echoes() {
    let server = Server::start();
    let addr = server.addr;
    let workers: Vec<_> = (0..16)
        .map(|id| {
            thread::spawn(move || {
                let mut ws = ws_client(addr, None);
                for i in 0..100 {
                    let msg = if i % 3 == 0 {
                        Message::Binary(pseudo_random_bytes(i * 37 % 5000, (id * 1000 + i) as u64))
                    } else {
                        Message::Text(format!("client {id} message {i}"))
                    };
                    ws.send(msg.clone()).unwrap();
                    assert_eq!(read_data(&mut ws), msg, "client {id} message {i}");
                }
                ws.close(None).unwrap();
                loop {
                    match ws.read() {
                        Ok(Message::Close(_)) => {}
                        Ok(other) => panic!("client {id}: unexpected {other:?}"),
                        Err(Error::ConnectionClosed) => break,
                        Err(e) => panic!("client {id}: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread failed");
    }
}
