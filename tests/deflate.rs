//! permessage-deflate (RFC 7692) against the real binary, over raw TCP, with an
//! independent deflate (flate2, used here as a client would): which offers `serve
//! --deflate` accepts and how it answers, compressed echoes, the RSV1 rules, messages
//! that do not inflate, and a decompression bomb that must end in 1009 at the limit with
//! the server's memory growing by no more than the limit.

mod common;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use common::{close_payload, op, raw_frame, upgrade_request, Raw, Server, MASK};
use wsreactor::protocol::frame::OpCode;

const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Compresses one message as a client with no context takeover does (§7.2.1): a raw
/// deflate stream, sync-flushed, without its last four bytes.
fn compress(message: &[u8]) -> Vec<u8> {
    let mut z = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(message.len() / 2 + 64);
    let mut pos = 0;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity());
        }
        let before = z.total_in();
        z.compress_vec(&message[pos..], &mut out, FlushCompress::Sync)
            .unwrap();
        pos += (z.total_in() - before) as usize;
        if pos == message.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
    out.truncate(out.len() - 4);
    out
}

/// Inflates one message of the server's with an inflater of `window_bits` (§7.2.2).
fn inflate(compressed: &[u8], window_bits: u8) -> Vec<u8> {
    let mut z = Decompress::new_with_window_bits(false, window_bits);
    let input = [compressed, &[0, 0, 0xFF, 0xFF]].concat();
    let mut out = Vec::with_capacity(compressed.len() * 4 + 1024);
    loop {
        let before = z.total_in() as usize;
        z.decompress_vec(&input[before..], &mut out, FlushDecompress::Sync)
            .unwrap_or_else(|e| panic!("the server's message does not inflate: {e}"));
        if z.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

/// A masked client frame whose first byte (FIN, RSV, opcode) is given.
fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(first_byte, Some(MASK), payload)
}

/// A connection to `path` that offered `offer`; returns it and the server's answer.
fn open_offering(server: &Server, path: &str, offer: &str) -> (Raw, Option<String>) {
    let mut raw = server.connect();
    raw.send(&upgrade_request(
        path,
        &format!("Sec-WebSocket-Extensions: {offer}\r\n"),
    ));
    let response = raw.read_response();
    response.assert_switching();
    let agreed = response
        .header("sec-websocket-extensions")
        .map(str::to_owned);
    (raw, agreed)
}

/// A connection to `/echo` that agreed to permessage-deflate as browsers offer it.
fn open_deflate(server: &Server) -> Raw {
    let (raw, agreed) = open_offering(
        server,
        "/echo",
        "permessage-deflate; client_max_window_bits",
    );
    assert_eq!(agreed.as_deref(), Some(AGREED));
    raw
}

#[test]
fn offers_are_accepted_declined_and_answered_per_rfc_7692() {
    let server = Server::with_args(&["--deflate"]);
    let cases = [
        (
            "permessage-deflate; client_max_window_bits",
            Some(AGREED.to_owned()),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            Some(format!("{AGREED}; server_max_window_bits=10")),
        ),
        // Declined offers are skipped; the first acceptable one wins.
        (
            "permessage-deflate; mystery, permessage-deflate; server_max_window_bits=12",
            Some(format!("{AGREED}; server_max_window_bits=12")),
        ),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; client_no_context_takeover=yes", None),
        ("x-webkit-deflate-frame", None),
    ];
    for (offer, expected) in cases {
        let (mut raw, agreed) = open_offering(&server, "/echo", offer);
        assert_eq!(agreed, expected, "{offer}");
        // Declined or not, the connection is open and echoes.
        raw.send_frame(true, OpCode::Text, b"still open");
        let (rsv1, echo) = raw.read_deflate_frame();
        assert_eq!((rsv1, echo.payload.as_slice()), (false, &b"still open"[..]));
    }
    // Without --deflate every offer is declined.
    let plain = Server::start();
    let (_, agreed) = open_offering(&plain, "/echo", "permessage-deflate");
    assert_eq!(agreed, None);
}

#[test]
fn compressed_messages_echo_back_compressed() {
    let server = Server::with_args(&["--deflate"]);
    let mut ws = open_deflate(&server);
    // RFC 7692 §7.2.3.1: "Hello", compressed. Without a smaller window asked of the
    // server, the echo is the very same bytes (it was compressed without context).
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    ws.send(&frame(0xC1, &hello));
    let (rsv1, echo) = ws.read_deflate_frame();
    assert!(rsv1 && echo.fin && echo.opcode == op::TEXT);
    assert_eq!(echo.payload, hello);

    // A compressed message in three frames, RSV1 on the first only (§6): one frame back.
    let text = "κόσμε, compressed in pieces ".repeat(2000);
    let compressed = compress(text.as_bytes());
    let third = compressed.len() / 3;
    ws.send(&frame(0x41, &compressed[..third]));
    ws.send(&frame(0x80 | 0x09, b"between")); // a Ping between fragments
    ws.send(&frame(0x00, &compressed[third..2 * third]));
    ws.send(&frame(0x80, &compressed[2 * third..]));
    let (_, pong) = ws.read_deflate_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (op::PONG, &b"between"[..])
    );
    let (rsv1, echo) = ws.read_deflate_frame();
    assert!(rsv1 && echo.fin && echo.opcode == op::TEXT);
    assert_eq!(inflate(&echo.payload, 15), text.as_bytes());

    // 1 MiB of random binary (deflate cannot shrink it) and an empty message.
    let random = common::pseudo_random_bytes(1 << 20, 7);
    for message in [&random[..], b""] {
        ws.send(&frame(0xC2, &compress(message)));
        let (rsv1, echo) = ws.read_deflate_frame();
        assert!(rsv1 && echo.opcode == op::BINARY);
        assert_eq!(inflate(&echo.payload, 15), message);
    }

    // RSV1 is per message: an uncompressed one on the same connection echoes as it is.
    ws.send(&frame(0x81, b"plain"));
    let (rsv1, echo) = ws.read_deflate_frame();
    assert_eq!((rsv1, echo.payload.as_slice()), (false, &b"plain"[..]));
    ws.send(&frame(0x88, &close_payload(1000, "")));
    ws.expect_close(1000);
    ws.expect_eof();
}

