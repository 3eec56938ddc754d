//! Hostile, broken and slow clients over raw TCP. Each test asserts the exact close code
//! or HTTP status, that the server then ends the connection (EOF), and that it still
//! serves a fresh client afterwards.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{client_frame, close_payload, op, raw_frame, upgrade_request, Server, MASK};
use wsreactor::protocol::frame::OpCode;

/// Sends `bytes` on a fresh WebSocket, expects Close `code` and then EOF.
fn expect_failure(server: &Server, bytes: &[u8], code: u16) {
    let mut ws = server.open();
    ws.send(bytes);
    ws.expect_close(code);
    ws.expect_eof();
}

/// Sends a request head on a fresh connection and expects `status`, then EOF.
fn expect_status(server: &Server, request: &[u8], status: u16) -> common::Response {
    let resp = server.request(request);
    assert_eq!(resp.status, status, "{resp:?}");
    assert_eq!(
        resp.header("connection").map(str::to_ascii_lowercase),
        Some("close".into()),
        "{resp:?}"
    );
    resp
}

// ---- frames ----------------------------------------------------------------------

#[test]
fn unmasked_frame_is_closed_with_1002() {
    let mut server = Server::start();
    expect_failure(&server, &raw_frame(0x81, None, b"hello"), 1002);
    // An unmasked control frame too.
    expect_failure(&server, &raw_frame(0x89, None, b""), 1002);
    server.assert_serves();
}

#[test]
fn invalid_utf8_in_one_frame_is_closed_with_1007() {
    let mut server = Server::start();
    for bad in [
        &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"[..], // surrogate
        b"\xff",                                                                // never valid
        b"\xc0\xaf",                                                            // overlong
        b"ends inside a code point \xe2\x82",                                   // unfinished
    ] {
        expect_failure(&server, &client_frame(true, OpCode::Text, bad), 1007);
    }
    server.assert_serves();
}

#[test]
fn invalid_utf8_split_across_fragments_fails_fast() {
    let mut server = Server::start();
    let mut ws = server.open();
    // F0 9F starts a 4-byte code point and is a valid prefix: the first fragment is fine
    // (and is echoed as it stands, frame by frame).
    ws.send_frame(false, OpCode::Text, b"ab\xf0\x9f");
    ws.expect_frame(false, op::TEXT, b"ab\xf0\x9f");
    // F0 9F 98 is still a valid prefix; '(' cannot continue it. No final fragment is
    // ever sent: the Close must come at the bad byte (§8.1 fail fast, Autobahn 6.4.x).
    ws.send_frame(false, OpCode::Continuation, b"\x98(more");
    ws.expect_close(1007);
    ws.expect_eof();
    server.assert_serves();
}

#[test]
fn invalid_utf8_fails_fast_inside_one_frame() {
    // A single 40-byte text frame of which only the first 16 payload bytes are sent;
    // the invalid sequence is among them, so the Close must arrive without the rest.
    let mut server = Server::start();
    let mut payload = b"valid prefix \xf4\x90\x80".to_vec(); // F4 90: above U+10FFFF
    payload.resize(40, b'x');
    let frame = client_frame(true, OpCode::Text, &payload);
    let mut ws = server.open();
    ws.send(&frame[..2 + 4 + 16]);
    ws.expect_close(1007);
    ws.expect_eof();
    server.assert_serves();
}

#[test]
fn oversized_single_frame_is_closed_with_1009() {
    let mut server = Server::with_args(&["--max-message-size", "1000"]);
    // At the limit: fine.
    let mut ws = server.open();
    let exact = vec![b'a'; 1000];
    ws.send_frame(true, OpCode::Binary, &exact);
    ws.expect_frame(true, op::BINARY, &exact);
    // One byte over: 1009, decided from the header.
    ws.send_frame(true, OpCode::Binary, &[b'b'; 1001]);
    ws.expect_close(1009);
    ws.expect_eof();
    // A header announcing far more than will ever be sent: no need to wait for it.
    let mut ws = server.open();
    let (head, len) = wsreactor::protocol::frame::FrameHeader {
        fin: true,
        rsv1: false,
        opcode: OpCode::Text,
        mask: Some(MASK),
        payload_len: 1 << 40,
    }
    .encode();
    ws.send(&head[..len]);
    ws.expect_close(1009);
    ws.expect_eof();
    server.assert_serves();
}

