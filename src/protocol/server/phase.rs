//! Where a server connection is in its life, and which deadline that puts it under.
//!
//! Handshaking → (Answering →) Open → Closing → Draining, or → Flushing when the client
//! ends its side while we still owe it output. Invariant: once a Close frame or a final
//! HTTP response is queued (`Closing` and after), nothing else is ever queued.

use crate::protocol::deadline::Wait;

/// A server connection's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading the HTTP request head.
    Handshaking,
    /// A request head was reported; the application has not answered yet.
    Answering,
    /// Exchanging frames.
    Open(Liveness),
    /// A final response or Close frame is queued: flush it, then shut down writing.
    Closing,
    /// Writing is shut down: discard input until the client's EOF.
    Draining,
    /// The client ended its side (EOF) while output we owe it is unsent: a half-closed
    /// client may still be reading, so write it all, then drop.
    Flushing,
}

/// What an open connection is waiting for; the connection's `since` says since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Liveness {
    /// Input arrived at `since`; silence is timed from then.
    Heard,
    /// Silent so long that a heartbeat Ping is out (`since` is still the last input).
    Pinged,
    /// Reading is paused (backpressure) since `since`, until unsent output drains below
    /// [`LOW_WATER`](super::LOW_WATER). Draining is what counts, not a trickle of bytes:
    /// a client whose kernel takes a few bytes now and then but that never reads must not
    /// stay forever.
    Paused,
}

impl Phase {
    /// The deadline this phase is under.
    pub(super) fn wait(self) -> Wait {
        match self {
            Phase::Handshaking | Phase::Answering => Wait::Handshake,
            Phase::Open(Liveness::Heard) => Wait::Idle { pinged: false },
            Phase::Open(Liveness::Pinged) => Wait::Idle { pinged: true },
            Phase::Open(Liveness::Paused) => Wait::Paused,
            Phase::Closing | Phase::Draining | Phase::Flushing => Wait::Close,
        }
    }
}
