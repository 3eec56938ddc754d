//! Issue 4's behaviours against the real binary: subprotocol selection, the `/stats`
//! breakdowns and status line, the send timeout for a client that never reads, and
//! graceful shutdown (with `--shutdown-timeout`, and across `--workers`).

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{close_payload, eventually, op, upgrade_request, Server};
use wsreactor::protocol::frame::OpCode;

fn sigterm(pid: u32) {
    // SAFETY: kill has no memory preconditions; the pid is our own child, not reaped.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
}

#[test]
fn the_first_offered_protocol_the_server_speaks_is_selected() {
    let server = Server::with_args(&["--protocol", "chat.v2", "--protocol", "chat.v1"]);
    let offer = |header: &str| {
        let mut raw = server.connect();
        raw.send(&upgrade_request("/echo", header));
        let resp = raw.read_response();
        resp.assert_switching();
        resp.header("sec-websocket-protocol").map(str::to_owned)
    };
    // The client's order of preference decides (RFC 6455 §4.1 item 10).
    assert_eq!(
        offer("Sec-WebSocket-Protocol: x, chat.v1, chat.v2\r\n").as_deref(),
        Some("chat.v1")
    );
    assert_eq!(
        offer("Sec-WebSocket-Protocol: y\r\nSec-WebSocket-Protocol: chat.v2\r\n").as_deref(),
        Some("chat.v2")
    );
    assert_eq!(offer("Sec-WebSocket-Protocol: x, y\r\n"), None);
    assert_eq!(offer(""), None);
    // An independent client agrees that the selection is valid.
    let request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/echo",
        server.addr
    ))
    .map(|mut r| {
        r.headers_mut()
            .insert("Sec-WebSocket-Protocol", "chat.v1".parse().unwrap());
        r
    })
    .unwrap();
    let stream = std::net::TcpStream::connect(server.addr).unwrap();
    let (_, response) = tungstenite::client(request, stream).unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
}

#[test]
fn stats_break_down_refusals_and_closes() {
    let server = Server::start();
    assert_eq!(server.get("/nope").status, 404);
    let v8 = upgrade_request("/", "").replace_version("8");
    assert_eq!(server.request(&v8).status, 426);
    assert_eq!(server.request(b"NOT HTTP\r\n\r\n").status, 400);
    let mut normal = server.open();
    normal.send_frame(true, OpCode::Text, b"m");
    normal.expect_frame(true, op::TEXT, b"m");
    normal.send_frame(true, OpCode::Close, &close_payload(1000, ""));
    normal.expect_close(1000);
    let mut broken = server.open();
    broken.send(&common::raw_frame(0x81, None, b"unmasked"));
    broken.expect_close(1002);
    let vanished = server.open();
    drop(vanished);
    let stats = eventually(Duration::from_secs(5), || {
        let stats = server.stats();
        (stats["closes_by_code"]["1006"] == 1).then_some(stats)
    })
    .expect("the vanished client is counted as 1006");
    let failures = &stats["handshake_failures"];
    assert_eq!(failures["not_found"], 1, "{stats}");
    assert_eq!(failures["websocket_version"], 1, "{stats}");
    assert_eq!(failures["malformed_head"], 1, "{stats}");
    assert_eq!(stats["closes_by_code"]["1000"], 1, "{stats}");
    assert_eq!(stats["closes_by_code"]["1002"], 1, "{stats}");
    assert_eq!(stats["handshakes_total"], 3, "{stats}");
    assert_eq!(stats["messages_in_total"], 1, "{stats}");
    assert_eq!(stats["messages_out_total"], 1, "{stats}");
    assert!(stats["bytes_in_total"].as_u64() > Some(0), "{stats}");
    assert!(stats["rss_bytes"].as_u64() > Some(1 << 20), "{stats}");
    assert_eq!(stats["accept_emfile_total"], 0, "{stats}");
    assert!(stats["accepted_total"].as_u64() >= Some(7), "{stats}");
}

#[test]
fn the_status_line_follows_the_stats_interval() {
    let mut every = Server::with_args(&["--stats-interval", "1"]);
    let mut never = Server::with_args(&["--stats-interval", "0"]);
    // The line is logged when something changed since the last one.
    for server in [&mut every, &mut never] {
        server.assert_serves();
    }
    let line = eventually(Duration::from_secs(5), || {
        every
            .log_tail(20)
            .lines()
            .find(|l| l.contains("status: ") && l.contains("handshakes"))
            .map(str::to_owned)
    })
    .expect("a status line within a few seconds");
    assert!(
        line.contains("websocket") && line.contains("MiB rss"),
        "{line}"
    );
    thread::sleep(Duration::from_millis(2500));
    assert!(
        !never.log_tail(50).contains("status: "),
        "{}",
        never.log_tail(50)
    );
}