#[test]
fn oversized_fragmented_message_is_closed_with_1009() {
    let mut server = Server::with_args(&["--max-message-size", "1000"]);
    let mut ws = server.open();
    // 400 + 400 + 300 = 1100 > 1000: each fragment alone is small.
    ws.send_frame(false, OpCode::Binary, &[1; 400]);
    ws.expect_frame(false, op::BINARY, &[1; 400]);
    ws.send_frame(false, OpCode::Continuation, &[2; 400]);
    ws.expect_frame(false, op::CONTINUATION, &[2; 400]);
    ws.send_frame(true, OpCode::Continuation, &[3; 300]);
    ws.expect_close(1009);
    ws.expect_eof();
    // Fragments summing to exactly the limit are fine.
    let mut ws = server.open();
    ws.send_frame(false, OpCode::Text, &[b'x'; 600]);
    ws.send_frame(true, OpCode::Continuation, &[b'y'; 400]);
    ws.expect_frame(false, op::TEXT, &[b'x'; 600]);
    ws.expect_frame(true, op::CONTINUATION, &[b'y'; 400]);
    server.assert_serves();
}

#[test]
fn reserved_opcodes_are_closed_with_1002() {
    let mut server = Server::start();
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        expect_failure(&server, &raw_frame(0x80 | opcode, Some(MASK), b"x"), 1002);
    }
    server.assert_serves();
}

#[test]
fn rsv_bits_are_closed_with_1002() {
    let mut server = Server::start();
    for rsv in [0x40, 0x20, 0x10, 0x70] {
        expect_failure(&server, &raw_frame(0x81 | rsv, Some(MASK), b"x"), 1002);
    }
    // On a control frame too.
    expect_failure(&server, &raw_frame(0x89 | 0x40, Some(MASK), b""), 1002);
    server.assert_serves();
}

#[test]
fn continuation_without_a_message_is_closed_with_1002() {
    let mut server = Server::start();
    expect_failure(
        &server,
        &client_frame(true, OpCode::Continuation, b"orphan"),
        1002,
    );
    expect_failure(
        &server,
        &client_frame(false, OpCode::Continuation, b"orphan"),
        1002,
    );
    server.assert_serves();
}

#[test]
fn new_message_inside_a_fragmented_one_is_closed_with_1002() {
    let mut server = Server::start();
    let mut ws = server.open();
    ws.send_frame(false, OpCode::Text, b"start");
    ws.expect_frame(false, op::TEXT, b"start");
    ws.send_frame(true, OpCode::Binary, b"interloper");
    ws.expect_close(1002);
    ws.expect_eof();
    server.assert_serves();
}

#[test]
fn control_frame_over_125_bytes_is_closed_with_1002() {
    let mut server = Server::start();
    for first in [0x89, 0x8A, 0x88] {
        let mut payload = close_payload(1000, "");
        payload.resize(126, b'r');
        expect_failure(&server, &raw_frame(first, Some(MASK), &payload), 1002);
    }
    server.assert_serves();
}

#[test]
fn fragmented_ping_is_closed_with_1002() {
    let mut server = Server::start();
    expect_failure(&server, &raw_frame(0x09, Some(MASK), b"part"), 1002);
    // Also inside a fragmented data message.
    let mut ws = server.open();
    ws.send_frame(false, OpCode::Text, b"data");
    ws.expect_frame(false, op::TEXT, b"data");
    ws.send(&raw_frame(0x09, Some(MASK), b"part"));
    ws.expect_close(1002);
    ws.expect_eof();
    server.assert_serves();
}

