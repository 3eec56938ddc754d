//! Run sizing: for a run of N connections on this host, how many server worker
//! processes, how many load-generator processes, and which client source addresses.
//!
//! One job, one place: `wsreactor limits --connections N` reports it, `load` takes its
//! defaults (`--procs auto`, `--sources`) from it, and `scripts/scale.sh` reads it
//! through `limits --json`, so the three never disagree. Pure arithmetic over limits the
//! parent module reads (descriptors per process, ephemeral ports per source).

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use super::figures::count;

/// Descriptors each process keeps back from RLIMIT_NOFILE for everything that is not a
/// connection. A process holds about ten such descriptors for its whole life (stdio,
/// epoll, the waker, the listener and its spare for shedding at EMFILE, control pipes)
/// and opens a few more for a moment (/proc reads for /stats, a `--timeline` file, the
/// dynamic loader). 100 covers that several times over and costs 0.5% of a 20,000
/// limit; the 16 used before counted only today's descriptors, and 200 was a guess.
pub const FD_RESERVE: u64 = 100;

/// The share of a source address's ephemeral port range a run may fill: a quarter,
/// which is half of its even ports. Linux gives `connect()` even ports first (odd ones
/// are left to `bind()`), probing them two by two from a randomised offset, and scans
/// every even port before it tries an odd one. So a connect stays cheap while the even
/// ports are far from full, and costs 30 times more once they are (measured here, one
/// source toward one port: 25 µs of CPU per connect up to 14,100, 750-800 µs past
/// 14,116; with the even ports nearly all taken the free ones are scattered, and the
/// probes grow long before that). Half the range, as before, is all of the even ports:
/// a million connections then spent the last tenth of their ramp probing for the last
/// free ones (the handshake rate fell from 20,000/s to 2,000/s). A quarter leaves half
/// of them free: a probe or two per connect.
pub const PORT_FILL_DIVISOR: u64 = 4;

/// Spare capacity asked of the server's workers, in percent: SO_REUSEPORT spreads
/// connections by a hash of the 4-tuple, so some workers get more than their share.
pub const REUSEPORT_HEADROOM_PERCENT: u64 = 15;

