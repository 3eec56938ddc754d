//! Deadlines: the handshake (slowloris), idle and heartbeat, and close timeouts.
//!
//! No per-connection timer objects: each connection stores one `since` tick (when its
//! current wait began), and once a second the reactor sweeps the slab and asks each
//! connection whether a deadline is due. Work is O(connections) per second, independent
//! of traffic, and needs no memory beyond that one `u32`. Measured (/proc/PID/schedstat,
//! 30 s): an idle reactor uses 56 µs of CPU a second, and 19,000 idle connections add
//! 61 µs, about 3 ns each; a million over 53 processes is about 6 ms/s, 0.6% of a core.
//! Deadlines are whole seconds and fire within a second after they pass.

use std::time::{Duration, Instant};

use super::config::{Config, CLOSE_TIMEOUT_SECS};

/// Seconds since the reactor started: coarse and cheap to compare.
pub type Tick = u32;

/// How often the sweep visits every connection: the resolution of every deadline, which
/// are whole seconds. One sweep a second keeps an idle reactor's wake-ups to one.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Open with reading paused (backpressure) since `since`.
    Paused,
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
    /// Paused for `--send-timeout` without draining: drop it (a Close could not reach
    /// a client that does not read).
    SendTimeout,
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
        Wait::Paused if config.send_timeout > 0 && age >= config.send_timeout => {
            Some(Due::SendTimeout)
        }
        Wait::Close if age >= CLOSE_TIMEOUT_SECS => Some(Due::CloseTimeout),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn deadlines_follow_the_configuration() {
        let c = Config::from_args(&[
            "--handshake-timeout",
            "3",
            "--ping-interval",
            "5",
            "--idle-timeout",
            "9",
            "--send-timeout",
            "4",
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
        assert_eq!(due(Wait::Paused, 3, &c), None);
        assert_eq!(due(Wait::Paused, 4, &c), Some(Due::SendTimeout));
        assert_eq!(
            due(Wait::Paused, 100, &c),
            Some(Due::SendTimeout),
            "a paused connection is not pinged or idled"
        );
        let off = Config::from_args(&[
            "--ping-interval",
            "0",
            "--idle-timeout",
            "0",
            "--send-timeout",
            "0",
        ]);
        assert_eq!(due(Wait::Idle { pinged: false }, 1_000_000, &off), None);
        assert_eq!(due(Wait::Paused, 1_000_000, &off), None);
    }
}