#[test]
fn close_with_an_invalid_code_is_closed_with_1002() {
    let mut server = Server::start();
    // 1005 and 1006 are reserved for local use (§7.4.1); the others are unassigned or
    // out of range (§7.4.2).
    for code in [1005, 1006, 1015, 0, 999, 1004, 1016, 2999, 5000, 65535] {
        expect_failure(
            &server,
            &client_frame(true, OpCode::Close, &close_payload(code, "")),
            1002,
        );
    }
    // A one-byte body cannot hold a code (§5.5.1).
    expect_failure(&server, &client_frame(true, OpCode::Close, &[0x03]), 1002);
    server.assert_serves();
}

#[test]
fn close_with_an_invalid_utf8_reason_is_closed_with_1007() {
    let mut server = Server::start();
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(b"bad \xff reason");
    expect_failure(&server, &client_frame(true, OpCode::Close, &payload), 1007);
    server.assert_serves();
}

#[test]
fn length_with_the_top_bit_set_is_closed_with_1002() {
    // §5.2: the most significant bit of a 64-bit length must be 0.
    let mut server = Server::start();
    let mut frame = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    frame.extend_from_slice(&MASK);
    expect_failure(&server, &frame, 1002);
    server.assert_serves();
}

#[test]
fn frame_header_split_across_writes_is_still_echoed() {
    let mut server = Server::start();
    let mut ws = server.open();
    // A 64-bit-length frame: the 14-byte header goes one byte per write, then the
    // payload in uneven pieces, with pauses so the server sees each piece on its own.
    let payload = common::pseudo_random_bytes(70_000, 3);
    let frame = client_frame(true, OpCode::Binary, &payload);
    for b in &frame[..14] {
        ws.send(std::slice::from_ref(b));
        thread::sleep(Duration::from_millis(15));
    }
    for piece in frame[14..].chunks(23_456) {
        ws.send(piece);
        thread::sleep(Duration::from_millis(15));
    }
    // Each piece is echoed as it arrives: fragments of the one message.
    ws.expect_message(op::BINARY, &payload);
    // A short text frame, byte by byte, with a code point cut by the writes.
    let text = "κόσμε";
    for b in client_frame(true, OpCode::Text, text.as_bytes()) {
        ws.send(&[b]);
        thread::sleep(Duration::from_millis(15));
    }
    ws.expect_message(op::TEXT, text.as_bytes());
    // A Ping split too: control frames wait until whole.
    for b in client_frame(true, OpCode::Ping, b"split ping") {
        ws.send(&[b]);
        thread::sleep(Duration::from_millis(15));
    }
    ws.expect_frame(true, op::PONG, b"split ping");
    server.assert_serves();
}

#[test]
fn frames_in_the_same_write_as_the_request_are_processed() {
    // RFC 6455 §4.2.1, §5: a client may send frames in the same write as its request head;
    // they belong to the frame stream (docs/design.md#protocol-checklist).
    let mut server = Server::start();
    let mut ws = server.connect();
    let mut burst = upgrade_request("/echo", "");
    burst.extend(client_frame(true, OpCode::Text, b"first"));
    burst.extend(client_frame(false, OpCode::Binary, b"frag"));
    burst.extend(client_frame(true, OpCode::Ping, b"p"));
    burst.extend(client_frame(true, OpCode::Continuation, b"ment"));
    burst.extend(client_frame(
        true,
        OpCode::Close,
        &close_payload(1000, "done"),
    ));
    ws.send(&burst);
    ws.read_response().assert_switching();
    ws.expect_frame(true, op::TEXT, b"first");
    ws.expect_frame(false, op::BINARY, b"frag");
    ws.expect_frame(true, op::PONG, b"p");
    ws.expect_frame(true, op::CONTINUATION, b"ment");
    ws.expect_close(1000);
    ws.expect_eof();
    server.assert_serves();
}

