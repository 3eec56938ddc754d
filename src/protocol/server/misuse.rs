//! The server core's one error for its caller: a call its documented order does not
//! allow. The peer's mistakes are events (`Refused`, `Failed`) with an answer on the
//! wire; this is the shell's, and nothing goes on the wire for it.

use std::fmt;

/// A call out of the order [`ServerConnection`](super::ServerConnection) documents: a bug
/// in the caller, not in the peer. The call did nothing (no state changed, nothing was
/// transmitted). The caller cannot know what the peer has been sent is still coherent,
/// so it drops the connection (the client sees 1006, §7.1.5) and logs why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misuse {
    /// An input other than `handle_answer` while a request waits for its answer.
    AnswerOwed,
    /// `handle_answer` with no request waiting: none was reported, or it was answered.
    NoRequest,
    /// Input while reading is paused for backpressure (`poll_read` said not to read).
    ReadPaused,
    /// Input after the client's EOF (`handle_eof` was called already).
    AfterEof,
    /// A data frame before the handshake opened the WebSocket.
    NotOpen,
    /// `cut_short` once the request head is read: its answer is the application's.
    HeadRead,
    /// A Close frame through `send` or `send_shared`: the closing handshake is the
    /// core's, since only it can keep anything from following its Close (§5.5.1).
    CloseFrame,
    /// `send_compressed` on a connection that did not agree to permessage-deflate, or
    /// with a control or continuation opcode (RFC 7692 §6: a compressed message is a data
    /// message, marked on its first frame).
    NotNegotiated,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Misuse::AnswerOwed => "input while a request waits for its answer",
            Misuse::NoRequest => "an answer with no request waiting",
            Misuse::ReadPaused => "input while reading is paused",
            Misuse::AfterEof => "input after EOF",
            Misuse::NotOpen => "a frame before the handshake",
            Misuse::HeadRead => "cut short after the request head",
            Misuse::CloseFrame => "a Close frame from the application",
            Misuse::NotNegotiated => "a compressed frame without permessage-deflate",
        })
    }
}

impl std::error::Error for Misuse {}
