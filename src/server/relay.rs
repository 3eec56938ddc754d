//! What an open connection does with the messages it receives: echo them back, or
//! hand each whole message to its chat room. Sans-IO like the protocol core: an echo goes
//! out through the connection's core, a chat message is encoded once by the protocol
//! ([`RoomMessage`]) for the room's members' cores to send, and payload that must wait
//! is gathered in a buffer the caller lends. A compressed message (permessage-deflate,
//! RFC 7692) is gathered whole, then inflated by the reactor's codec, which the caller
//! lends too.

use std::borrow::Cow;

use super::room_message::RoomMessage;
use crate::protocol::deadline::Tick;
use crate::protocol::deflate::Codec;
use crate::protocol::error::ProtocolError;
use crate::protocol::frame::OpCode;
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

/// What became of a chunk of a data frame.
#[derive(Debug)]
pub enum Relayed {
    /// Echoed, or kept until its message is whole.
    Kept,
    /// A whole chat message, encoded once (per kind of member) as one unfragmented
    /// server frame, for the caller to fan out to the room.
    Chat(RoomMessage),
    /// The message broke the protocol once inflated (it does not inflate, its text is
    /// not UTF-8, or it inflates past the limit): the connection is failed, its Close
    /// queued.
    Failed(ProtocolError),
}

/// What relaying with permessage-deflate needs besides the connection: the reactor's
/// codec (made on first use), whether the server compresses (`--deflate`), and the
/// message size limit.
#[derive(Debug)]
pub struct Compression<'a> {
    /// The reactor's compressor and decompressor, once a message needed them.
    pub codec: &'a mut Option<Codec>,
    /// Whether the server runs with `--deflate`: chat messages are then compressed
    /// once for the members that agreed to it.
    pub enabled: bool,
    /// The largest message, inflated.
    pub limit: u64,
    /// The connection's id (the reactor's slab key), by which the codec keeps its
    /// context under context takeover.
    pub id: usize,
    /// The time, for the Close of a failed connection.
    pub now: Tick,
}

impl Relay {
    /// Relays a chunk of a data frame.
    pub fn on_data(
        self,
        chunk: DataChunk<'_>,
        conn: &mut ServerConnection<Relay>,
        io: &mut impl Gather,
        deflate: Compression<'_>,
    ) -> Result<Relayed, Misuse> {
        if chunk.compressed {
            return compressed(self, chunk, conn, io, deflate);
        }
        Ok(match self {
            Relay::Echo => {
                echo(chunk, conn, io)?;
                Relayed::Kept
            }
            Relay::Chat => gather(chunk, io, deflate).map_or(Relayed::Kept, Relayed::Chat),
        })
    }
}

/// Relays a chunk of a compressed message: gathered until the message is whole, then
/// inflated to check it (size, UTF-8) and relayed. An echo goes back compressed: as the
/// very bytes that came when the agreement lets the client inflate them as ours (see
/// `Agreement::echoes_as_sent`), else compressed again as agreed;
/// a chat message is inflated for the members without compression, and goes as it came
/// to those that take it, unless it refers to its sender's context.
fn compressed(
    relay: Relay,
    chunk: DataChunk<'_>,
    conn: &mut ServerConnection<Relay>,
    io: &mut impl Gather,
    deflate: Compression<'_>,
) -> Result<Relayed, Misuse> {
    let opcode = chunk.message;
    let Some(message) = whole(chunk, io) else {
        return Ok(Relayed::Kept);
    };
    let text = opcode == OpCode::Text;
    let codec = deflate.codec.get_or_insert_with(Codec::default);
    let (id, limit) = (deflate.id, deflate.limit);
    let agreement = conn.deflate();
    let context_free = agreement.is_some_and(|a| !a.client_takeover());
    let checked = match (relay, agreement) {
        (Relay::Echo, Some(agreement)) if agreement.echoes_as_sent() => codec
            .check_from(id, agreement, &message, text, limit)
            .map(|()| &message[..]),
        (Relay::Echo, Some(agreement)) => {
            codec.recompress_for(id, agreement, &message, text, limit)
        }
        (Relay::Chat, Some(agreement)) => codec.inflate_from(id, agreement, &message, text, limit),
        (_, None) => codec.inflate(&message, text, limit),
    };
    let payload = match checked {
        Ok(payload) => payload,
        Err(error) => {
            conn.fail(error, deflate.now, io)?;
            return Ok(Relayed::Failed(error));
        }
    };
    Ok(match relay {
        Relay::Echo => {
            conn.send_compressed(opcode, payload, io)?;
            Relayed::Kept
        }
        Relay::Chat => Relayed::Chat(RoomMessage::new(
            opcode,
            payload,
            context_free.then_some(&message[..]),
        )),
    })
}

/// A message's bytes once it is whole: the chunk itself when the message is whole in
/// it, else what was gathered (taken from the connection, which holds it only while
/// the message is in progress).
fn whole<'c>(chunk: DataChunk<'c>, io: &mut impl Gather) -> Option<Cow<'c, [u8]>> {
    let whole_here =
        chunk.opcode != OpCode::Continuation && chunk.starts_frame() && chunk.ends_message();
    if whole_here {
        return Some(Cow::Borrowed(chunk.payload));
    }
    let gathered = io.gathered();
    gathered.extend_from_slice(chunk.payload);
    chunk
        .ends_message()
        .then(|| Cow::Owned(std::mem::take(gathered)))
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
/// it is encoded as one unfragmented frame, once for the whole room (and compressed
/// once, with `--deflate`, for the members that agreed to it). Fragments cannot
/// be relayed as they come: members would see several senders' fragments
/// interleaved, which §5.4 forbids.
fn gather(
    chunk: DataChunk<'_>,
    io: &mut impl Gather,
    deflate: Compression<'_>,
) -> Option<RoomMessage> {
    let opcode = chunk.message;
    let message = whole(chunk, io)?;
    Some(if deflate.enabled {
        let codec = deflate.codec.get_or_insert_with(Codec::default);
        RoomMessage::compressing(opcode, &message, codec)
    } else {
        RoomMessage::new(opcode, &message, None)
    })
}
