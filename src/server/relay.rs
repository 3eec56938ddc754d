//! What an open connection does with the messages it receives: echo them back, or
//! hand each whole message to its chat room. Sans-IO like the protocol core: bytes go
//! out through the connection's [`Transmit`], and payload that must wait is gathered
//! in a buffer the caller lends.

use std::rc::Rc;

use crate::protocol::frame::{encode_frame, OpCode};
use crate::protocol::receiver::DataChunk;
use crate::protocol::server::ServerConnection;
use crate::protocol::transmit::Transmit;

/// What the server's side of a connection needs of its IO: the output, and a buffer
/// for payload that cannot be relayed yet.
pub trait Gather: Transmit {
    fn gathered(&mut self) -> &mut Vec<u8>;
}

/// How an upgraded connection relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    Echo,
    /// Sends each whole message to every member of its room (see `Rooms`).
    Chat,
}

impl Relay {
    /// Relays a chunk of a data frame. Returns a whole chat message, encoded once as
    /// one unfragmented server frame, for the caller to fan out to the room.
    pub fn on_data(
        self,
        chunk: DataChunk,
        conn: &mut ServerConnection<Relay>,
        io: &mut impl Gather,
    ) -> Option<Rc<[u8]>> {
        match self {
            Relay::Echo => {
                echo(chunk, conn, io);
                None
            }
            Relay::Chat => gather(chunk, io),
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
fn echo(chunk: DataChunk, conn: &mut ServerConnection<Relay>, io: &mut impl Gather) {
    let starts_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
    let opcode = if starts_message {
        chunk.opcode
    } else {
        OpCode::Continuation
    };
    conn.send(opcode, chunk.ends_message(), chunk.payload, io);
}

/// Gathers a chat message; once whole (and so valid: UTF-8 is checked as it arrives)
/// it is encoded as one unfragmented frame, once for the whole room. Fragments cannot
/// be relayed as they come: members would see several senders' fragments
/// interleaved, which §5.4 forbids.
fn gather(chunk: DataChunk, io: &mut impl Gather) -> Option<Rc<[u8]>> {
    let whole_here =
        chunk.opcode != OpCode::Continuation && chunk.starts_frame() && chunk.ends_message();
    if whole_here {
        return Some(shared_frame(chunk.message, chunk.payload));
    }
    let gathered = io.gathered();
    gathered.extend_from_slice(chunk.payload);
    if !chunk.ends_message() {
        return None;
    }
    let message = std::mem::take(gathered);
    Some(shared_frame(chunk.message, &message))
}

/// One unfragmented, unmasked server frame (§5.2), to be shared by a room's members.
fn shared_frame(opcode: OpCode, payload: &[u8]) -> Rc<[u8]> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    encode_frame(&mut frame, true, opcode, None, payload.len(), |p| {
        p.copy_from_slice(payload)
    });
    frame.into()
}
