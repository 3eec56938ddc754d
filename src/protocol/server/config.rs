//! What every connection of a server follows: the handshake policy, the message size
//! limit and the deadlines, with the backpressure marks that pause and resume reading.

use crate::protocol::deadline::Timeouts;
use crate::protocol::handshake::Policy;
use crate::protocol::receiver::{ReceiverConfig, Role};

/// At this much unsent output an open connection stops reading until the client
/// catches up, so a client that does not read cannot grow our memory.
pub const HIGH_WATER: usize = 256 * 1024;

/// Reading resumes once unsent output is below this. The gap between the marks means a
/// client that reads slowly costs a pause and a resume per 192 KiB, not per frame.
pub const LOW_WATER: usize = 64 * 1024;

/// What every connection of a server follows.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig<'c> {
    /// Who may upgrade, and the subprotocols spoken (§4.2.2).
    pub policy: Policy<'c>,
    /// The largest message accepted, summed over its fragments (1009 above it).
    pub max_message_size: u64,
    /// The deadlines, in seconds.
    pub timeouts: Timeouts,
}

impl ServerConfig<'_> {
    /// What the receiver enforces: client frames, masked (§5.1), up to the size limit,
    /// compressed if permessage-deflate was agreed (`deflate`).
    pub(super) fn receiver(&self, deflate: bool) -> ReceiverConfig {
        ReceiverConfig {
            role: Role::Server,
            max_message_size: self.max_message_size,
            deflate,
        }
    }

    /// The unsent output at which reading pauses. [`HIGH_WATER`], except in the middle
    /// of a message while the server's pool for them has room (`relaxed`): then the
    /// message size limit on top, since a client may write a whole message before it
    /// reads the echo (Autobahn's client does), and pausing it then would deadlock both
    /// ends. Once the pool is taken every connection pauses at [`HIGH_WATER`].
    pub(super) fn pause_mark(&self, in_message: bool, relaxed: bool) -> usize {
        if relaxed && in_message {
            let limit = usize::try_from(self.max_message_size).unwrap_or(usize::MAX);
            limit.saturating_add(HIGH_WATER)
        } else {
            HIGH_WATER
        }
    }
}
