//! The TLS record layer alone (`wsreactor::tls`, rustls' unbuffered API, ring): what a
//! 64 KiB echo costs the server in records, with no socket and no WebSocket, so that
//! the TLS echo's CPU can be set against plain echo plus this (docs/benchmarks.md).
//! Per iteration: open 64 KiB of the client's records, seal 64 KiB back.
//! Run: cargo bench --features testkit --bench tls_records

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use wsreactor::tls::Sealed;

fn records(c: &mut Criterion) {
    const SIZE: usize = 64 * 1024;
    let (mut server, mut client) = wsreactor::testkit::tls::connected_pair();
    let payload = vec![0x5a; SIZE];
    let (mut back, mut plain) = (Sealed::default(), vec![0; SIZE + 1024]);
    let mut group = c.benchmark_group("tls_records");
    // Both directions: the bytes decrypted and the bytes encrypted.
    group.throughput(Throughput::Bytes(2 * SIZE as u64));
    group.bench_function("open_and_seal_64KiB", |b| {
        b.iter_batched(
            || {
                let mut sealed = Sealed::default();
                assert!(client.seal(&mut [], &payload, &mut sealed).unwrap());
                sealed.bytes().to_vec()
            },
            |mut sealed| {
                let opened = server.open(&mut sealed, &mut plain, &mut back).unwrap();
                assert_eq!(opened.plain, SIZE);
                assert!(server.seal(&mut [], &plain[..SIZE], &mut back).unwrap());
                back.clear();
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, records);
criterion_main!(benches);
