//! What the server says to Redis and what it makes of the answers, sans-IO: commands
//! are appended to an output buffer, replies are read from the front of an input buffer.
//! The RESP2 encoding and parsing are the `redis-protocol` crate's (its `encode_borrowed`
//! and zero-copy `decode_range`); this file only knows which commands and replies the
//! server uses. RESP2 rather than RESP3: every Redis since 2.0 speaks it, and the
//! subscriber connection's pushes are then plain arrays (`message`, channel, payload).

use std::ops::Range;

use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, RangeFrame};

/// Every room's channel is its name behind this prefix: `wsreactor:room:NAME`.
pub const CHANNEL_PREFIX: &str = "wsreactor:room:";

/// A reply Redis sent that was not RESP: the link is dropped and made again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadReply(pub String);

/// One reply, its parts as ranges of the input it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A message published to a channel this connection subscribes to.
    Message {
        /// The channel's name.
        channel: Range<usize>,
        /// The bytes published.
        payload: Range<usize>,
    },
    /// An error reply (`-ERR ...`), its text.
    Error(Range<usize>),
    /// Anything else: the count PUBLISH answers, `+PONG`, SUBSCRIBE's confirmations.
    Other,
}

/// Appends a command (an array of bulk strings, as clients send them) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let parts: Vec<BorrowedFrame<'_>> = args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
    let frame = BorrowedFrame::Array(&parts);
    let start = out.len();
    out.resize(start + frame.encode_len(false), 0);
    let written = encode_borrowed(&mut out[start..], &frame, false)
        .expect("the buffer was sized by encode_len");
    out.truncate(start + written);
}

/// The channel of room `room`.
pub fn channel(room: &str) -> Vec<u8> {
    let mut name = Vec::with_capacity(CHANNEL_PREFIX.len() + room.len());
    name.extend_from_slice(CHANNEL_PREFIX.as_bytes());
    name.extend_from_slice(room.as_bytes());
    name
}

/// The room a channel belongs to, if it is one of ours.
pub fn room_of(channel: &[u8]) -> Option<&str> {
    channel
        .strip_prefix(CHANNEL_PREFIX.as_bytes())
        .and_then(|name| std::str::from_utf8(name).ok())
}

/// Reads the reply at the front of `input`: `Ok(Some((reply, consumed)))`, `Ok(None)`
/// while it is incomplete (nothing consumed), or an error for bytes that are not RESP.
pub fn next_reply(input: &[u8]) -> Result<Option<(Reply, usize)>, BadReply> {
    let Some((frame, used)) = decode_range(input).map_err(|e| BadReply(e.to_string()))? else {
        return Ok(None);
    };
    let reply = match frame {
        RangeFrame::Error((start, end)) => Reply::Error(start..end),
        RangeFrame::Array(parts) => match parts.as_slice() {
            [RangeFrame::BulkString(kind), RangeFrame::BulkString(channel), RangeFrame::BulkString(payload)]
                if &input[kind.0..kind.1] == b"message" =>
            {
                Reply::Message {
                    channel: channel.0..channel.1,
                    payload: payload.0..payload.1,
                }
            }
            _ => Reply::Other,
        },
        _ => Reply::Other,
    };
    Ok(Some((reply, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"SUBSCRIBE", &channel("a b")]);
        command(&mut out, &[b"PUBLISH", b"c", b"\x00\xff"]);
        assert_eq!(
            out,
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$18\r\nwsreactor:room:a b\r\n\
              *3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\n\x00\xff\r\n"
        );
    }

    #[test]
    fn channels_name_rooms() {
        assert_eq!(room_of(&channel("lobby")), Some("lobby"));
        assert_eq!(room_of(b"other:lobby"), None);
        assert_eq!(room_of(b"wsreactor:room:\xff"), None, "not a room name");
    }

    #[test]
    fn a_message_push_is_read_in_any_split() {
        let wire = b"*3\r\n$7\r\nmessage\r\n$18\r\nwsreactor:room:lob\r\n$5\r\nhi\r\n!\r\n:2\r\n";
        let first = wire.len() - 4;
        for cut in 0..first {
            assert_eq!(next_reply(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        let (reply, used) = next_reply(wire).unwrap().unwrap();
        assert_eq!(used, first);
        let Reply::Message { channel, payload } = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(room_of(&wire[channel]), Some("lob"));
        assert_eq!(&wire[payload], b"hi\r\n!");
        assert_eq!(next_reply(&wire[used..]), Ok(Some((Reply::Other, 4))));
    }

    #[test]
    fn confirmations_errors_and_garbage() {
        let sub = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n";
        assert_eq!(next_reply(sub), Ok(Some((Reply::Other, sub.len()))));
        let err = b"-ERR unknown command\r\n";
        let (reply, _) = next_reply(err).unwrap().unwrap();
        assert_eq!(reply, Reply::Error(1..20));
        assert!(next_reply(b"?what\r\n").is_err());
    }
}
