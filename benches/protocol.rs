//! Throughput of the protocol hot paths: masking, receiving frames, parsing a request
//! head and routing the handshake. `cargo bench --bench protocol`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsreactor::protocol::frame::{apply_mask, FrameHeader, OpCode};
use wsreactor::protocol::handshake::{check_request, Policy};
use wsreactor::protocol::http::{parse_request, Header, MAX_HEADERS};
use wsreactor::protocol::receiver::{Event, Receiver, ReceiverConfig, Role};

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_mask");
    for size in [64usize, 4096, 65536] {
        let mut buf = vec![0x5Au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), [1, 2, 3, 4], 1))
        });
    }
    group.finish();
}

/// A read buffer full of masked client frames of `payload` bytes each.
fn client_stream(opcode: OpCode, payload: usize, total: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..payload).map(|i| b'a' + (i % 26) as u8).collect();
    let mut out = Vec::with_capacity(total + 64);
    while out.len() + payload + 14 <= total {
        let header = FrameHeader {
            fin: true,
            rsv1: false,
            opcode,
            mask: Some([9, 8, 7, 6]),
            payload_len: payload as u64,
        };
        let (h, n) = header.encode();
        out.extend_from_slice(&h[..n]);
        let start = out.len();
        out.extend_from_slice(&body);
        apply_mask(&mut out[start..], [9, 8, 7, 6], 0);
    }
    out
}

fn receiving(c: &mut Criterion) {
    let config = ReceiverConfig {
        role: Role::Server,
        max_message_size: 1 << 24,
        deflate: false,
    };
    let mut group = c.benchmark_group("receive_64KiB_buffer");
    for (name, opcode, payload) in [
        ("binary_32B", OpCode::Binary, 32),
        ("text_32B", OpCode::Text, 32),
        ("text_1KiB", OpCode::Text, 1024),
        ("binary_16KiB", OpCode::Binary, 16384),
    ] {
        let stream = client_stream(opcode, payload, 64 * 1024);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function(name, |b| {
            let mut buf = stream.clone();
            b.iter(|| {
                buf.copy_from_slice(&stream);
                let mut rx = Receiver::default();
                let (mut pos, mut messages) = (0, 0);
                while let Ok((n, event)) = rx.poll(&config, &mut buf[pos..]) {
                    if n == 0 {
                        break;
                    }
                    pos += n;
                    if let Some(Event::Data(chunk)) = event {
                        messages += usize::from(chunk.ends_message());
                    }
                }
                black_box(messages)
            })
        });
    }
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let head = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUser-Agent: bench\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:9001\r\n\r\n";
    c.bench_function("parse_and_check_handshake", |b| {
        b.iter(|| {
            let mut storage = [Header::default(); MAX_HEADERS];
            let (req, _) = parse_request(black_box(head), 0, &mut storage)
                .unwrap()
                .unwrap();
            black_box(check_request(&req, &Policy::default()).unwrap());
        })
    });
}

criterion_group!(benches, masking, receiving, handshake);
criterion_main!(benches);
