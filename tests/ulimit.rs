//! The server under a low descriptor limit: it keeps serving what it holds, sheds the
//! excess promptly without spinning, and accepts again once descriptors free up.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{cpu_seconds, op, upgrade_request, Raw, Server};
use wsreactor::protocol::frame::OpCode;

/// The descriptor limit the server runs under (soft and hard, so it cannot raise it).
const LIMIT: u64 = 256;

/// Opens a connection and tries the handshake. `Ok(stream)` on 101; `Err(answer)` with
/// whatever came back instead (a status line, or an empty string for EOF/reset).
fn try_upgrade(server: &Server) -> Result<Raw, String> {
    let mut s = TcpStream::connect(server.addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A shed connection may already be closed: a failed write is an answer too.
    let _ = s.write_all(&upgrade_request("/echo", ""));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("no answer within 10 s: a client over the limit must not hang")
            }
            Err(_) => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if head.starts_with("HTTP/1.1 101") {
        Ok(Raw::from_stream(s))
    } else {
        Err(head.lines().next().unwrap_or("").to_owned())
    }
}

/// Sends a text message and checks the echo.
fn assert_echoes(raw: &mut Raw, text: &str) {
    raw.send_frame(true, OpCode::Text, text.as_bytes());
    raw.expect_frame(true, op::TEXT, text.as_bytes());
}

#[test]
fn saturated_server_sheds_promptly_keeps_serving_and_recovers() {
    let server = Server::with_nofile(&["--idle-timeout", "0", "--ping-interval", "0"], LIMIT);

    // Fill the server past its limit.
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..LIMIT + 60 {
        match try_upgrade(&server) {
            Ok(s) => open.push(s),
            Err(answer) => refused.push(answer),
        }
    }
    assert!(
        open.len() as u64 > LIMIT - 16 && (open.len() as u64) < LIMIT,
        "{} connections established under a limit of {LIMIT}",
        open.len()
    );
    assert!(refused.len() >= 50, "only {} refused", refused.len());
    assert!(
        refused
            .iter()
            .all(|a| a.is_empty() || a.starts_with("HTTP/1.1 503")),
        "over-limit clients get 503 or a closed connection: {refused:?}"
    );

    // Established connections still echo.
    for (i, raw) in open.iter_mut().enumerate() {
        assert_echoes(raw, &format!("still here {i}"));
    }

    // Saturated and idle, the server must not spin: a busy loop would burn ~1 CPU second
    // per second; an idle reactor wakes four times a second for its timer sweep.
    let before = cpu_seconds(server.pid());
    std::thread::sleep(Duration::from_secs(2));
    let idle_cpu = cpu_seconds(server.pid()) - before;
    assert!(
        idle_cpu < 0.5,
        "the saturated server used {idle_cpu:.2} s of CPU in 2 s"
    );

    // A client arriving while saturated is answered promptly, also without a spin.
    let before = cpu_seconds(server.pid());
    let started = Instant::now();
    for _ in 0..20 {
        assert!(
            try_upgrade(&server).is_err(),
            "no room, yet a handshake succeeded"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let shed_cpu = cpu_seconds(server.pid()) - before;
    assert!(
        shed_cpu < 0.5,
        "shedding 20 clients used {shed_cpu:.2} s of CPU"
    );

    // Free some descriptors: the server accepts again.
    let freed = 40;
    open.truncate(open.len() - freed);
    std::thread::sleep(Duration::from_millis(500));
    let mut again = Vec::new();
    for _ in 0..freed - 5 {
        again.push(try_upgrade(&server).expect("a freed descriptor is usable again"));
    }
    for raw in &mut again {
        assert_echoes(raw, "accepted after recovery");
    }
    let stats = server.stats();
    assert!(
        stats["accept_emfile_total"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(stats["shed_total"].as_u64().unwrap() >= 20, "{stats}");
}

/// Half a request head from `source`, then nothing: a slowloris connection.
fn stall_from(server: &Server, source: [u8; 4]) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from((source, 0)).into())
        .unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    stream
}

/// A server under `limit` descriptors whose handshake timeout is far off, so that only
/// giving way can make room, and whose open connections never time out.
fn slow_to_time_out(limit: u64) -> Server {
    let args = [
        "--handshake-timeout",
        "60",
        "--idle-timeout",
        "0",
        "--ping-interval",
        "0",
    ];
    Server::with_nofile(&args, limit)
}

/// Every descriptor held by unfinished request heads: a newcomer still gets its 101 (the
/// longest-waiting head gives way, with a 503), and open WebSockets are never the ones
/// to go. The handshake timeout is far off, so only giving way can make room.
#[test]
fn unfinished_request_heads_give_way_to_a_newcomer() {
    let server = slow_to_time_out(LIMIT);
    let mut open: Vec<Raw> = (0..20)
        .map(|_| try_upgrade(&server).expect("room for the first WebSockets"))
        .collect();
    // More stalled heads than there are descriptors, from another address.
    let mut stalled: Vec<TcpStream> = (0..LIMIT)
        .map(|_| stall_from(&server, [127, 0, 0, 2]))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        let mut newcomer = try_upgrade(&server)
            .unwrap_or_else(|answer| panic!("newcomer {i} got {answer:?}, not 101"));
        assert_echoes(&mut newcomer, "made room");
        open.push(newcomer);
    }
    for (i, raw) in open.iter_mut().enumerate() {
        assert_echoes(raw, &format!("never evicted {i}"));
    }
    // The oldest stalled head was told why it went.
    let first = &mut stalled[0];
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = first.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.contains("Retry-After: 1"),
        "{answer:?}"
    );
    let stats = server.stats();
    let evicted = stats["evictions"]["request_head"].as_u64().unwrap_or(0);
    assert!(evicted >= 10, "{stats}");
    assert_eq!(stats["handshake_failures"]["gave_way"], evicted, "{stats}");
    assert_eq!(stats["closes_by_code"].get("1006"), None, "{stats}");
}

/// Reads an HTTP response head: `Ok(status line)`, or the error that ended the read.
fn read_status_line(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match stream.read(&mut byte)? {
            0 => break,
            _ => head.push(byte[0]),
        }
    }
    Ok(String::from_utf8_lossy(&head).trim_end().to_owned())
}

/// A burst of whole upgrade requests arrives while every descriptor is held by stalled
/// heads: each client is answered, 101 (a stalled head gave way) or 503, and none is
/// reset: clients admitted in one accept pass never evict each other, and a 503 is
/// followed by a FIN, not a reset that would discard it.
#[test]
fn a_burst_of_whole_requests_at_the_limit_is_answered_not_reset() {
    const LIMIT: u64 = 64;
    let server = slow_to_time_out(LIMIT);
    let _stalled: Vec<TcpStream> = (0..LIMIT)
        .map(|_| stall_from(&server, [127, 0, 0, 2]))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut burst: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            let _ = s.write_all(&upgrade_request("/echo", ""));
            s
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::new();
    for client in &mut burst {
        let outcome = match read_status_line(client) {
            Ok(line) if line.starts_with("HTTP/1.1 101 ") => "101".to_owned(),
            Ok(line) if line.starts_with("HTTP/1.1 503 ") => "503".to_owned(),
            Ok(line) => format!("other: {line:?}"),
            Err(e) => format!("error: {:?}", e.kind()),
        };
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    let answered = outcomes.get("101").unwrap_or(&0) + outcomes.get("503").unwrap_or(&0);
    assert_eq!(answered, 200, "{outcomes:?}");
    assert!(outcomes.get("101").is_some_and(|&n| n > 0), "{outcomes:?}");
}
