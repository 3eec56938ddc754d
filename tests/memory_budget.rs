//! A flood of half-sent messages cannot knock the server over with memory (one
//! server-wide budget covers every buffer a connection holds: `src/server/budget.rs`). Clients declare
//! large messages, send part of each and never read their echoes; the server's memory
//! stays within `--memory-budget`, the largest holders are dropped if need be, and an
//! unrelated client keeps echoing throughout.

mod common;

use std::io::{ErrorKind, Write};
use std::thread;
use std::time::Duration;

use common::{op, Server};
use wsreactor::protocol::frame::OpCode;

const BUDGET: u64 = 16 << 20;
const FLOODERS: usize = 40;
/// Each flooder declares a message this large...
const DECLARED: u64 = 16 << 20;
/// ...and sends this much of it, at most, before it stalls.
const SENT: usize = 8 << 20;

fn stat(server: &Server, name: &str) -> u64 {
    let stats = server.stats();
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("/stats has no {name}: {stats}"))
}

/// A masked binary frame header declaring `len` bytes (RFC 6455 §5.2), with an all-zero
/// masking key so that zero payload bytes stay zero on the wire.
fn header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

/// What a flood left: RSS before and during, and how many connections were shed.
struct Flooded {
    before: u64,
    during: u64,
    shed: u64,
}

/// Opens `FLOODERS` connections that each send part of a large message and never read,
/// while a bystander keeps echoing; then checks the bystander once more.
fn flood(server: &Server) -> Flooded {
    let before = stat(server, "rss_bytes");
    let mut bystander = server.open();

    let chunk = vec![0u8; 64 * 1024];
    let mut flooders = Vec::new();
    for i in 0..FLOODERS {
        let mut raw = server.open();
        raw.stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        raw.send(&header(DECLARED));
        let mut sent = 0;
        while sent < SENT {
            match raw.stream.write(&chunk) {
                Ok(n) => sent += n,
                // The server stopped reading (or dropped us): this flooder stalls here.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(_) => break,
            }
        }
        flooders.push(raw);
        if i % 5 == 4 {
            // The bystander is served all along.
            let text = format!("still here after {} flooders", i + 1);
            bystander.send_frame(true, OpCode::Text, text.as_bytes());
            bystander.expect_frame(true, op::TEXT, text.as_bytes());
        }
    }
    thread::sleep(Duration::from_millis(300));
    let flooded = Flooded {
        before,
        during: stat(server, "rss_bytes"),
        shed: stat(server, "memory_shed_total"),
    };
    eprintln!(
        "RSS {} KiB before, {} KiB with {FLOODERS} stalled flooders; {} shed",
        flooded.before >> 10,
        flooded.during >> 10,
        flooded.shed
    );
    bystander.send_frame(true, OpCode::Binary, b"and after");
    bystander.expect_frame(true, op::BINARY, b"and after");
    drop(flooders);
    bystander.send_frame(true, OpCode::Close, &common::close_payload(1000, ""));
    bystander.expect_close(1000);
    flooded
}

#[test]
fn half_sent_messages_stay_within_the_memory_budget() {
    // The same pool for messages in progress in both runs (half the small budget), so
    // that only the budget differs. Each flooder holds up to the high-water mark and a
    // read's echo besides, and the pool's users more: about 28 MiB in all, which the
    // 16 MiB budget must cut by shedding the largest holders, and a 1 GiB one leaves.
    let pool = (BUDGET / 2).to_string();
    let budgeted = flood(&Server::with_args(&[
        "--memory-budget",
        &BUDGET.to_string(),
        "--message-pool",
        &pool,
    ]));
    let unbounded = flood(&Server::with_args(&[
        "--memory-budget",
        "1GiB",
        "--message-pool",
        &pool,
    ]));

    // The budget bounds what connections hold. It is checked once a turn, and memory
    // freed by dropping a holder stays in the allocator, so allow half as much again.
    assert!(
        budgeted.during < budgeted.before + BUDGET + BUDGET / 2,
        "RSS grew by {} MiB over a {} MiB budget",
        (budgeted.during - budgeted.before) >> 20,
        BUDGET >> 20
    );
    // ...and it is the budget that bounded it, by shedding the largest holders (not
    // backpressure alone, which holds more than the budget here: see the run without
    // one), while most flooders stay connected.
    assert!(
        (1..=FLOODERS as u64 / 2).contains(&budgeted.shed),
        "{} of {FLOODERS} flooders shed",
        budgeted.shed
    );
    assert_eq!(unbounded.shed, 0, "a budget the flood fits sheds no one");
    assert!(
        unbounded.during > unbounded.before + BUDGET,
        "without the budget the same flood holds more than it ({} MiB)",
        (unbounded.during - unbounded.before) >> 20
    );
}

/// A client may write a whole message before it reads the echo (Autobahn's does): the
/// pool for messages in progress lets the server read on past the high-water mark, and
/// the client gets its echo. Without a pool the same client and the server wait on each
/// other until the send timeout drops it: the pool is what separates the two.
#[test]
fn the_message_pool_lets_a_whole_message_go_out_before_its_echo_is_read() {
    // More than loopback's socket buffers on both ends absorb (about 20 MiB here).
    const LEN: usize = 48 << 20;
    for (pool, echoed) in [("64MiB", true), ("0", false)] {
        let server = Server::with_args(&[
            "--max-message-size",
            "64MiB",
            "--message-pool",
            pool,
            "--send-timeout",
            "2",
        ]);
        let mut raw = server.open();
        let mut writer = raw.stream.try_clone().unwrap();
        writer
            .set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let sender = thread::spawn(move || {
            writer.write_all(&header(LEN as u64))?;
            writer.write_all(&vec![0u8; LEN])
        });
        let sent = sender.join().unwrap();
        if echoed {
            sent.expect("the whole message goes out before the echo is read");
            raw.set_read_timeout(Duration::from_secs(30));
            let echo = raw.read_message();
            assert!(echo.payload.len() == LEN && echo.payload.iter().all(|&b| b == 0));
        } else {
            let error = sent.expect_err("with no pool, the server stops reading");
            assert!(
                matches!(
                    error.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
                ),
                "dropped at the send timeout, not {error}"
            );
            assert!(stat(&server, "timeouts_total") >= 1);
        }
    }
}
