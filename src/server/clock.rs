//! The reactor's clock: whole seconds since it started, the [`Tick`] every deadline of
//! the protocol core is measured in, read once per poll turn rather than per event.
//!
//! Timer cost (the aim: well under 1% of a core with a million idle connections):
//! once a second the reactor sweeps the slab and asks each connection's core whether a
//! deadline is due, O(connections) a second and no memory beyond a `u32` each. Measured
//! with `cargo bench --bench timers`: milliseconds per sweep of a million connections
//! (docs/design.md#timeouts, docs/benchmarks.md#what-timers-cost).

use std::time::{Duration, Instant};

use crate::protocol::deadline::Tick;

/// How often the sweep visits every connection: the resolution of every deadline, which
/// are whole seconds. One sweep a second keeps an idle reactor's wake-ups to one.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A monotonic clock in whole seconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock that starts now.
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Whole seconds since the clock started.
    pub fn now(&self) -> Tick {
        self.at(Instant::now())
    }

    /// The tick of an instant already read (the reactor reads the clock once a turn).
    pub fn at(&self, instant: Instant) -> Tick {
        instant.saturating_duration_since(self.start).as_secs() as Tick
    }

    /// Milliseconds since the start at an instant already read.
    pub fn millis_at(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.start).as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