/// A client that floods and never reads: reading from it pauses, and once it has taken
/// nothing for `--send-timeout` seconds the server drops it.
#[test]
fn a_client_that_never_reads_is_dropped_at_the_send_timeout() {
    let server = Server::with_args(&["--send-timeout", "2"]);
    let mut flooder = server.open();
    socket2::SockRef::from(&flooder.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    let frame = common::client_frame(true, OpCode::Binary, &[5; 32 * 1024]);
    let started = Instant::now();
    let mut stream = flooder.stream.try_clone().unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let ended = loop {
        match stream.write_all(&frame) {
            Ok(()) => assert!(started.elapsed() < Duration::from_secs(30), "never dropped"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            ended.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "the write fails because the server dropped the connection: {ended}"
    );
    let stats = server.stats();
    assert_eq!(stats["timeouts_total"], 1, "{stats}");
    assert_eq!(stats["closes_by_code"]["1006"], 1, "{stats}");
    flooder.shutdown_write();
}

#[test]
fn shutdown_waits_for_close_replies_only_up_to_the_shutdown_timeout() {
    let mut server = Server::with_args(&["--shutdown-timeout", "2"]);
    let mut mute = server.open();
    let mut polite = server.open();
    sigterm(server.pid());
    mute.expect_close(1001);
    polite.expect_close(1001);
    polite.send_frame(true, OpCode::Close, &close_payload(1001, ""));
    polite.expect_eof();
    // Our EOF ends the server's lingering close of this one.
    polite.shutdown_write();
    // The mute client never answers: the server gives up on it after 2 s, exit 0.
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits despite a client that never answers");
    assert!(status.success(), "exit status {status}");
    assert!(
        server
            .log_tail(5)
            .contains("shut down with 1 connections left"),
        "{}",
        server.log_tail(5)
    );
}

#[test]
fn sigterm_to_the_supervisor_closes_every_workers_clients_with_1001() {
    let mut server = Server::with_args(&["--workers", "2"]);
    // Enough connections that both workers hold some (the kernel spreads them).
    let mut clients: Vec<_> = (0..16).map(|_| server.open()).collect();
    let pids: std::collections::BTreeSet<_> = (0..40)
        .map(|_| server.stats()["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "both workers serve");
    sigterm(server.pid());
    for client in &mut clients {
        client.expect_close(1001);
        client.send_frame(true, OpCode::Close, &close_payload(1001, ""));
        client.expect_eof();
    }
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the supervisor exits after its workers");
    assert!(status.success(), "exit status {status}");
}

trait ReplaceVersion {
    fn replace_version(&self, version: &str) -> Vec<u8>;
}

impl ReplaceVersion for Vec<u8> {
    fn replace_version(&self, version: &str) -> Vec<u8> {
        String::from_utf8_lossy(self)
            .replace(
                "Sec-WebSocket-Version: 13",
                &format!("Sec-WebSocket-Version: {version}"),
            )
            .into_bytes()
    }
}

/// After the server's Close, a client that never sends its own Close (nor ends the
/// connection) is dropped once the close timeout (5 s, RFC 6455 §7.1.1 leaves it to the
/// server) has passed.
#[test]
fn a_client_that_never_answers_the_close_is_dropped_after_the_close_timeout() {
    let server = Server::with_args(&["--idle-timeout", "1", "--ping-interval", "0"]);
    let mut ws = server.open();
    ws.set_read_timeout(Duration::from_secs(10));
    ws.expect_close(1001);
    // The server has shut down its sending side and lingers, reading, for our Close.
    ws.expect_eof();
    let held = |stats: &serde_json::Value| stats["connections"].as_u64().unwrap() - 1;
    assert_eq!(held(&server.stats()), 1, "still lingering for our Close");
    let dropped = eventually(Duration::from_secs(12), || {
        let stats = server.stats();
        (held(&stats) == 0).then_some(stats)
    })
    .expect("the server drops the silent client after the close timeout");
    assert_eq!(dropped["timeouts_total"], 2, "idle, then close: {dropped}");
}
