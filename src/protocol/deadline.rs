//! Deadlines of a server connection as pure functions of the time the caller passes in:
//! the handshake (slowloris), idle and heartbeat, send (backpressure) and close timeouts.
//!
//! No timer objects: a connection stores one `since` tick (when its current wait
//! began), and the caller asks, as often as it likes, whether a deadline is due. A
//! reactor sweeping its connections once a second does O(connections) work a second,
//! independent of traffic, and needs no memory beyond that one `u32`. Deadlines are
//! whole seconds.

/// Seconds since some start the caller chose: coarse and cheap to compare.
pub type Tick = u32;

/// Seconds the closing handshake and the final flush may take before the socket is
/// dropped (RFC 6455 §7.1.1 leaves the wait to the server).
pub const CLOSE_TIMEOUT_SECS: u32 = 5;

/// The waits a server allows, in seconds; 0 turns off those that say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the whole request head, from accept (never off).
    pub handshake: u32,
    /// Silence before closing with 1001 (0 = never).
    pub idle: u32,
    /// Silence before a heartbeat Ping (0 = never).
    pub ping: u32,
    /// Reading paused for backpressure without draining (0 = never).
    pub send: u32,
    /// The closing handshake and final flush.
    pub close: u32,
}

impl Default for Timeouts {
    /// The `serve` defaults.
    fn default() -> Self {
        Timeouts {
            handshake: 10,
            idle: 60,
            ping: 30,
            send: 30,
            close: CLOSE_TIMEOUT_SECS,
        }
    }
}

/// Which wait a connection is in, for deciding what its deadline means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Waiting for the request head since accept.
    Handshake,
    /// Open, silent since `since`.
    Idle {
        /// Whether a heartbeat Ping is outstanding.
        pinged: bool,
    },
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
    /// Silent for the ping interval: send a Ping.
    Ping,
    /// Silent for the idle timeout: close with 1001.
    IdleTimeout,
    /// Paused for the send timeout without draining: drop it (a Close could not reach
    /// a client that does not read).
    SendTimeout,
    /// The closing handshake took too long: drop the socket.
    CloseTimeout,
}

/// Decides whether a connection that has waited `age` seconds is due for something.
pub fn due(wait: Wait, age: Tick, t: &Timeouts) -> Option<Due> {
    match wait {
        Wait::Handshake if age >= t.handshake => Some(Due::HandshakeTimeout),
        Wait::Idle { .. } if t.idle > 0 && age >= t.idle => Some(Due::IdleTimeout),
        Wait::Idle { pinged: false } if t.ping > 0 && age >= t.ping => Some(Due::Ping),
        Wait::Paused if t.send > 0 && age >= t.send => Some(Due::SendTimeout),
        Wait::Close if age >= t.close => Some(Due::CloseTimeout),
        _ => None,
    }
}

/// The age at which a connection in `wait` is first due for something (what [`due`]
/// answers `Some` for from then on), or `None` if no deadline applies to it: for a
/// caller that keeps a timer per connection rather than sweeping them all.
pub fn due_at_age(wait: Wait, t: &Timeouts) -> Option<Tick> {
    let on = |secs: u32| (secs > 0).then_some(secs);
    match wait {
        Wait::Handshake => Some(t.handshake),
        Wait::Idle { pinged: false } => match (on(t.idle), on(t.ping)) {
            (Some(idle), Some(ping)) => Some(idle.min(ping)),
            (idle, ping) => idle.or(ping),
        },
        Wait::Idle { pinged: true } => on(t.idle),
        Wait::Paused => on(t.send),
        Wait::Close => Some(t.close),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_due_age_is_where_due_starts_answering() {
        let waits = [
            Wait::Handshake,
            Wait::Idle { pinged: false },
            Wait::Idle { pinged: true },
            Wait::Paused,
            Wait::Close,
        ];
        for t in [
            Timeouts::default(),
            Timeouts {
                handshake: 3,
                ping: 9,
                idle: 5,
                send: 0,
                close: 0,
            },
            Timeouts {
                ping: 0,
                idle: 0,
                ..Timeouts::default()
            },
            Timeouts {
                idle: 0,
                ..Timeouts::default()
            },
        ] {
            for wait in waits {
                let first = due_at_age(wait, &t);
                for age in 0..100 {
                    let expected = first.is_some_and(|first| age >= first);
                    assert_eq!(
                        due(wait, age, &t).is_some(),
                        expected,
                        "{wait:?} {t:?} {age}"
                    );
                }
            }
        }
    }
    #[test]
    fn deadlines_follow_the_configuration() {
        let c = Timeouts {
            handshake: 3,
            ping: 5,
            idle: 9,
            send: 4,
            close: CLOSE_TIMEOUT_SECS,
        };
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
        let off = Timeouts {
            ping: 0,
            idle: 0,
            send: 0,
            ..Timeouts::default()
        };
        assert_eq!(due(Wait::Idle { pinged: false }, 1_000_000, &off), None);
        assert_eq!(due(Wait::Paused, 1_000_000, &off), None);
    }
}
