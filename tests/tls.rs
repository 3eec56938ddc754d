//! wss:// and https:// against the real binary (`serve --tls-cert --tls-key`), with a
//! certificate made for the test (rcgen, `common::tls`) and an independent client:
//! rustls' own buffered client with tungstenite over it. Bad input gets an alert or a close, is counted by reason,
//! and leaves other connections alone.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::tls::{close, echo, Cert};
use common::IO_TIMEOUT;
use tungstenite::Message;

#[test]
fn wss_echoes_over_tls13_and_tls12() {
    let cert = Cert::new();
    let server = cert.server(&[]);
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let mut ws = cert.wss(server.addr, versions);
        echo(&mut ws, Message::text("hello over TLS ✓"));
        // Larger than a record (16 KiB) and than the read buffer's half: many records
        // each way, reassembled by both ends.
        let big = common::pseudo_random_bytes(300_000, 7);
        echo(&mut ws, Message::binary(big));
        for i in 0..50 {
            echo(&mut ws, Message::text(format!("small {i}")));
        }
        close(ws);
    }
}

#[test]
fn every_route_is_served_over_https() {
    let cert = Cert::new();
    let server = cert.server(&[]);
    let (status, page) = cert.get(server.addr, "/");
    assert_eq!(status, 200);
    // The demo page connects back with wss:// when it was loaded over https.
    assert!(String::from_utf8_lossy(&page).contains("\"wss://\""));
    for path in ["/dashboard", "/metrics"] {
        assert_eq!(cert.get(server.addr, path).0, 200, "{path}");
    }
    assert_eq!(cert.stats(server.addr)["connections"], 1);
}

#[test]
fn a_chat_room_over_tls_reaches_every_member() {
    let cert = Cert::new();
    let server = cert.server(&[]);
    let versions = rustls::DEFAULT_VERSIONS;
    let mut members: Vec<_> = (0..3)
        .map(|_| cert.wss_path(server.addr, versions, "/chat?room=tls"))
        .collect();
    for round in 0..20 {
        let text = format!("round {round}: {}", "x".repeat(round * 1000));
        members[round % 3]
            .send(Message::text(text.clone()))
            .unwrap();
        for member in &mut members {
            assert_eq!(member.read().unwrap(), Message::text(text.clone()));
        }
    }
    for member in members {
        close(member);
    }
}

#[test]
fn a_session_resumes_on_any_worker() {
    let cert = Cert::new();
    let server = cert.server(&["--workers", "2"]);
    // One configuration, so one session store: each connection offers the newest ticket.
    let config = cert.client_config(&[&rustls::version::TLS13]);
    let mut kinds = Vec::new();
    for i in 0..12 {
        let stream = cert.connect(server.addr, config.clone());
        let (mut ws, _) = tungstenite::client::client("wss://localhost/echo", stream).unwrap();
        echo(&mut ws, Message::text(format!("resume {i}")));
        kinds.push(ws.get_ref().conn.handshake_kind());
        close(ws);
    }
    let resumed = Some(rustls::HandshakeKind::Resumed);
    assert!(kinds[1..].iter().all(|k| *k == resumed), "{kinds:?}");
    // The kernel spread the connections over both workers (SO_REUSEPORT hashes each
    // connection's addresses), so tickets crossed from one worker to the other.
    let spread = common::eventually(Duration::from_secs(5), || {
        let stats = cert.stats(server.addr);
        let accepted: Vec<u64> = stats["workers"]
            .as_array()?
            .iter()
            .map(|w| w["accepted_total"].as_u64().unwrap_or(0))
            .collect();
        (accepted.len() == 2 && accepted.iter().all(|&n| n > 0)).then_some(accepted)
    });
    assert!(spread.is_some(), "{}", cert.stats(server.addr));
}

#[test]
fn wss_works_with_workers() {
    let cert = Cert::new();
    let server = cert.server(&["--workers", "2"]);
    let mut clients: Vec<_> = (0..8)
        .map(|_| cert.wss(server.addr, rustls::DEFAULT_VERSIONS))
        .collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        echo(ws, Message::text(format!("worker echo {i}")));
    }
    // The supervisor's view of its workers is a second old at most.
    let all_open = common::eventually(Duration::from_secs(5), || {
        (cert.stats(server.addr)["websockets"] == 8).then_some(())
    });
    assert!(all_open.is_some(), "{}", cert.stats(server.addr));
    for ws in clients {
        close(ws);
    }
}

