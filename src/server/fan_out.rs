//! Chat fan-out, fair to everyone else on the reactor: what is left to deliver and to
//! write. A message completed by a sender waits here with the key of its room; the
//! reactor queues it for every member (one encoding, its bytes shared by all), and
//! members with frames queued wait here for a write that carries all of them. Both
//! steps are bounded per turn ([`FAN_OUT_WORK`], [`FAN_OUT_WRITES`]), and a sender is
//! not read while messages wait, so a busy room costs the others a bounded delay.

use std::collections::VecDeque;

use super::env::Broadcast;
use super::room_message::RoomMessage;
use super::rooms::{RoomKey, Rooms};

/// Member deliveries queued per turn at most (finished a message at a time): about a
/// millisecond of work.
pub const FAN_OUT_WORK: usize = 20_000;

/// Members written to per turn at most: at a few microseconds a write, a few
/// milliseconds, after which other connections get their turn.
pub const FAN_OUT_WRITES: usize = 1_000;

/// The fan-out still to do.
#[derive(Debug, Default)]
pub struct FanOut {
    /// Messages completed by senders, in order, with the room each is for.
    pending: VecDeque<(RoomKey, RoomMessage)>,
    /// Members with frames queued since their last write, in the order they got them.
    to_write: VecDeque<usize>,
    /// A reusable copy of a room's members, taken while a message is delivered.
    recipients: Vec<usize>,
}

impl FanOut {
    /// Whether nothing is left to do (the reactor may sleep).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.to_write.is_empty()
    }

    /// Whether messages wait to be delivered (their senders wait too).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes the messages a drive completed, each for its sender's room as it is now:
    /// a sender that leaves right after (its Close and EOF came with its last message)
    /// does not take its message with it.
    pub fn collect(&mut self, outbox: &mut Vec<Broadcast>, rooms: &Rooms) {
        for (sender, frame) in outbox.drain(..) {
            if let Some(room) = rooms.key_of(sender) {
                self.pending.push_back((room, frame));
            }
        }
    }

    /// Queues a message that came from another process for the members of `room` here.
    pub fn push(&mut self, room: RoomKey, message: RoomMessage) {
        self.pending.push_back((room, message));
    }

    /// The next message and the members of its room (hand the list back with
    /// [`FanOut::done_with`]).
    pub fn next_message(&mut self, rooms: &Rooms) -> Option<(RoomMessage, Vec<usize>)> {
        let (room, frame) = self.pending.pop_front()?;
        let mut recipients = std::mem::take(&mut self.recipients);
        recipients.clear();
        recipients.extend_from_slice(rooms.members(room));
        Some((frame, recipients))
    }

    /// Hands back the list [`FanOut::next_message`] lent, to be reused.
    pub fn done_with(&mut self, recipients: Vec<usize>) {
        self.recipients = recipients;
    }

    /// A member got its first frame since its last write.
    pub fn queued(&mut self, id: usize) {
        self.to_write.push_back(id);
    }

    /// The next member to write to.
    pub fn next_write(&mut self) -> Option<usize> {
        self.to_write.pop_front()
    }
}
