//! Connect pacing: how many attempts `--rate` allows by a given time, and when the next
//! one is due ([`Pacer`]). Chat mode paces the sender's messages with it too
//! (`--chat-rate`).
//!
//! The rate is a schedule (attempt n at n / rate), not a token bucket: a process that
//! fell behind (a slow poll turn) catches up, so the achieved rate matches the asked one.

use std::time::Duration;

/// Attempt pacing for one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacer {
    /// Attempts per second; `None` is unpaced (only the in-flight cap limits).
    per_sec: Option<f64>,
}

impl Pacer {
    /// A schedule of `per_sec` attempts per second; `None` (or a rate that is not a
    /// positive number) is unpaced.
    pub fn new(per_sec: Option<f64>) -> Pacer {
        Pacer {
            per_sec: per_sec.filter(|r| r.is_finite() && *r > 0.0),
        }
    }

    /// How many attempts may have started `elapsed` after the start: attempt 0 at once,
    /// attempt n at n / rate.
    pub fn allowed(&self, elapsed: Duration) -> u64 {
        match self.per_sec {
            None => u64::MAX,
            Some(r) => (elapsed.as_secs_f64() * r).floor() as u64 + 1,
        }
    }

    /// When attempt `n` (0-based) may start, counted from the start.
    pub fn due(&self, n: u64) -> Duration {
        match self.per_sec {
            None => Duration::ZERO,
            // Rounded up so that `allowed(due(n)) > n` despite float rounding.
            Some(r) => Duration::from_micros((n as f64 / r * 1e6).ceil() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_allows_everything_now() {
        let p = Pacer::new(None);
        assert_eq!(p.allowed(Duration::ZERO), u64::MAX);
        assert_eq!(p.due(1_000_000), Duration::ZERO);
        assert_eq!(Pacer::new(Some(0.0)), p);
        assert_eq!(Pacer::new(Some(f64::NAN)), p);
    }

    #[test]
    fn schedule_is_n_over_rate() {
        let p = Pacer::new(Some(1000.0));
        assert_eq!(p.allowed(Duration::ZERO), 1);
        assert_eq!(p.allowed(Duration::from_micros(999)), 1);
        assert_eq!(p.allowed(Duration::from_millis(1)), 2);
        assert_eq!(p.allowed(Duration::from_secs(5)), 5001);
        assert_eq!(p.due(0), Duration::ZERO);
        assert_eq!(p.due(1000), Duration::from_secs(1));
        let slow = Pacer::new(Some(0.25));
        assert_eq!(slow.allowed(Duration::from_secs(3)), 1);
        assert_eq!(slow.allowed(Duration::from_secs(4)), 2);
        assert_eq!(slow.due(2), Duration::from_secs(8));
    }

    #[test]
    fn due_and_allowed_agree_for_awkward_rates() {
        for rate in [3.0, 7.0, 333.3, 12_345.6] {
            let p = Pacer::new(Some(rate));
            for n in [1u64, 2, 10, 999, 123_457] {
                let at = p.due(n);
                assert!(p.allowed(at) > n, "rate {rate} n {n}");
                assert!(p.allowed(at.saturating_sub(Duration::from_micros(2))) <= n);
            }
        }
    }
}