#[test]
fn a_smaller_server_window_is_honoured() {
    let server = Server::with_args(&["--deflate"]);
    let text = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(3000);
    for bits in [8u8, 9, 12, 15] {
        let offer = format!("permessage-deflate; server_max_window_bits={bits}");
        let (mut ws, agreed) = open_offering(&server, "/echo", &offer);
        assert_eq!(
            agreed,
            Some(format!("{AGREED}; server_max_window_bits={bits}"))
        );
        ws.send(&frame(0xC1, &compress(text.as_bytes())));
        let (rsv1, echo) = ws.read_deflate_frame();
        assert!(rsv1);
        // An inflater with only the window it asked for reads the echo (zlib's
        // smallest raw window is 9 bits, which reads the stored blocks sent for 8).
        assert_eq!(
            inflate(&echo.payload, bits.max(9)),
            text.as_bytes(),
            "{bits} bits"
        );
    }
}

#[test]
fn rsv1_only_on_a_data_messages_first_frame_and_only_when_negotiated() {
    let server = Server::with_args(&["--deflate"]);
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let violations: [Vec<u8>; 4] = [
        // RFC 7692 §6.1: control frames are never compressed.
        frame(0xC9, b"ping"),
        frame(0xC8, &close_payload(1000, "")),
        // §6: RSV1 on a continuation frame.
        [frame(0x41, &hello[..3]), frame(0xC0, &hello[3..])].concat(),
        // RSV2 stays reserved.
        frame(0xA1, b"x"),
    ];
    for stream in violations {
        let mut ws = open_deflate(&server);
        ws.send(&stream);
        ws.expect_close(1002);
        ws.expect_eof();
    }
    // Without an agreement, RSV1 is a reserved bit (RFC 6455 §5.2).
    let mut ws = server.open();
    ws.send(&frame(0xC1, &hello));
    ws.expect_close(1002);
    ws.expect_eof();
}

#[test]
fn a_message_that_does_not_inflate_gets_1007_for_text_and_1002_for_binary() {
    let server = Server::with_args(&["--deflate"]);
    // Block type 3 is reserved (RFC 1951 §3.2.3).
    for (first_byte, code) in [(0xC1, 1007), (0xC2, 1002)] {
        let mut ws = open_deflate(&server);
        ws.send(&frame(first_byte, &[0xff, 0xff, 0xff, 0xff]));
        ws.expect_close(code);
        ws.expect_eof();
    }
    // Deflate data that inflates to text that is not UTF-8: 1007 (§8.1), nothing echoed.
    let mut ws = open_deflate(&server);
    ws.send(&frame(0xC1, &compress(b"caf\xe9 au lait")));
    ws.expect_close(1007);
    ws.expect_eof();
    let stats = server.stats();
    assert_eq!(stats["protocol_errors_total"], 3, "{stats}");
}