// ---- the opening handshake ---------------------------------------------------------

#[test]
fn garbage_instead_of_http_gets_400() {
    let mut server = Server::start();
    expect_status(
        &server,
        b"\x16\x03\x01\x02\x00 garbage \xff\xfe\r\n\r\n",
        400,
    );
    expect_status(&server, b"hello\r\n\r\n", 400);
    expect_status(&server, b"GET /echo\r\n\r\n", 400);
    expect_status(&server, b"GET /echo HTTP/1.1\nHost: x\n\n\r\n\r\n", 400);
    server.assert_serves();
}

#[test]
fn request_head_written_one_byte_at_a_time_is_upgraded() {
    let mut server = Server::start();
    let mut ws = server.connect();
    for b in upgrade_request("/echo", "") {
        ws.send(&[b]);
        thread::sleep(Duration::from_millis(2));
    }
    ws.read_response().assert_switching();
    ws.send_frame(true, OpCode::Text, b"after a slow head");
    ws.expect_frame(true, op::TEXT, b"after a slow head");
    server.assert_serves();
}

#[test]
fn head_over_8_kib_gets_431() {
    let mut server = Server::start();
    let filler = format!("X-Filler: {}\r\n", "a".repeat(9000));
    expect_status(&server, &upgrade_request("/echo", &filler), 431);
    // Without the end of the head ever arriving: refused once 8 KiB are in.
    let mut raw = server.connect();
    raw.send(format!("GET /echo HTTP/1.1\r\nX-Filler: {}", "b".repeat(10_000)).as_bytes());
    let resp = raw.read_response();
    assert_eq!(resp.status, 431, "{resp:?}");
    raw.expect_eof();
    server.assert_serves();
}

#[test]
fn more_than_64_headers_get_431() {
    let mut server = Server::start();
    // The upgrade request has 5 fields; 59 more make 64, which is allowed.
    let fields = |n: usize| {
        (0..n)
            .map(|i| format!("X-H{i}: {i}\r\n"))
            .collect::<String>()
    };
    let mut ok = server.connect();
    ok.send(&upgrade_request("/echo", &fields(59)));
    ok.read_response().assert_switching();
    // 60 more make 65.
    expect_status(&server, &upgrade_request("/echo", &fields(60)), 431);
    server.assert_serves();
}

#[test]
fn wrong_or_missing_version_gets_426_with_the_version_header() {
    let mut server = Server::start();
    for version_line in [
        "Sec-WebSocket-Version: 8\r\n",
        "Sec-WebSocket-Version: 14\r\n",
        "",
    ] {
        let request = format!(
            "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\n{version_line}\r\n",
            common::KEY
        );
        let resp = expect_status(&server, request.as_bytes(), 426);
        assert_eq!(
            resp.header("sec-websocket-version"),
            Some("13"),
            "§4.4: {resp:?}"
        );
    }
    server.assert_serves();
}

#[test]
fn missing_or_malformed_key_gets_400() {
    let mut server = Server::start();
    for key_line in [
        "",
        "Sec-WebSocket-Key: \r\n",
        "Sec-WebSocket-Key: not base64 at all!!!!!\r\n",
        "Sec-WebSocket-Key: c2hvcnQ=\r\n", // base64 of 5 bytes, not 16
    ] {
        let request = format!(
            "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\n{key_line}Sec-WebSocket-Version: 13\r\n\r\n"
        );
        expect_status(&server, request.as_bytes(), 400);
    }
    server.assert_serves();
}

#[test]
fn post_gets_405() {
    let mut server = Server::start();
    let resp = expect_status(
        &server,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
        405,
    );
    assert_eq!(resp.header("allow"), Some("GET"), "{resp:?}");
    // An upgrade attempt with another method too (§4.1: the handshake is a GET).
    let upgrade = String::from_utf8(upgrade_request("/echo", ""))
        .unwrap()
        .replacen("GET", "PUT", 1);
    expect_status(&server, upgrade.as_bytes(), 405);
    server.assert_serves();
}

