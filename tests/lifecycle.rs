//! The server process as a whole: start-up on an ephemeral port, handshakes as real
//! clients send them, and shutdown on SIGTERM.

mod common;

use std::time::Duration;

use common::{close_payload, op, pseudo_random_bytes, upgrade_request, Raw, Server, IO_TIMEOUT};
use wsreactor::protocol::frame::OpCode;

#[test]
fn two_servers_get_distinct_ephemeral_ports() {
    let mut a = Server::start();
    let mut b = Server::start();
    assert_ne!(a.addr, b.addr);
    a.assert_serves();
    b.assert_serves();
}

#[test]
fn handshake_tokens_are_case_insensitive_and_listed() {
    // §4.2.1: Upgrade and Connection are case-insensitive; Connection is a token list
    // (Firefox sends `keep-alive, Upgrade`).
    let mut server = Server::start();
    let request = format!(
        "GET /any/path?x=1 HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: WebSocket\r\n\
         connection: keep-alive, UPGRADE\r\nsec-websocket-key: {}\r\n\
         sec-websocket-version: 13\r\nUser-Agent: test\r\n\r\n",
        common::KEY
    );
    let mut ws = server.connect();
    ws.send(request.as_bytes());
    ws.read_response().assert_switching();
    ws.send_frame(true, OpCode::Binary, b"\x00\x01\x02");
    ws.expect_frame(true, op::BINARY, b"\x00\x01\x02");
    server.assert_serves();
}

#[test]
fn sigterm_closes_open_websockets_with_1001_and_exits_cleanly() {
    let mut server = Server::start();
    let mut ws = server.open();
    ws.send_frame(true, OpCode::Text, b"before shutdown");
    ws.expect_frame(true, op::TEXT, b"before shutdown");
    let pid = libc::pid_t::try_from(server.pid()).unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child, which
    // the guard has not reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    ws.expect_close(1001);
    ws.send_frame(true, OpCode::Close, &common::close_payload(1001, ""));
    ws.expect_eof();
    // Our EOF lets the server drop its last connection and exit without the grace wait.
    ws.shutdown_write();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
}

/// A client may send its last frames and a Close, then half-close its socket
/// (shutdown(SHUT_WR)) and keep reading: it gets every echo and the Close reply. (How
/// much output is still queued at the EOF depends on the kernel's buffer autotuning;
/// the unit test `output_owed_at_the_clients_eof_is_delivered` pins the case where
/// it is.)
#[test]
fn a_half_closed_client_still_receives_everything_owed() {
    let server = Server::start();
    // A small receive buffer keeps most of the echo queued inside the server.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&server.addr.into(), IO_TIMEOUT)
        .unwrap();
    let mut raw = Raw::from_stream(socket.into());
    raw.send(&upgrade_request("/echo", ""));
    raw.read_response().assert_switching();

    let payload = pseudo_random_bytes(3 << 20, 5);
    raw.send_frame(true, OpCode::Binary, &payload);
    raw.send_frame(true, OpCode::Close, &close_payload(1000, ""));
    raw.shutdown_write();
    std::thread::sleep(Duration::from_millis(300));

    raw.set_read_timeout(Duration::from_secs(10));
    let echo = raw.read_message();
    assert_eq!(
        (echo.opcode, echo.payload.len()),
        (op::BINARY, payload.len())
    );
    assert!(
        echo.payload == payload,
        "the echo differs from what was sent"
    );
    raw.expect_close(1000);
    raw.expect_eof();
}
