//! How a run is divided among processes: how many (`--procs N|auto`), and each worker's
//! share of the connections, of the connect rate and of `--max-pending`.
//!
//! Pure arithmetic, so the parent and every worker derive the same shares from the same
//! arguments and a worker needs only its slot `K/P` to know its part.

use std::fmt;
use std::str::FromStr;

/// `--procs`: a count, or `auto` to use as few processes as RLIMIT_NOFILE allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procs {
    /// As few as the descriptor limit allows.
    Auto,
    /// This many (at most one per connection).
    Count(u32),
}

impl FromStr for Procs {
    type Err = String;

    fn from_str(s: &str) -> Result<Procs, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Procs::Auto);
        }
        match s.parse::<u32>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(Procs::Count(n)),
            _ => Err(format!(
                "{s:?}: want a process count from 1 to 1024, or auto"
            )),
        }
    }
}

impl fmt::Display for Procs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Procs::Auto => f.write_str("auto"),
            Procs::Count(n) => write!(f, "{n}"),
        }
    }
}

/// How many processes run `connections` under a descriptor limit of `nofile`: `auto` is
/// the run sizing's ([`crate::limits::sizing::load_procs`]); an explicit count is kept
/// but never exceeds N (no worker without connections).
pub fn process_count(procs: Procs, connections: u32, nofile: u64) -> u32 {
    match procs {
        Procs::Auto => crate::limits::sizing::load_procs(connections.into(), nofile),
        Procs::Count(n) => n.clamp(1, connections.max(1)),
    }
}

/// A worker's place among its siblings: `index` of `count`, written `K/P`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSlot {
    /// This worker's number, `0 .. count`.
    pub index: u32,
    /// How many workers the run has.
    pub count: u32,
}

impl FromStr for WorkerSlot {
    type Err = String;

    fn from_str(s: &str) -> Result<WorkerSlot, String> {
        let bad = || format!("{s:?}: want K/P with K < P");
        let (k, p) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (k.parse().map_err(|_| bad())?, p.parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(WorkerSlot { index, count })
    }
}

impl fmt::Display for WorkerSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One process's part of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// The global index of its first connection: its connections are
    /// `first .. first + connections`, which fixes their source addresses.
    pub first: u64,
    /// How many connections this process opens (churn: how many slots it keeps busy).
    pub connections: u32,
    /// Connection attempts per second for this process; `None` is unpaced.
    pub rate: Option<f64>,
    /// The most attempts this process keeps between connect start and verification.
    pub max_pending: u32,
}

/// Splits `total` connections, `rate` and `max_pending` evenly; the first `total % P`
/// workers take one connection more. Every worker may keep at least one attempt pending.
pub fn share(total: u32, rate: Option<f64>, max_pending: u32, slot: WorkerSlot) -> Share {
    let (k, p) = (u64::from(slot.index), u64::from(slot.count));
    let (base, extra) = (u64::from(total) / p, u64::from(total) % p);
    let connections = base + u64::from(k < extra);
    let first = k * base + k.min(extra);
    let pending_base = u64::from(max_pending) / p;
    let pending_extra = u64::from(k < u64::from(max_pending) % p);
    Share {
        first,
        connections: connections as u32,
        rate: rate.map(|r| r / p as f64),
        max_pending: (pending_base + pending_extra).max(1) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_procs_fit_under_the_descriptor_limit() {
        assert_eq!(process_count(Procs::Auto, 5_000, 20_000), 1);
        assert_eq!(process_count(Procs::Auto, 19_900, 20_000), 1);
        assert_eq!(process_count(Procs::Auto, 19_901, 20_000), 2);
        assert_eq!(process_count(Procs::Auto, 1_000_000, 20_000), 51);
        assert_eq!(process_count(Procs::Auto, 10, 50), 10);
        assert_eq!(process_count(Procs::Count(4), 100, 20_000), 4);
        assert_eq!(process_count(Procs::Count(8), 3, 20_000), 3);
        assert_eq!("auto".parse::<Procs>(), Ok(Procs::Auto));
        assert_eq!("3".parse::<Procs>(), Ok(Procs::Count(3)));
        assert!("0".parse::<Procs>().is_err());
        assert!("many".parse::<Procs>().is_err());
    }

    #[test]
    fn shares_cover_every_connection_exactly_once() {
        for (total, p) in [(5_000u32, 2u32), (7, 3), (1, 1), (1_000_000, 51), (10, 10)] {
            let mut next = 0u64;
            let mut rate_sum = 0.0;
            for index in 0..p {
                let s = share(total, Some(1000.0), 1000, WorkerSlot { index, count: p });
                assert_eq!(s.first, next, "{total}/{p} worker {index}");
                next += u64::from(s.connections);
                rate_sum += s.rate.unwrap();
                assert!(s.max_pending >= 1);
            }
            assert_eq!(next, u64::from(total));
            assert!((rate_sum - 1000.0).abs() < 1e-6);
        }
        let s = share(7, None, 2, WorkerSlot { index: 2, count: 3 });
        assert_eq!(
            (s.first, s.connections, s.rate, s.max_pending),
            (5, 2, None, 1)
        );
    }

    #[test]
    fn worker_slots_parse() {
        assert_eq!(
            "1/4".parse::<WorkerSlot>(),
            Ok(WorkerSlot { index: 1, count: 4 })
        );
        assert_eq!(WorkerSlot { index: 1, count: 4 }.to_string(), "1/4");
        for bad in ["4/4", "1", "a/b", "-1/3"] {
            assert!(bad.parse::<WorkerSlot>().is_err(), "{bad}");
        }
    }
}
