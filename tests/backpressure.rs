//! A client that floods the server and never reads must not grow the server's memory
//! without bound. The expected behaviour is that the server stops reading from it once
//! its unsent output passes a high-water mark (`HIGH_WATER` in
//! `src/protocol/server/config.rs`), so the flood stalls in the kernel's socket buffers;
//! nothing is dropped, and other clients are still served meanwhile.

mod common;

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::{client_frame, op, pseudo_random_bytes, Server};
use wsreactor::protocol::frame::OpCode;

const MESSAGE: usize = 64 * 1024;
const FLOOD_LIMIT: u64 = 200 << 20;
const RSS_LIMIT: u64 = 64 << 20;
/// A write blocked this long means the server has stopped reading: backpressure.
const STALL: Duration = Duration::from_secs(2);

fn rss_bytes(server: &Server) -> u64 {
    let stats = server.stats();
    stats["rss_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("/stats has no rss_bytes: {stats}"))
}

#[test]
fn a_client_that_never_reads_cannot_grow_server_memory() {
    let payload = pseudo_random_bytes(MESSAGE, 11);
    flood_without_reading(
        client_frame(true, OpCode::Binary, &payload),
        op::BINARY,
        payload,
    );
}

#[test]
fn a_ping_flood_that_never_reads_its_pongs_cannot_grow_server_memory() {
    // Pongs are queued like echoes: the same bound must hold for control frames.
    let payload = pseudo_random_bytes(125, 12);
    flood_without_reading(
        client_frame(true, OpCode::Ping, &payload),
        op::PONG,
        payload,
    );
}

/// Sends `frame` over and over without reading, checks the server's memory and that it
/// serves others, then reads every answer back (`echo_opcode` with `payload`).
fn flood_without_reading(frame: Vec<u8>, echo_opcode: u8, payload: Vec<u8>) {
    let mut server = Server::start();
    let before = rss_bytes(&server);

    let mut flood = server.open();
    let mut writer = flood.stream.try_clone().unwrap();
    writer.set_write_timeout(Some(STALL)).unwrap();

    // Send whole frames without reading, tracking exactly how much went out, until a
    // write makes no progress for STALL (or, if the server never pushes back, until
    // FLOOD_LIMIT bytes are out).
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut offset = 0; // into the frame being written
    let stalled = loop {
        if sent >= FLOOD_LIMIT {
            break false;
        }
        match writer.write(&frame[offset..]) {
            Ok(0) => panic!("the server closed the flooding connection"),
            Ok(n) => {
                sent += n as u64;
                offset = (offset + n) % frame.len();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("flood write after {sent} bytes: {e}"),
        }
    };
    let whole_frames = sent / frame.len() as u64;
    eprintln!(
        "flooded {} MiB ({whole_frames} messages) in {:?}; stalled: {stalled}",
        sent >> 20,
        started.elapsed()
    );

    // Measured from another connection while the flooder is stuck.
    let during = rss_bytes(&server);
    eprintln!(
        "server RSS: {} KiB before, {} KiB during",
        before >> 10,
        during >> 10
    );
    assert!(
        during < RSS_LIMIT,
        "server RSS grew to {} MiB with a client that does not read",
        during >> 20
    );
    assert!(
        stalled,
        "the server took {} MiB from a client that never reads without pushing back",
        sent >> 20
    );
    server.assert_serves();

    // Nothing was lost: once the client reads, every message comes back intact and in
    // order, and the connection still works. Finish the partial frame from another
    // thread, since its bytes may only fit once we read.
    let rest = frame[offset..].to_vec();
    let partial = offset != 0;
    let finisher = thread::spawn(move || {
        writer
            .set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        if partial {
            writer.write_all(&rest).expect("finish the partial frame");
        }
    });
    let expected = whole_frames + u64::from(partial);
    flood.set_read_timeout(Duration::from_secs(30));
    for i in 0..expected {
        // A data echo may stream back as fragments of its message; a Pong is one frame.
        let echo = if echo_opcode >= op::CLOSE {
            flood.read_frame()
        } else {
            flood.read_message()
        };
        assert!(
            echo.fin && echo.opcode == echo_opcode && echo.payload == payload,
            "echo {i} of {expected} differs: {}",
            common::describe(&echo)
        );
    }
    finisher.join().unwrap();
    flood.send_frame(true, OpCode::Text, b"caught up");
    flood.expect_frame(true, op::TEXT, b"caught up");
    flood.send_frame(true, OpCode::Close, &common::close_payload(1000, ""));
    flood.expect_close(1000);
    flood.expect_eof();

    let after = rss_bytes(&server);
    assert!(
        after < RSS_LIMIT,
        "server RSS {} MiB afterwards",
        after >> 20
    );
    server.assert_serves();
}

/// An idle connection owns no read-sized buffer (`src/stream/mod.rs`: a spill exists only
/// while it holds bytes). A frame header left over
/// after a large read must be kept as the few bytes it is, not in the 64 KiB
/// allocation it arrived in.
#[test]
fn leftover_header_bytes_do_not_keep_a_read_sized_buffer() {
    let server = Server::start();
    let payload = pseudo_random_bytes(60_000, 3);
    let frame = client_frame(true, OpCode::Binary, &payload);
    let next = client_frame(true, OpCode::Binary, b"next");
    let mut clients = Vec::new();
    let before = rss_bytes(&server);
    for _ in 0..300 {
        let mut raw = server.open();
        // One byte of the header first, so the rest arrives on top of kept input...
        raw.send(&frame[..1]);
        thread::sleep(Duration::from_millis(2));
        // ...then the rest of the frame and the first byte of the next header.
        let mut rest = frame[1..].to_vec();
        rest.push(next[0]);
        raw.send(&rest);
        raw.expect_message(op::BINARY, &payload);
        clients.push(raw);
    }
    let grown = rss_bytes(&server).saturating_sub(before);
    // 300 kept 64 KiB buffers would be ~19 MiB; a byte each is nothing.
    assert!(
        grown < 4 << 20,
        "300 idle connections grew RSS by {grown} bytes"
    );
    // The kept byte is still the start of the next frame.
    for raw in &mut clients {
        raw.send(&next[1..]);
        raw.expect_frame(true, op::BINARY, b"next");
    }
}