/// The first client source address; 127.0.0.1 is left to the server.
pub const FIRST_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Sources used however small the run (127.0.0.2-127.0.0.40, the default `load --help`
/// gives for `--sources`): more sources cost nothing, and a small run then looks like a
/// big one to the kernel.
pub const MIN_SOURCES: u32 = 39;

/// The most source addresses a run may use (the load generator stores a connection's
/// source as a `u16`).
pub const MAX_SOURCES: u32 = 1 << 16;

/// Connections one process can hold under a descriptor limit of `nofile`.
pub fn per_process(nofile: u64) -> u64 {
    nofile.saturating_sub(FD_RESERVE).max(1)
}

/// Load-generator processes for `connections`: as few as the descriptor limit allows
/// (the load splits its connections exactly evenly), never more than connections.
pub fn load_procs(connections: u64, nofile: u64) -> u32 {
    processes(connections, per_process(nofile), connections)
}

/// Server worker processes for `connections`, with [`REUSEPORT_HEADROOM_PERCENT`] spare.
pub fn server_workers(connections: u64, nofile: u64) -> u32 {
    let with_headroom = connections.saturating_mul(100 + REUSEPORT_HEADROOM_PERCENT) / 100;
    processes(with_headroom, per_process(nofile), connections)
}

fn processes(connections: u64, per_process: u64, most: u64) -> u32 {
    let n = connections.div_ceil(per_process).clamp(1, most.max(1));
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The most connections one source address should carry toward one server port, given
/// `ports` ephemeral ports per source (see [`PORT_FILL_DIVISOR`]).
pub fn per_source_limit(ports: u64) -> u64 {
    (ports / PORT_FILL_DIVISOR).max(1)
}

/// The first and last source address for `connections`: from [`FIRST_SOURCE`], at
/// least [`MIN_SOURCES`], and enough that none carries over [`per_source_limit`].
pub fn sources(connections: u64, ports: u64) -> (Ipv4Addr, Ipv4Addr) {
    let needed = connections
        .div_ceil(per_source_limit(ports))
        .clamp(u64::from(MIN_SOURCES), u64::from(MAX_SOURCES));
    let first = u32::from(FIRST_SOURCE);
    (FIRST_SOURCE, Ipv4Addr::from(first + needed as u32 - 1))
}

/// Everything a run of `connections` needs on this host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sizing {
    /// The connections the run is for.
    pub connections: u64,
    /// Descriptors each process keeps back ([`FD_RESERVE`]).
    pub fd_reserve: u64,
    /// Connections one process holds at most: RLIMIT_NOFILE minus the reserve.
    pub per_process: u64,
    /// `serve --workers`.
    pub server_workers: u32,
    /// Spare capacity in `server_workers`, in percent of `connections`.
    pub server_headroom_percent: u64,
    /// `load --procs`.
    pub load_procs: u32,
    /// `load --sources`, e.g. `127.0.0.2-127.0.0.40`.
    pub sources: String,
    /// How many addresses `sources` spans.
    pub source_count: u32,
    /// Ephemeral ports each source has toward the one server address:port.
    pub ports_per_source: u64,
    /// The share of them a run may fill (a quarter: half of the even ports).
    pub port_fill: f64,
    /// Connections the busiest source carries (round-robin: the ceiling).
    pub max_per_source: u64,
    /// Descriptors the run holds on this host: both ends of every connection, and
    /// every process's reserve (the two parents' too).
    pub descriptors_needed: u64,
}

/// Sizes a run of `connections` for processes limited to `nofile` descriptors and
/// sources of `ports` ephemeral ports each.
pub fn plan(connections: u64, nofile: u64, ports: u64) -> Sizing {
    let (first, last) = sources(connections, ports);
    let source_count = u32::from(last) - u32::from(first) + 1;
    let server_workers = server_workers(connections, nofile);
    let load_procs = load_procs(connections, nofile);
    let processes = u64::from(server_workers) + u64::from(load_procs) + 2;
    Sizing {
        connections,
        fd_reserve: FD_RESERVE,
        per_process: per_process(nofile),
        server_workers,
        server_headroom_percent: REUSEPORT_HEADROOM_PERCENT,
        load_procs,
        sources: format!("{first}-{last}"),
        source_count,
        ports_per_source: ports,
        port_fill: 1.0 / PORT_FILL_DIVISOR as f64,
        max_per_source: connections.div_ceil(u64::from(source_count)),
        descriptors_needed: connections
            .saturating_mul(2)
            .saturating_add(processes * FD_RESERVE),
    }
}

impl fmt::Display for Sizing {
    /// The same columns as the rest of `wsreactor limits`: fits 80.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: u64| count(Some(v));
        writeln!(
            f,
            "\nSizing for {} connections (scripts/scale.sh reads it)",
            n(self.connections)
        )?;
        let rows = [
            (
                "descriptor reserve",
                n(self.fd_reserve),
                "per process, beside connections".to_owned(),
            ),
            (
                "per process",
                n(self.per_process),
                "connections: soft limit minus reserve".into(),
            ),
            (
                "server workers",
                n(self.server_workers.into()),
                format!(
                    "{}% spare: SO_REUSEPORT is uneven",
                    self.server_headroom_percent
                ),
            ),
            (
                "load processes",
                n(self.load_procs.into()),
                "each holds its share exactly".into(),
            ),
            (
                "source addresses",
                n(self.source_count.into()),
                self.sources.clone(),
            ),
            (
                "per source",
                n(self.max_per_source),
                format!("of {} ports; at most 1/4", n(self.ports_per_source)),
            ),
            (
                "descriptors needed",
                n(self.descriptors_needed),
                "both ends, and the reserves".into(),
            ),
        ];
        for (name, value, note) in rows {
            writeln!(f, "  {name:<22}{value:>11}  {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine: RLIMIT_NOFILE 20,000 and 32768-60999.
    const NOFILE: u64 = 20_000;
    const PORTS: u64 = 28_232;

    #[test]
    fn the_ci_run_and_the_big_runs_are_sane() {
        let s = plan(70_000, NOFILE, PORTS);
        assert_eq!((s.server_workers, s.load_procs), (5, 4));
        assert_eq!(
            (s.sources.as_str(), s.source_count),
            ("127.0.0.2-127.0.0.40", 39)
        );
        assert_eq!((s.max_per_source, s.per_process), (1_795, 19_900));
        assert_eq!(s.descriptors_needed, 140_000 + 11 * 100);

        let s = plan(100_000, NOFILE, PORTS);
        assert_eq!((s.server_workers, s.load_procs, s.source_count), (6, 6, 39));

        let s = plan(1_000_000, NOFILE, PORTS);
        assert_eq!((s.server_workers, s.load_procs), (58, 51));
        assert_eq!(
            (s.sources.as_str(), s.source_count),
            ("127.0.0.2-127.0.0.143", 142)
        );
        assert!(s.max_per_source <= PORTS / 4, "{}", s.max_per_source);
    }

    #[test]
    fn every_process_fits_under_its_limit() {
        for connections in [1, 19_900, 19_901, 70_000, 100_000, 1_000_000, 10_000_000] {
            let s = plan(connections, NOFILE, PORTS);
            let load = connections.div_ceil(s.load_procs.into());
            assert!(
                load + FD_RESERVE <= NOFILE,
                "{connections}: {load} per load process"
            );
            let server = connections * 115 / 100 / u64::from(s.server_workers);
            assert!(
                server + FD_RESERVE <= NOFILE,
                "{connections}: {server} per worker"
            );
            let sources = u64::from(s.source_count);
            assert!(s.max_per_source * sources >= connections);
            assert!(s.max_per_source <= PORTS / 4 || sources == u64::from(MAX_SOURCES));
        }
    }

    #[test]
    fn process_counts_round_up_and_stay_within_the_connections() {
        assert_eq!(load_procs(19_900, NOFILE), 1);
        assert_eq!(load_procs(19_901, NOFILE), 2);
        assert_eq!(load_procs(10, 50), 10, "a tiny limit: one connection each");
        assert_eq!(server_workers(1, NOFILE), 1);
        assert_eq!(server_workers(17_305, NOFILE), 1);
        assert_eq!(server_workers(17_306, NOFILE), 2, "15% spare");
        assert_eq!(
            server_workers(3, 1),
            3,
            "never more workers than connections"
        );
        assert_eq!(per_process(50), 1);
    }

    #[test]
    fn sources_widen_past_a_quarter_of_a_range_and_stay_in_loopback() {
        let last = |n, ports| sources(n, ports).1;
        assert_eq!(last(5_000, PORTS), Ipv4Addr::new(127, 0, 0, 40));
        assert_eq!(last(39 * 7_058, PORTS), Ipv4Addr::new(127, 0, 0, 40));
        assert_eq!(last(39 * 7_058 + 1, PORTS), Ipv4Addr::new(127, 0, 0, 41));
        let (first, last) = sources(10_000_000, 2);
        assert_eq!(u32::from(last) - u32::from(first) + 1, MAX_SOURCES);
        assert!(last.is_loopback());
    }

    #[test]
    fn the_text_fits_80_columns() {
        let text = plan(1_000_000, NOFILE, PORTS).to_string();
        assert!(text.contains("127.0.0.2-127.0.0.143"), "{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
    }
}
