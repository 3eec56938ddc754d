//! What changes under a running wss:// server: the certificate, reloaded on SIGHUP by
//! every worker (open connections go on, new ones get the new certificate, a broken
//! replacement is refused and the old one kept), and the session-ticket key, rotated
//! every `--tls-ticket-rotation` seconds (a ticket resumes one rotation later, not two).

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::tls::{close, echo, Cert};
use common::Server;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{ClientConfig, HandshakeKind};
use tungstenite::Message;

/// How many lines of `server`'s log contain `text`.
fn logged(server: &Server, text: &str) -> usize {
    server
        .log_tail(100_000)
        .lines()
        .filter(|l| l.contains(text))
        .count()
}

fn sighup(server: &Server) {
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
}

/// Sends SIGHUP and waits until `processes` more log lines contain `outcome`.
fn reload(server: &Server, processes: usize, outcome: &str) {
    let before = logged(server, outcome);
    sighup(server);
    let done = common::eventually(Duration::from_secs(10), || {
        (logged(server, outcome) >= before + processes).then_some(())
    });
    assert!(done.is_some(), "no `{outcome}`:\n{}", server.log_tail(30));
}

/// The leaf certificate a new wss:// connection sees (after an echo over it).
fn leaf(cert: &Cert, server: &Server) -> CertificateDer<'static> {
    let mut ws = cert.wss(server.addr, rustls::DEFAULT_VERSIONS);
    echo(&mut ws, Message::text("which certificate?"));
    let leaf = ws.get_ref().conn.peer_certificates().unwrap()[0].clone();
    close(ws);
    leaf
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_connections() {
    for (workers, processes) in [("1", 1), ("2", 2)] {
        let mut cert = Cert::new();
        let mut server = cert.server(&["--workers", workers]);
        let first = cert.der.clone();
        let mut old = cert.wss(server.addr, rustls::DEFAULT_VERSIONS);
        echo(&mut old, Message::text("before"));

        cert.renew();
        reload(&server, processes, "SIGHUP: certificate reloaded");
        echo(&mut old, Message::text("after the reload"));
        // Enough connections that both workers take some.
        for _ in 0..8 {
            assert_eq!(leaf(&cert, &server), cert.der, "{workers} workers");
        }
        assert_ne!(cert.der, first);

        // A broken replacement: refused, logged, and the last good certificate stays.
        let good = cert.der.clone();
        std::fs::write(cert.dir.join("cert.pem"), "not a certificate").unwrap();
        reload(&server, processes, "SIGHUP: certificate not reloaded");
        for _ in 0..8 {
            assert_eq!(leaf(&cert, &server), good, "{workers} workers");
        }
        echo(&mut old, Message::text("still here"));
        close(old);
        server.assert_running();
    }
}

/// A client clock stopped at the test's start: rustls' client drops a ticket past the
/// lifetime the server gave it, and this test must see what the server does with one.
#[derive(Debug)]
struct Stopped(UnixTime);

impl rustls::time_provider::TimeProvider for Stopped {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// A TLS 1.3 client with a session store of its own and a stopped clock.
fn resuming_client(cert: &Cert) -> Arc<ClientConfig> {
    let mut config = (*cert.client_config(&[&rustls::version::TLS13])).clone();
    config.time_provider = Arc::new(Stopped(UnixTime::now()));
    Arc::new(config)
}

/// Connects, echoes (so the server's tickets arrive) and closes: how it shook hands.
fn handshake(cert: &Cert, server: &Server, config: &Arc<ClientConfig>) -> Option<HandshakeKind> {
    let stream = cert.connect(server.addr, config.clone());
    let (mut ws, _) = tungstenite::client::client("wss://localhost/echo", stream).unwrap();
    echo(&mut ws, Message::text("ticket"));
    let kind = ws.get_ref().conn.handshake_kind();
    close(ws);
    kind
}

/// Sleeps until just after the start of the next `period` (periods start at multiples of
/// it since the Unix epoch, as the server's do).
fn next_period(period: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos((now.as_nanos() % (period as u128 * 1_000_000_000)) as u64);
    std::thread::sleep(Duration::from_secs(period) - into + Duration::from_millis(100));
}

#[test]
fn a_ticket_resumes_one_rotation_later_but_not_two() {
    const PERIOD: u64 = 2;
    let cert = Cert::new();
    let server = cert.server(&["--workers", "2", "--tls-ticket-rotation", "2"]);
    next_period(PERIOD);
    // Two clients, each with one ticket from this period.
    let (once, twice) = (resuming_client(&cert), resuming_client(&cert));
    for config in [&once, &twice] {
        assert_eq!(handshake(&cert, &server, config), Some(HandshakeKind::Full));
    }
    next_period(PERIOD);
    assert_eq!(
        handshake(&cert, &server, &once),
        Some(HandshakeKind::Resumed),
        "a ticket from the previous period"
    );
    next_period(PERIOD);
    assert_eq!(
        handshake(&cert, &server, &twice),
        Some(HandshakeKind::Full),
        "a ticket from two periods ago"
    );
    // The resumed connection of the last period left a ticket that still opens.
    assert_eq!(
        handshake(&cert, &server, &once),
        Some(HandshakeKind::Resumed)
    );
}
