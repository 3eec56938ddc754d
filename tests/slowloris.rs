//! Slowloris: 10,000 clients that never finish their request head, each dribbling a
//! byte now and then, must not keep the server from serving new clients promptly, and
//! each is answered 408 and closed at `--handshake-timeout`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

const SLOW_CLIENTS: usize = 10_000;

/// This process holds 10,000 sockets: lift its soft descriptor limit to the hard one.
fn raise_own_nofile() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur as usize > SLOW_CLIENTS + 100,
        "this test needs {SLOW_CLIENTS} descriptors; the hard limit is {}",
        limit.rlim_cur
    );
}

#[test]
fn ten_thousand_slowloris_clients_neither_block_others_nor_outstay_the_timeout() {
    raise_own_nofile();
    let mut server = Server::with_args(&["--handshake-timeout", "6"]);
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr)
                .unwrap_or_else(|e| panic!("slow client {i}: connect: {e}"));
            s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            s
        })
        .collect();
    let opened = started.elapsed();
    // Dribble a byte of a never-ending header to every slow client, twice a second,
    // while fresh clients come and go: each must be served in full meanwhile.
    let header = b"X-Slow: ".iter().chain(b"z".iter().cycle());
    let mut served = 0;
    for byte in header.take(6) {
        for s in &mut slow {
            s.write_all(&[*byte]).unwrap();
        }
        let t = Instant::now();
        server.assert_serves();
        served += 1;
        eprintln!("a fresh client served in {:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(served, 6);
    // At the deadline each slow client gets 408 and the end of the connection.
    let mut refused = 0;
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut response = Vec::new();
        s.read_to_end(&mut response)
            .expect("the server ends the connection");
        assert!(
            response.starts_with(b"HTTP/1.1 408 "),
            "{:?}",
            String::from_utf8_lossy(&response)
        );
        refused += 1;
    }
    eprintln!(
        "{SLOW_CLIENTS} slow clients opened in {opened:?}, all refused by {:?}",
        started.elapsed()
    );
    assert_eq!(refused, SLOW_CLIENTS);
    let stats = server.stats();
    assert_eq!(
        stats["handshake_failures"]["timeout"], SLOW_CLIENTS,
        "{stats}"
    );
    assert_eq!(stats["timeouts_total"], SLOW_CLIENTS, "{stats}");
    server.assert_serves();
}
