//! The ramp cap ([`InFlightCap`]): how many connection attempts one process may have in
//! flight at once (connect start to verification), steered by handshake latency.
//!
//! It is steered the way TCP steers its congestion window by loss (additive increase,
//! multiplicative decrease): with both CPUs saturated, more attempts in flight only
//! queue longer, so when handshakes get slow a process lets fewer start, and when they
//! are fast again it lets more. A saturated ramp then runs at the rate the host
//! sustains with handshakes well inside their timeout, instead of queueing into it.

use std::time::Duration;

/// A control interval is steered down when more than one handshake in this many took
/// longer than the target: about the 90th percentile kept under it, which leaves the
/// 99th within about twice the target.
const SLOW_ONE_IN: u32 = 10;
/// An interval grows the cap while at most one handshake in this many was slow
/// (none, at a few dozen a tick): one slow outlier must not freeze it at a cut value.
const GROW_ONE_IN: u32 = 100;
/// The cut when handshakes are slow: a quarter of the cap.
const DECREASE: f64 = 0.75;
/// The growth per calm interval, as a share of the ceiling (at least one): from the
/// floor back to the ceiling in about 28 intervals (2.8 s at the driver's 100 ms tick),
/// whatever the ceiling, where one at a time took a single process 87 s.
const INCREASE_DIVISOR: f64 = 32.0;
/// The cap never goes below this share of its ceiling: a host busy with other work
/// makes handshakes slow however few are in flight, and the ramp must still move.
const FLOOR_DIVISOR: f64 = 8.0;

/// Attempts one process may keep in flight (connect start to verification): between an
/// eighth of its ceiling (its share of `--max-pending`) and the ceiling, steered by how
/// long its handshakes take against a target (`--ramp-target`; zero: fixed at the
/// ceiling).
#[derive(Debug, Clone, PartialEq)]
pub struct InFlightCap {
    current: f64,
    floor: f64,
    ceiling: f64,
    target_us: u64,
    /// Handshakes in the current control interval, and how many were over the target.
    seen: u32,
    slow: u32,
}

impl InFlightCap {
    /// A cap that starts at `ceiling` and steers under `target` (zero: stays there).
    pub fn new(ceiling: u32, target: Duration) -> InFlightCap {
        let ceiling = f64::from(ceiling.max(1));
        InFlightCap {
            current: ceiling,
            floor: (ceiling / FLOOR_DIVISOR).ceil(),
            ceiling,
            target_us: target.as_micros() as u64,
            seen: 0,
            slow: 0,
        }
    }

    /// Attempts that may be in flight now.
    pub fn limit(&self) -> u64 {
        self.current as u64
    }

    /// A handshake completed after `latency_us`.
    pub fn observe(&mut self, latency_us: u64) {
        if self.target_us == 0 {
            return;
        }
        self.seen += 1;
        if latency_us > self.target_us {
            self.slow += 1;
        }
    }

    /// An attempt failed before its handshake completed (refused, reset, timed out):
    /// the slowest kind of handshake, the one the cap exists to prevent.
    pub fn observe_failure(&mut self) {
        self.observe(u64::MAX);
    }

    /// Ends a control interval: cuts the cap if more than one handshake in ten was
    /// slow, grows it if at most one in a hundred was. An interval without handshakes
    /// changes nothing.
    pub fn adjust(&mut self) {
        if self.target_us == 0 || self.seen == 0 {
            return;
        }
        if self.slow * SLOW_ONE_IN > self.seen {
            self.current = (self.current * DECREASE).max(self.floor);
        } else if self.slow * GROW_ONE_IN <= self.seen {
            let step = (self.ceiling / INCREASE_DIVISOR).ceil();
            self.current = (self.current + step).min(self.ceiling);
        }
        self.seen = 0;
        self.slow = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_backs_off_when_handshakes_are_slow_and_recovers() {
        let mut w = InFlightCap::new(40, Duration::from_millis(50));
        assert_eq!(w.limit(), 40);
        // One slow in ten is tolerated, two are not.
        for latency in [10_000; 9].into_iter().chain([90_000]) {
            w.observe(latency);
        }
        w.adjust();
        assert_eq!(w.limit(), 40);
        for latency in [10_000; 8].into_iter().chain([90_000, 90_000]) {
            w.observe(latency);
        }
        w.adjust();
        assert_eq!(w.limit(), 30);
        // Never below an eighth of the ceiling, however slow.
        for _ in 0..20 {
            w.observe(1_000_000);
            w.adjust();
        }
        assert_eq!(w.limit(), 5);
        // Fast again: a thirty-second of the ceiling more per interval (here 2), up to
        // the ceiling; quiet intervals wait.
        w.adjust();
        assert_eq!(w.limit(), 5);
        w.observe(1_000);
        w.adjust();
        assert_eq!(w.limit(), 7);
        for _ in 0..20 {
            w.observe(1_000);
            w.adjust();
        }
        assert_eq!(w.limit(), 40);
    }

    #[test]
    fn one_slow_outlier_in_a_hundred_still_lets_the_cap_grow() {
        let mut w = InFlightCap::new(1000, Duration::from_millis(50));
        for _ in 0..20 {
            w.observe_failure();
            w.adjust();
        }
        assert_eq!(w.limit(), 125, "failures cut it to the floor");
        for _ in 0..28 {
            for latency in [1_000; 99].into_iter().chain([90_000]) {
                w.observe(latency);
            }
            w.adjust();
        }
        assert_eq!(w.limit(), 1000, "back at the ceiling in 28 intervals");
        // Between one in a hundred and one in ten, it holds.
        for latency in [1_000; 95].into_iter().chain([90_000; 5]) {
            w.observe(latency);
        }
        w.adjust();
        assert_eq!(w.limit(), 1000);
    }

    #[test]
    fn a_zero_target_keeps_the_cap_fixed() {
        let mut w = InFlightCap::new(7, Duration::ZERO);
        for _ in 0..10 {
            w.observe(5_000_000);
            w.adjust();
        }
        assert_eq!(w.limit(), 7);
        assert_eq!(InFlightCap::new(0, Duration::from_millis(1)).limit(), 1);
    }
}