#[test]
fn unknown_path_gets_404() {
    let mut server = Server::start();
    assert_eq!(server.get("/nope").status, 404);
    assert_eq!(server.get("/stats/more").status, 404);
    server.assert_serves();
}

/// RFC 9112 §3.2.2: a server must accept the absolute-form, and route it as the
/// origin-form of the same path and query.
#[test]
fn absolute_form_targets_are_routed_like_origin_form() {
    let mut server = Server::start();
    let addr = server.addr;
    assert_eq!(server.get(&format!("http://{addr}/stats")).status, 200);
    assert_eq!(
        server.get(&format!("http://{addr}")).status,
        200,
        "the page"
    );
    assert_eq!(server.get(&format!("HTTP://{addr}/nope?x")).status, 404);
    let mut member = server.open_path(&format!("ws://{addr}/chat?room=absolute"));
    let mut sender = server.open_path("/chat?room=absolute");
    sender.send_frame(true, OpCode::Text, b"one room");
    member.expect_frame(true, op::TEXT, b"one room");
    server.assert_serves();
}

#[test]
fn root_serves_the_html_page() {
    let mut server = Server::start();
    let resp = server.get("/");
    assert_eq!(resp.status, 200, "{resp:?}");
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{resp:?}");
    assert!(!resp.body.is_empty());
    server.assert_serves();
}

#[test]
fn stats_is_json_with_connection_counters() {
    let mut server = Server::start();
    let resp = server.get("/stats");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json")));
    let stats: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
    assert!(stats["connections"].is_u64(), "{stats}");
    // The /stats request itself is a connection.
    assert!(stats["connections"].as_u64() >= Some(1), "{stats}");
    server.assert_serves();
}

#[test]
fn allowed_origin_rejects_others_with_403_and_accepts_it() {
    let server = Server::with_args(&["--allowed-origin", "https://good.example"]);
    let evil = upgrade_request("/echo", "Origin: https://evil.example\r\n");
    expect_status(&server, &evil, 403);
    let mut good = server.connect();
    good.send(&upgrade_request(
        "/echo",
        "Origin: https://good.example\r\n",
    ));
    good.read_response().assert_switching();
    good.send_frame(true, OpCode::Text, b"from a good origin");
    good.expect_frame(true, op::TEXT, b"from a good origin");
    // With an allow-list, an upgrade that names no Origin is refused as well.
    expect_status(&server, &upgrade_request("/echo", ""), 403);
    assert_eq!(server.stats()["handshake_failures"]["origin_forbidden"], 2);
}

#[test]
fn slowloris_gets_408_then_eof() {
    let mut server = Server::with_args(&["--handshake-timeout", "1"]);
    let mut slow = server.connect();
    slow.set_read_timeout(Duration::from_secs(15));
    slow.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    // Keep trickling header bytes: progress must not extend the deadline.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = slow.stream.try_clone().unwrap();
    let trickle = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
                if writer.write_all(b"X").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let resp = slow.read_response();
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    assert_eq!(resp.status, 408, "{resp:?}");
    slow.expect_eof();
    server.assert_serves();
}

#[test]
fn silent_client_is_pinged_then_closed_with_1001() {
    let mut server = Server::with_args(&["--idle-timeout", "2", "--ping-interval", "1"]);
    let mut ws = server.open();
    ws.set_read_timeout(Duration::from_secs(15));
    let ping = ws.read_frame();
    assert_eq!(ping.opcode, op::PING, "{}", common::describe(&ping));
    // Never answered: the idle timeout closes with 1001 (going away).
    ws.expect_close(1001);
    ws.expect_eof();
    server.assert_serves();
}