/// Sends `bytes` on a fresh TCP connection and reads until the server closes: what it
/// sent back (an alert, or nothing), and how long it took.
fn answer_to(addr: SocketAddr, bytes: &[u8], then_eof: bool) -> (Vec<u8>, Duration) {
    let mut tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let started = Instant::now();
    tcp.write_all(bytes).unwrap();
    if then_eof {
        tcp.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut answer = Vec::new();
    match tcp.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("no close from the server: {e}"),
    }
    (answer, started.elapsed())
}

/// A TLS alert record (RFC 8446 §6): content type 21, fatal, with `description`.
fn is_alert(answer: &[u8], description: u8) -> bool {
    answer.len() >= 7 && answer[0] == 21 && answer[5] == 2 && answer[6] == description
}

/// A ClientHello as TLS 1.1 clients send it: version 3.2, no supported_versions
/// extension (RFC 8446 §4.1.2, D.2), one TLS 1.0-era cipher suite; with
/// `signature_algorithms` (which OpenSSL sends only from TLS 1.2 on) or without.
fn tls11_client_hello(with_sigalgs: bool) -> Vec<u8> {
    let mut body = vec![3, 2];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 2, 0xc0, 0x13]); // ECDHE_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[1, 0]); // null compression
    if with_sigalgs {
        // signature_algorithms (13): ecdsa_secp256r1_sha256, rsa_pkcs1_sha256.
        body.extend_from_slice(&[0, 10, 0, 13, 0, 6, 0, 4, 4, 3, 4, 1]);
    }
    let mut handshake = vec![1, 0, 0, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 3, 1, 0, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn bad_input_gets_an_alert_or_a_close_and_is_counted() {
    let cert = Cert::new();
    let server = cert.server(&["--handshake-timeout", "1"]);
    // A bystander: whatever others send, it keeps its echo.
    let mut bystander = cert.wss(server.addr, rustls::DEFAULT_VERSIONS);

    // Plain HTTP to the TLS port: not a TLS record at all.
    let (answer, _) = answer_to(server.addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", false);
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");

    // An unsupported version: a TLS 1.1 hello as OpenSSL sends it gets
    // handshake_failure (40): it lacks signature_algorithms, which rustls asks for
    // first; with it, protocol_version (70).
    let (answer, _) = answer_to(server.addr, &tls11_client_hello(false), false);
    assert!(is_alert(&answer, 40), "{answer:?}");
    let (answer, _) = answer_to(server.addr, &tls11_client_hello(true), false);
    assert!(is_alert(&answer, 70), "{answer:?}");

    // A garbage record: application data before any handshake: unexpected_message (10).
    let (answer, _) = answer_to(server.addr, &[23, 3, 3, 0, 4, 1, 2, 3, 4], false);
    assert!(is_alert(&answer, 10), "{answer:?}");

    // A truncated ClientHello, then EOF: closed at once.
    let hello = tls11_client_hello(true);
    let (_, took) = answer_to(server.addr, &hello[..20], true);
    assert!(took < Duration::from_secs(3), "{took:?}");

    // A truncated ClientHello, then silence: the handshake timeout covers the TLS
    // handshake (1 s here, swept once a second).
    let (_, took) = answer_to(server.addr, &hello[..20], false);
    assert!(took < IO_TIMEOUT, "{took:?}");

    // A handshake message rustls had joined across records, then a bad record: the
    // alert after it once panicked the server (fuzz/run.sh tls found it; the input is
    // in the fuzz corpus): now an alert, and the server goes on.
    let crash = include_bytes!("../fuzz/corpus/tls/crash-e620d2532f4de787b9dce04561e987cf2ecd877e");
    let (answer, _) = answer_to(server.addr, &crash[2..], false);
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");

    echo(&mut bystander, Message::text("still here"));
    let failures = &cert.stats(server.addr)["handshake_failures"];
    assert_eq!(failures["tls_not_tls"], 1, "{failures}");
    assert_eq!(failures["tls_version"], 2, "{failures}");
    assert_eq!(failures["tls_unexpected_message"], 1, "{failures}");
    assert_eq!(failures["timeout"], 1, "{failures}");
    assert_eq!(failures["tls_bad_message"], 1, "{failures}");
    close(bystander);
}
