//! What the server core tells its caller: the events of its input, the deadlines that
//! came due, and what to do once output is flushed.

use crate::protocol::close::CloseCode;
use crate::protocol::error::ProtocolError;
use crate::protocol::handshake::{Refusal, Upgrade};
use crate::protocol::receiver::DataChunk;

/// What [`ServerConnection::handle_read`](super::ServerConnection::handle_read) found in
/// the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A GET the protocol accepts, for `target` (path and query); `upgrade` is set for a
    /// valid WebSocket upgrade. Answer it with
    /// [`handle_answer`](super::ServerConnection::handle_answer) before any other input.
    Request {
        /// The resource asked for, in origin-form (an absolute-form target without its
        /// scheme and authority: see `Request::resource`).
        target: &'a str,
        /// What the 101 answers a valid upgrade with, if it is one.
        upgrade: Option<Upgrade<'a>>,
    },
    /// The head was refused and its answer queued.
    Refused(Refusal),
    /// Payload of a data frame, unmasked and (for text) valid UTF-8 so far.
    Data(DataChunk<'a>),
    /// The client sent a valid Close; ours is queued, echoing its code (§5.5.1).
    PeerClosed(Option<CloseCode>),
    /// The client broke the protocol; a Close with the error's code is queued (§7.1.7).
    Failed(ProtocolError),
}

/// A deadline that came due, and what was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// No request head in time: 408 queued.
    Handshake,
    /// Silent for the ping interval: a Ping is queued (not an ending).
    Ping,
    /// Silent for the idle timeout: Close 1001 queued.
    Idle,
    /// Paused for backpressure too long without draining: drop the connection.
    Send,
    /// The closing handshake or the last flush took too long: drop the connection.
    Close,
}

impl Timeout {
    /// Whether the connection is to be dropped now.
    pub fn ends(self) -> bool {
        matches!(self, Timeout::Send | Timeout::Close)
    }
}

/// What to do after the output was flushed (see
/// [`ServerConnection::handle_flushed`](super::ServerConnection::handle_flushed)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Nothing changes.
    Keep,
    /// Reading resumed after backpressure: no readiness edge will come for input that
    /// waited, so read again without waiting for one.
    Resumed,
    /// The final answer is out: shut down writing and discard input until EOF
    /// (lingering close, so unread input cannot turn our FIN into a RST).
    ShutdownWrite,
    /// Nothing more to do: drop the connection.
    Done,
}
