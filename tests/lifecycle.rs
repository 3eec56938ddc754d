//! The server process as a whole: start-up on an ephemeral port, handshakes as real
//! clients send them, and shutdown on SIGTERM.

mod common;

use std::time::Duration;

use common::{op, Server};
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
