//! The cost of the timer sweep (the goal: timer work well under 1% of a core with
//! 1,000,000 idle connections). The reactor visits every connection once a second and
//! asks it whether a deadline is due; arming, moving or cancelling a deadline is one
//! store of a `u32` (`since`) and costs nothing here. Each iteration is one whole sweep
//! over a fleet of real, idle, open `Connection`s (over in-memory streams, one pointer
//! each where a socket is one descriptor, so each is the size of a server connection).
//! At one sweep a second, the share of a core is the sweep time divided by 1 s.
//!
//! `cargo bench --bench timers`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsreactor::server::Config;
use wsreactor::testkit::memory::Fleet;

const REQUEST: &[u8] = b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_sweep");
    group.sample_size(20);
    for n in [100_000, 1_000_000] {
        let config = Config::from_args(&[]);
        let mut fleet = Fleet::open(config, n, REQUEST).expect("open the fleet");
        group.throughput(Throughput::Elements(n as u64));
        // Second 1 of the defaults (10 s handshake, 30 s ping, 60 s idle): nothing is
        // due, as in nearly every sweep of a server with idle clients.
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| assert_eq!(black_box(fleet.sweep(1)), 0))
        });
    }
    group.finish();
}

criterion_group!(benches, sweep);
criterion_main!(benches);
