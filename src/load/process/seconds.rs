//! Each wall-clock second of this load process, for `--timeline`: [`Recorder`] buckets
//! the run by Unix second (counter deltas, the gauges at the second's end, the
//! process's CPU time, that second's latency histograms) and closes each second into a
//! [`Second`] for the parent, quiet seconds too, so the parent can tell a quiet second
//! from a late one.

use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::load::wire::{encode_histogram, new_histogram, Counters, Second};

/// The time now in milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// This process's CPU time (user + system) so far, µs.
fn cpu_us() -> u64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct we own and pass by
    // pointer; RUSAGE_SELF needs nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0;
        }
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// The counts a second is the difference of.
#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    established: u64,
    verified: u64,
    echoes: u64,
    failed: u64,
    closed: u64,
    cpu_us: u64,
}

impl Snapshot {
    fn of(c: &Counters) -> Snapshot {
        Snapshot {
            established: c.established,
            verified: c.verified,
            echoes: c.echoes,
            failed: c.failed(),
            closed: c.closed_clean + c.close_timeout + c.close_unclean,
            cpu_us: cpu_us(),
        }
    }
}

/// One process's current second: what it started from and the latencies within it.
#[derive(Debug)]
pub struct Recorder {
    second: u64,
    start: Snapshot,
    /// The handshake latencies of the second under way.
    pub handshake_us: Histogram<u64>,
    /// The echo round trips of the second under way.
    pub echo_rtt_us: Histogram<u64>,
}

impl Recorder {
    /// Starts with the second of `now_unix_ms`, counting from `counters`.
    pub fn new(now_unix_ms: u64, counters: &Counters) -> Recorder {
        Recorder {
            second: now_unix_ms / 1000,
            start: Snapshot::of(counters),
            handshake_us: new_histogram(),
            echo_rtt_us: new_histogram(),
        }
    }

    /// Closes the seconds that ended before `now_unix_ms`, oldest first: the current
    /// one with what it saw, any the loop slept through as quiet seconds with the same
    /// gauges. Stops early when `emit` returns `false` (nobody listens).
    pub fn roll(
        &mut self,
        now_unix_ms: u64,
        counters: &Counters,
        emit: &mut dyn FnMut(Second) -> bool,
    ) {
        let now = now_unix_ms / 1000;
        while self.second < now {
            let second = self.close_second(counters);
            self.second += 1;
            if !emit(second) {
                self.second = now;
            }
        }
    }

    /// The second under way, closed early: the run has ended.
    pub fn finish(&mut self, counters: &Counters) -> Second {
        let second = self.close_second(counters);
        self.second += 1;
        second
    }

    fn close_second(&mut self, c: &Counters) -> Second {
        let (was, now) = (self.start, Snapshot::of(c));
        self.start = now;
        let take = |h: &mut Histogram<u64>| {
            if h.is_empty() {
                return String::new();
            }
            let s = encode_histogram(h);
            h.reset();
            s
        };
        Second {
            t: self.second,
            open: c.open,
            pending: c.pending,
            handshakes: now.established - was.established,
            verified: now.verified - was.verified,
            echoes: now.echoes - was.echoes,
            failed: now.failed - was.failed,
            closed: now.closed - was.closed,
            cpu_us: now.cpu_us.saturating_sub(was.cpu_us),
            handshake_us: take(&mut self.handshake_us),
            echo_rtt_us: take(&mut self.echo_rtt_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::wire::{decode_histogram, Failure};

    fn counters(established: u64, open: u64, echoes: u64) -> Counters {
        Counters {
            attempted: established,
            established,
            verified: established,
            open,
            echoes,
            ..Counters::default()
        }
    }

    #[test]
    fn a_recorder_reports_each_second_once_quiet_ones_too() {
        let mut c = counters(0, 0, 0);
        let mut rec = Recorder::new(10_500, &c);
        let mut seconds = Vec::new();
        rec.roll(10_900, &c, &mut |s| {
            seconds.push(s);
            true
        });
        assert!(seconds.is_empty(), "second 10 is still under way");
        c = counters(5, 5, 7);
        c.fail(Failure::ConnectRefused);
        rec.handshake_us.record(1_000).unwrap();
        rec.echo_rtt_us.record(2_000).unwrap();
        // The loop slept through seconds 11 and 12.
        rec.roll(13_100, &c, &mut |s| {
            seconds.push(s);
            true
        });
        let ts: Vec<u64> = seconds.iter().map(|s| s.t).collect();
        assert_eq!(ts, [10, 11, 12]);
        let s = &seconds[0];
        assert_eq!(
            (s.open, s.handshakes, s.verified, s.echoes, s.failed),
            (5, 5, 5, 7, 1)
        );
        assert_eq!(decode_histogram(&s.handshake_us).unwrap().len(), 1);
        for quiet in &seconds[1..] {
            assert_eq!((quiet.open, quiet.handshakes, quiet.echoes), (5, 0, 0));
            assert!(quiet.handshake_us.is_empty() && quiet.echo_rtt_us.is_empty());
        }
        c.open = 0;
        c.closed_clean = 5;
        let last = rec.finish(&c);
        assert_eq!((last.t, last.open, last.closed), (13, 0, 5));
    }
}
