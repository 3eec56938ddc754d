//! Deadlines: the handshake (slowloris), idle and heartbeat, and close timeouts.
//!
//! No per-connection timer objects: each connection stores one `since` tick (when its
//! current wait began), and the reactor sweeps a slice of the slab every tick so that
//! every connection is visited about once a second. Work is O(connections) per second,
//! independent of traffic, and needs no memory beyond that one `u32`.

use std::time::{Duration, Instant};

use super::config::{Config, CLOSE_TIMEOUT_SECS};

/// Seconds since the reactor started: coarse and cheap to compare.
pub type Tick = u32;

/// How often the sweep runs; each run visits 1/`SWEEPS_PER_SECOND` of the slab.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
const SWEEPS_PER_SECOND: usize = 4;

/// A monotonic clock in whole seconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Tick {
        self.start.elapsed().as_secs() as Tick
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Which wait a connection is in, for deciding what its deadline means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Waiting for the request head since accept.
    Handshake,
    /// Open, silent since `since`; `pinged` if a heartbeat Ping is outstanding.
    Idle { pinged: bool },
    /// Closing or draining since `since`.
    Close,
}

/// What a due deadline asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The client took too long to send its request head: answer 408.
    HandshakeTimeout,
    /// Silent for `--ping-interval`: send a Ping.
    Ping,
    /// Silent for `--idle-timeout`: close with 1001.
    IdleTimeout,
    /// The closing handshake took too long: drop the socket.
    CloseTimeout,
}

/// Decides whether a connection that has waited `age` seconds is due for something.
pub fn due(wait: Wait, age: Tick, config: &Config) -> Option<Due> {
    match wait {
        Wait::Handshake if age >= config.handshake_timeout => Some(Due::HandshakeTimeout),
        Wait::Idle { .. } if config.idle_timeout > 0 && age >= config.idle_timeout => {
            Some(Due::IdleTimeout)
        }
        Wait::Idle { pinged: false } if config.ping_interval > 0 && age >= config.ping_interval => {
            Some(Due::Ping)
        }
        Wait::Close if age >= CLOSE_TIMEOUT_SECS => Some(Due::CloseTimeout),
        _ => None,
    }
}

/// A cursor that walks the slab's index space a slice per tick.
#[derive(Debug, Default)]
pub struct Sweep {
    cursor: usize,
}

impl Sweep {
    /// The index range to visit this tick, for a slab with `capacity` slots.
    pub fn next_range(&mut self, capacity: usize) -> std::ops::Range<usize> {
        if self.cursor >= capacity {
            self.cursor = 0;
        }
        let step = capacity.div_ceil(SWEEPS_PER_SECOND).max(1);
        let start = self.cursor;
        self.cursor = (start + step).min(capacity);
        start..self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn config(args: &[&str]) -> Config {
        Cli::parse_from(std::iter::once("t").chain(args.iter().copied())).config
    }

    #[test]
    fn deadlines_follow_the_configuration() {
        let c = config(&[
            "--handshake-timeout",
            "3",
            "--ping-interval",
            "5",
            "--idle-timeout",
            "9",
        ]);
        assert_eq!(due(Wait::Handshake, 2, &c), None);
        assert_eq!(due(Wait::Handshake, 3, &c), Some(Due::HandshakeTimeout));
        assert_eq!(due(Wait::Idle { pinged: false }, 4, &c), None);
        assert_eq!(due(Wait::Idle { pinged: false }, 5, &c), Some(Due::Ping));
        assert_eq!(
            due(Wait::Idle { pinged: true }, 5, &c),
            None,
            "one Ping at a time"
        );
        assert_eq!(
            due(Wait::Idle { pinged: true }, 9, &c),
            Some(Due::IdleTimeout)
        );
        assert_eq!(
            due(Wait::Close, CLOSE_TIMEOUT_SECS, &c),
            Some(Due::CloseTimeout)
        );
        let off = config(&["--ping-interval", "0", "--idle-timeout", "0"]);
        assert_eq!(due(Wait::Idle { pinged: false }, 1_000_000, &off), None);
    }

    #[test]
    fn the_sweep_covers_every_slot_within_a_second() {
        let mut sweep = Sweep::default();
        let mut seen = vec![0; 10];
        for _ in 0..SWEEPS_PER_SECOND {
            for i in sweep.next_range(10) {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        assert_eq!(sweep.next_range(10).start, 0, "wraps around");
        assert_eq!(sweep.next_range(0), 0..0);
    }
}
