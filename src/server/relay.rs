//! What an open connection does with the messages it receives: echo them back, or
//! hand each whole message to its chat room. Sans-IO like the protocol core: an echo goes
//! out through the connection's core, a chat message is encoded once by the protocol
//! ([`SharedFrame`]) for the room's members' cores to send, and payload that must wait
//! is gathered in a buffer the caller lends.

use crate::protocol::frame::{OpCode, SharedFrame};
use crate::protocol::receiver::DataChunk;
use crate::protocol::server::{Misuse, ServerConnection};
use crate::protocol::transmit::Transmit;

/// What the server's side of a connection needs of its IO: the output, and a buffer
/// for payload that cannot be relayed yet.
pub trait Gather: Transmit {
    /// The buffer for payload held until its message is whole.
    fn gathered(&mut self) -> &mut Vec<u8>;
}

/// How an upgraded connection relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Sends each message back to its sender, streamed frame by frame.
    Echo,
    /// Sends each whole message to every member of its room (see `Rooms`).
    Chat,
}

impl Relay {
    /// Relays a chunk of a data frame. Returns a whole chat message, encoded once as
    /// one unfragmented server frame, for the caller to fan out to the room.
    pub fn on_data(
        self,
        chunk: DataChunk<'_>,
        conn: &mut ServerConnection<Relay>,
        io: &mut impl Gather,
    ) -> Result<Option<SharedFrame>, Misuse> {
        match self {
            Relay::Echo => echo(chunk, conn, io).map(|_| None),
            Relay::Chat => Ok(gather(chunk, io)),
        }
    }
}

/// Echoes a chunk of a data frame at once, as a frame of its own: payload streams
/// through, unmasked in place and sent from the read buffer, so an echo holds no
/// memory however large its message. A frame that arrives in pieces goes back as
/// fragments of one message (§5.4: the first with the message's opcode, the rest as
/// continuations, FIN on the chunk that ends the message). Every frame sent is whole,
/// so a violation found later (invalid UTF-8: 1007) leaves nothing half-sent in front
/// of the Close.
fn echo(
    chunk: DataChunk<'_>,
    conn: &mut ServerConnection<Relay>,
    io: &mut impl Gather,
) -> Result<bool, Misuse> {
    let starts_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
    let opcode = if starts_message {
        chunk.opcode
    } else {
        OpCode::Continuation
    };
    conn.send(opcode, chunk.ends_message(), chunk.payload, io)
}

/// Gathers a chat message; once whole (and so valid: UTF-8 is checked as it arrives)
/// it is encoded as one unfragmented frame, once for the whole room. Fragments cannot
/// be relayed as they come: members would see several senders' fragments
/// interleaved, which §5.4 forbids.
fn gather(chunk: DataChunk<'_>, io: &mut impl Gather) -> Option<SharedFrame> {
    let whole_here =
        chunk.opcode != OpCode::Continuation && chunk.starts_frame() && chunk.ends_message();
    if whole_here {
        return Some(SharedFrame::new(chunk.message, chunk.payload));
    }
    let gathered = io.gathered();
    gathered.extend_from_slice(chunk.payload);
    if !chunk.ends_message() {
        return None;
    }
    let message = std::mem::take(gathered);
    Some(SharedFrame::new(chunk.message, &message))
}