#[test]
fn client_answering_pings_stays_open_past_the_idle_timeout() {
    // The idle timeout is 3 s (not 2) so that a pong delayed by a busy machine is not
    // mistaken for silence; the client stays 8 s, well past it, and must see pings.
    let mut server = Server::with_args(&["--idle-timeout", "3", "--ping-interval", "1"]);
    let mut ws = server.open();
    ws.set_read_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let frame = ws.read_frame();
        match frame.opcode {
            op::PING => {
                pings += 1;
                ws.send_frame(true, OpCode::Pong, &frame.payload);
            }
            _ => panic!(
                "after {:?} and {pings} pings: unexpected {}",
                started.elapsed(),
                common::describe(&frame)
            ),
        }
    }
    assert!(
        pings >= 3,
        "only {pings} pings in 8 s with --ping-interval 1"
    );
    ws.send_frame(true, OpCode::Text, b"still here");
    // A ping may be in flight ahead of the echo.
    loop {
        let frame = ws.read_frame();
        if frame.opcode == op::PING {
            ws.send_frame(true, OpCode::Pong, &frame.payload);
            continue;
        }
        assert_eq!(
            (frame.fin, frame.opcode, &frame.payload[..]),
            (true, op::TEXT, &b"still here"[..])
        );
        break;
    }
    server.assert_serves();
}

#[test]
fn max_connections_refuses_the_third_handshake_with_503() {
    let mut server = Server::with_args(&["--max-connections", "2"]);
    let mut a = server.open();
    let mut b = server.open();
    let third = expect_status(&server, &upgrade_request("/echo", ""), 503);
    assert!(third.header("retry-after").is_some(), "{third:?}");
    // The two admitted ones still work.
    for ws in [&mut a, &mut b] {
        ws.send_frame(true, OpCode::Text, b"admitted");
        ws.expect_frame(true, op::TEXT, b"admitted");
    }
    // Plain HTTP is not a WebSocket and is still served.
    assert_eq!(server.get("/stats").status, 200);
    server.assert_running();
}

#[test]
fn max_connections_frees_a_slot_when_a_client_closes() {
    let server = Server::with_args(&["--max-connections", "2"]);
    let _a = server.open();
    let mut b = server.open();
    expect_status(&server, &upgrade_request("/echo", ""), 503);
    // b leaves with a complete closing handshake: its slot must become free.
    b.send_frame(true, OpCode::Close, &close_payload(1000, ""));
    b.expect_close(1000);
    b.expect_eof();
    drop(b);
    let admitted = common::eventually(Duration::from_secs(10), || {
        let mut raw = server.connect();
        raw.send(&upgrade_request("/echo", ""));
        let resp = raw.read_response();
        (resp.status == 101).then_some(raw)
    });
    let Some(mut c) = admitted else {
        panic!(
            "a closed WebSocket never freed its --max-connections slot; /stats: {}",
            server.stats()
        );
    };
    c.send_frame(true, OpCode::Text, b"took the freed slot");
    c.expect_frame(true, op::TEXT, b"took the freed slot");
}

#[test]
fn stats_gauges_return_to_zero_after_clients_leave() {
    let server = Server::start();
    {
        // One leaves with a closing handshake, one is failed for a protocol error, and
        // one simply disconnects.
        let mut clean = server.open();
        let mut failed = server.open();
        let gone = server.open();
        let stats = server.stats();
        assert_eq!(stats["websockets"].as_u64(), Some(3), "{stats}");
        clean.send_frame(true, OpCode::Close, &close_payload(1000, ""));
        clean.expect_close(1000);
        clean.expect_eof();
        failed.send(&raw_frame(0x81, None, b"unmasked"));
        failed.expect_close(1002);
        failed.expect_eof();
        drop(gone);
    }
    let settled = common::eventually(Duration::from_secs(10), || {
        let stats = server.stats();
        // Only the /stats request itself may remain.
        (stats["websockets"].as_u64() == Some(0) && stats["connections"].as_u64() == Some(1))
            .then_some(())
    });
    assert!(
        settled.is_some(),
        "gauges did not return to zero: {}",
        server.stats()
    );
}