/// The server's resident memory, from /stats.
fn rss(server: &Server) -> u64 {
    server.stats()["rss_bytes"].as_u64().expect("rss_bytes")
}

#[test]
fn a_decompression_bomb_gets_1009_at_the_limit_and_memory_stays_bounded() {
    const LIMIT: u64 = 4 << 20;
    let server = Server::with_args(&["--deflate", "--max-message-size", "4MiB"]);
    // 512 MiB of zeros, compressed to about half a MiB, in one message.
    let mut z = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut bomb = Vec::with_capacity(1 << 20);
    for i in 0..512 {
        let flush = if i == 511 {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let before = z.total_in();
        while z.total_in() - before < zeros.len() as u64 {
            let done = (z.total_in() - before) as usize;
            if bomb.capacity() - bomb.len() < 4096 {
                bomb.reserve(bomb.capacity());
            }
            z.compress_vec(&zeros[done..], &mut bomb, flush).unwrap();
        }
    }
    bomb.truncate(bomb.len() - 4);
    assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
    let before = rss(&server);
    for path in ["/echo", "/chat?room=bomb"] {
        let (mut ws, agreed) = open_offering(&server, path, "permessage-deflate");
        assert_eq!(agreed.as_deref(), Some(AGREED));
        ws.send(&frame(0xC2, &bomb));
        ws.expect_close(1009);
        ws.expect_eof();
    }
    let growth = rss(&server).saturating_sub(before);
    eprintln!("RSS growth after two 512 MiB bombs with a 4 MiB limit: {growth} bytes");
    assert!(growth <= LIMIT, "RSS grew by {growth} bytes");
    let mut server = server;
    server.assert_serves();
}

#[test]
fn a_room_compresses_each_message_once_for_the_members_that_agreed() {
    let server = Server::with_args(&["--deflate"]);
    let room = "/chat?room=deflate";
    let (mut compressing, agreed) = open_offering(&server, room, "permessage-deflate");
    assert_eq!(agreed.as_deref(), Some(AGREED));
    let mut plain = server.open_path(room);
    let text = "a message for the whole room, ".repeat(40);

    // A compressed message goes as it came to the member that agreed, inflated to the other.
    let compressed = compress(text.as_bytes());
    compressing.send(&frame(0xC1, &compressed));
    let (rsv1, got) = compressing.read_deflate_frame();
    assert!(rsv1);
    assert_eq!(got.payload, compressed, "the very bytes that came");
    plain.expect_message(op::TEXT, text.as_bytes());

    // A plain message is compressed once by the server for the member that agreed.
    plain.send_frame(true, OpCode::Text, text.as_bytes());
    plain.expect_message(op::TEXT, text.as_bytes());
    let (rsv1, got) = compressing.read_deflate_frame();
    assert!(rsv1);
    assert_eq!(inflate(&got.payload, 15), text.as_bytes());
    // A short one is not worth compressing.
    plain.send_frame(true, OpCode::Text, b"hi");
    plain.expect_message(op::TEXT, b"hi");
    let (rsv1, got) = compressing.read_deflate_frame();
    assert_eq!((rsv1, got.payload.as_slice()), (false, &b"hi"[..]));
}

/// One side of a session that keeps its context (RFC 7692 §7.1.1): a compressor and a
/// decompressor that live as long as the connection, as a client with context
/// takeover keeps them.
struct Kept {
    deflate: Compress,
    inflate: Decompress,
}

impl Kept {
    /// Compressing with `bits`, inflating with the window the server agreed to use,
    /// `server_bits` (so that anything referring further back fails).
    fn new(bits: u8, server_bits: u8) -> Kept {
        Kept {
            deflate: Compress::new_with_window_bits(Compression::default(), false, bits),
            inflate: Decompress::new_with_window_bits(false, server_bits),
        }
    }

    fn compress(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 64);
        self.deflate
            .compress_vec(message, &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]), "a short message fits");
        out.truncate(out.len() - 4);
        out
    }

    fn inflate(&mut self, compressed: &[u8]) -> Vec<u8> {
        let input = [compressed, &[0, 0, 0xFF, 0xFF]].concat();
        let mut out = Vec::with_capacity(64 * 1024);
        self.inflate
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap_or_else(|e| panic!("the server's message does not inflate: {e}"));
        out
    }
}

