//! Which addresses the load generator may use: the loopback-only target rule, and the
//! `--sources A-B` range of IPv4 source addresses that connections are spread over.
//!
//! Why many sources: a TCP connection is the 4-tuple (source IP, source port, server IP,
//! server port), and the kernel draws the source port from the ephemeral range per
//! (source IP → server IP:port). One source address therefore reaches at most ~28k
//! connections to one server port; 39 loopback sources reach over a million.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::limits::sizing::{self, MAX_SOURCES};

/// Refuses any target outside 127.0.0.0/8 and ::1: load tests on this machine must never
/// leave it.
pub fn check_target(addr: SocketAddr) -> Result<(), String> {
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if !loopback {
        return Err(format!(
            "--addr {addr} is not a loopback address: load tests may only target \
             127.0.0.0/8 or [::1]"
        ));
    }
    if addr.port() == 0 {
        return Err(format!("--addr {addr}: port 0 is not a server port"));
    }
    Ok(())
}

/// The target of a run from other hosts (`--hosts`): any address those hosts reach
/// (this machine sends the load nothing itself), but a real one, with a port.
pub fn check_remote_target(addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(format!(
            "--addr {addr}: want the server's address and port as the load hosts reach it"
        ));
    }
    Ok(())
}

/// An inclusive range of IPv4 loopback addresses, e.g. `127.0.0.2-127.0.0.40`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRange {
    first: Ipv4Addr,
    last: Ipv4Addr,
}

impl SourceRange {
    /// How many addresses the range holds (at least 1).
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// The address with this index (`index < len()`).
    pub fn get(&self, index: u32) -> Ipv4Addr {
        debug_assert!(index < self.len());
        Ipv4Addr::from(u32::from(self.first) + index)
    }

    /// The source index of the connection with this global index: round-robin, so any
    /// prefix of the connections is spread evenly.
    pub fn index_for(&self, connection: u64) -> u16 {
        (connection % u64::from(self.len())) as u16
    }

    /// How many of `connections` the busiest source carries (round-robin: the ceiling).
    pub fn max_per_source(&self, connections: u64) -> u64 {
        connections.div_ceil(u64::from(self.len()))
    }
}

impl FromStr for SourceRange {
    type Err = String;

    /// Parses `A-B` (inclusive) or a single address `A`, in 127.0.0.0/8.
    fn from_str(s: &str) -> Result<SourceRange, String> {
        let range = SourceRange::parse_any(s)?;
        if !range.first.is_loopback() || !range.last.is_loopback() {
            return Err(format!(
                "source range {s}: sources must be in 127.0.0.0/8 (only loopback is local \
                 to every machine and allowed here)"
            ));
        }
        Ok(range)
    }
}

impl SourceRange {
    /// Parses `A-B` (inclusive) or `A`, any IPv4 addresses: a load host's own
    /// (`--hosts NAME=A-B`), which only that host can check.
    pub fn parse_any(s: &str) -> Result<SourceRange, String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let parse = |t: &str| {
            t.trim().parse::<Ipv4Addr>().map_err(|_| {
                format!("{t:?} is not an IPv4 address (want A-B, e.g. 127.0.0.2-127.0.0.40)")
            })
        };
        let (first, last) = (parse(a)?, parse(b)?);
        if first > last {
            return Err(format!("source range {s}: {first} comes after {last}"));
        }
        let range = SourceRange { first, last };
        if range.len() > MAX_SOURCES {
            return Err(format!(
                "source range {s}: {} addresses, at most {MAX_SOURCES}",
                range.len()
            ));
        }
        Ok(range)
    }
}

impl fmt::Display for SourceRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// The sources used against an IPv4 loopback target unless `--sources` says otherwise:
/// 127.0.0.2-127.0.0.40, extended so that no source carries more than a quarter of the
/// ephemeral range (`ports`). The run sizing's ([`sizing::sources`], which says why).
pub fn default_sources(connections: u32, ports: u64) -> SourceRange {
    let (first, last) = sizing::sources(connections.into(), ports);
    SourceRange { first, last }
}