#[test]
fn with_a_deflate_window_both_sides_keep_their_context() {
    let mut server = Server::with_args(&["--deflate-window", "9"]);
    let (mut ws, agreed) = open_offering(
        &server,
        "/echo",
        "permessage-deflate; client_max_window_bits",
    );
    assert_eq!(
        agreed.as_deref(),
        Some("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9")
    );
    let mut client = Kept::new(9, 9);
    let (mut sent, mut carried) = (0, 0);
    for i in 0..200 {
        // Each message repeats much of the one before: compressed after the wrong
        // context, it would not inflate as it was sent.
        let message = format!(
            "{{\"seq\":{i},\"text\":\"the quick brown fox {}\"}}",
            i % 13
        )
        .repeat(1 + i % 3);
        let compressed = client.compress(message.as_bytes());
        ws.send(&frame(0xC1, &compressed));
        let (rsv1, echo) = ws.read_deflate_frame();
        assert!(rsv1 && echo.opcode == op::TEXT, "echo {i}");
        // Both contexts hold the same bytes: the echo is the very bytes sent.
        assert_eq!(echo.payload, compressed, "echo {i}");
        assert_eq!(
            client.inflate(&echo.payload),
            message.as_bytes(),
            "echo {i}"
        );
        sent += message.len();
        carried += echo.payload.len();
    }
    assert!(carried * 4 < sent, "{carried} bytes carried {sent}");

    // A client window larger than the server's: echoes are compressed again, after the
    // server's own context.
    let mut wider = Server::with_args(&["--deflate-window", "12"]);
    let (mut ws, agreed) = open_offering(
        &wider,
        "/echo",
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
    );
    assert_eq!(
        agreed.as_deref(),
        Some("permessage-deflate; server_max_window_bits=9; client_max_window_bits=10")
    );
    let mut client = Kept::new(10, 9);
    // Two blocks of 300 random letters in turn: each message repeats the one 600 bytes
    // back, which a 10-bit window reaches and a 9-bit one does not.
    let blocks: Vec<Vec<u8>> = (0..2)
        .map(|seed| {
            common::pseudo_random_bytes(300, seed)
                .iter()
                .map(|b| b'a' + b % 26)
                .collect()
        })
        .collect();
    for i in 0..100 {
        let message = if i < 20 {
            String::from_utf8(blocks[i % 2].clone()).unwrap()
        } else {
            format!("recompressed {} after the context ", i % 11).repeat(1 + i % 4)
        };
        let compressed = client.compress(message.as_bytes());
        ws.send(&frame(0xC1, &compressed));
        let (_, echo) = ws.read_deflate_frame();
        if (2..20).contains(&i) {
            // The client referred 600 bytes back, past the server's window: those bytes
            // cannot go back as they came (zlib-rs inflates them anyway, C zlib not).
            assert!(compressed.len() < 100, "message {i} referred back");
            assert_ne!(echo.payload, compressed, "echo {i} went back as it came");
        }
        assert_eq!(
            client.inflate(&echo.payload),
            message.as_bytes(),
            "echo {i}"
        );
    }

    wider.assert_running();

    // Without client_max_window_bits offered, the client is asked to keep no context.
    let (mut ws, agreed) = open_offering(&server, "/echo", "permessage-deflate");
    assert_eq!(
        agreed.as_deref(),
        Some("permessage-deflate; client_no_context_takeover; server_max_window_bits=9")
    );
    let mut client = Kept::new(15, 9);
    for i in 0..50 {
        let message = "context kept by the server only ".repeat(1 + i % 5);
        ws.send(&frame(0xC1, &compress(message.as_bytes())));
        let (_, echo) = ws.read_deflate_frame();
        assert_eq!(
            client.inflate(&echo.payload),
            message.as_bytes(),
            "echo {i}"
        );
    }
    ws.send(&frame(0x88, &close_payload(1000, "")));
    ws.expect_close(1000);
    server.assert_running();
}