/// The sources a run of `connections` uses against `target`: the given range, or
/// [`default_sources`] for an IPv4 target; none (the kernel picks `::1`) for IPv6.
pub fn sources_for(
    target: SocketAddr,
    given: Option<SourceRange>,
    connections: u32,
    ports: u64,
) -> Result<Option<SourceRange>, String> {
    match (target, given) {
        (SocketAddr::V4(_), Some(given)) => Ok(Some(given)),
        (SocketAddr::V4(_), None) => Ok(Some(default_sources(connections, ports))),
        (SocketAddr::V6(_), None) => Ok(None),
        (SocketAddr::V6(_), Some(_)) => Err(format!(
            "--sources are IPv4 addresses and cannot reach the IPv6 target {target}; \
             use --addr 127.0.0.1:PORT"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a run gets unless it is large: 127.0.0.2-127.0.0.40.
    const DEFAULT_SOURCES: SourceRange = SourceRange {
        first: Ipv4Addr::new(127, 0, 0, 2),
        last: Ipv4Addr::new(127, 0, 0, 40),
    };

    #[test]
    fn only_loopback_targets_are_allowed() {
        for ok in [
            "127.0.0.1:9001",
            "127.255.0.3:1",
            "[::1]:9001",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(check_target(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1:9001",
            "0.0.0.0:9001",
            "192.168.1.1:80",
            "8.8.8.8:53",
            "[::]:9001",
            "[2001:db8::1]:80",
            "[::ffff:10.0.0.1]:80",
            "127.0.0.1:0",
        ] {
            let err = check_target(bad.parse().unwrap()).unwrap_err();
            assert!(err.contains("--addr"), "{bad}: {err}");
        }
    }

    #[test]
    fn source_ranges_parse_inclusively() {
        let r: SourceRange = "127.0.0.2-127.0.0.40".parse().unwrap();
        assert_eq!(r, DEFAULT_SOURCES);
        assert_eq!(r.len(), 39);
        assert_eq!(r.get(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(r.get(38), Ipv4Addr::new(127, 0, 0, 40));
        assert_eq!(r.to_string(), "127.0.0.2-127.0.0.40");
        let one: SourceRange = "127.0.0.9".parse().unwrap();
        assert_eq!((one.len(), one.to_string()), (1, "127.0.0.9".to_owned()));
        let wide: SourceRange = "127.0.0.250-127.0.1.5".parse().unwrap();
        assert_eq!(wide.len(), 12);
        assert_eq!(wide.get(6), Ipv4Addr::new(127, 0, 1, 0));
    }

    #[test]
    fn bad_source_ranges_are_refused() {
        for bad in [
            "127.0.0.40-127.0.0.2",
            "10.0.0.1-10.0.0.5",
            "127.0.0.1-128.0.0.1",
            "127.0.0.1-",
            "abc",
            "127.0.0.0-127.1.0.0",
            "::1",
        ] {
            assert!(bad.parse::<SourceRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn round_robin_spreads_evenly() {
        let r = DEFAULT_SOURCES;
        let mut per = vec![0u64; r.len() as usize];
        for i in 0..1_000_000u64 {
            per[r.index_for(i) as usize] += 1;
        }
        let max = *per.iter().max().unwrap();
        let min = *per.iter().min().unwrap();
        assert!(max - min <= 1);
        assert_eq!(max, r.max_per_source(1_000_000));
        // 39 sources × 28,232 ephemeral ports are enough for a million connections.
        assert!(r.max_per_source(1_000_000) <= 28_232);
    }

    #[test]
    fn ipv6_targets_take_no_ipv4_sources() {
        let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let one: SourceRange = "127.0.0.9".parse().unwrap();
        assert_eq!(sources_for(v4, None, 10, 28_232), Ok(Some(DEFAULT_SOURCES)));
        assert_eq!(sources_for(v4, Some(one), 10, 28_232), Ok(Some(one)));
        assert_eq!(sources_for(v6, None, 10, 28_232), Ok(None));
        assert!(sources_for(v6, Some(DEFAULT_SOURCES), 10, 28_232).is_err());
    }

    #[test]
    fn default_sources_widen_to_keep_each_at_most_a_quarter_full() {
        assert_eq!(default_sources(5_000, 28_232), DEFAULT_SOURCES);
        assert_eq!(default_sources(39 * 7_058, 28_232), DEFAULT_SOURCES);
        let million = default_sources(1_000_000, 28_232);
        assert_eq!(million.to_string(), "127.0.0.2-127.0.0.143");
        assert!(million.max_per_source(1_000_000) <= 7_058);
        // Tiny port ranges still give a valid range within 127.0.0.0/8.
        let tiny = default_sources(10_000_000, 2);
        assert_eq!(tiny.len(), MAX_SOURCES);
        assert!(tiny.get(tiny.len() - 1).is_loopback());
    }

    #[test]
    fn default_sources_are_what_limits_reports() {
        for connections in [1, 70_000, 100_000, 1_000_000] {
            let plan = sizing::plan(connections.into(), 20_000, 28_232);
            let range = default_sources(connections, 28_232);
            assert_eq!(range.to_string(), plan.sources);
            assert_eq!(range.len(), plan.source_count);
            assert_eq!(plan.sources.parse(), Ok(range));
        }
    }
}
