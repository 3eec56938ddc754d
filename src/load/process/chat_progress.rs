//! Chat mode (`--chat ROOM`): every connection joins one room, one member (the sender)
//! sends numbered messages, and every member must receive each one exactly once, in
//! order and byte for byte. This file holds the room's progress: what the sender may
//! send next, which messages every member has, when the run is over, and the delivery
//! latencies. A connection checks each message it receives (`chat_message.rs`) and
//! reports it here; the driver has the sender send.
//!
//! Flow control: at most a chat window (`--chat-window`) of messages may be
//! outstanding, i.e. sent but not yet received by every member still connected;
//! `--chat-rate` optionally paces the sends as well. The chat window keeps the server's
//! per-member queues bounded (chat window × frame size), so the generator measures the
//! fan-out rather than provoking the server's slow-member drops; with no pace, the room
//! runs as fast as its slowest member.
//!
//! Why one process: the chat window needs to know when a message has reached *every*
//! member, which one process knows for free; across processes it would need a report
//! through the parent for every message.

use hdrhistogram::Histogram;

use super::pacing::Pacer;
use super::settings::ChatConfig;
use crate::load::wire::{encode_histogram, new_histogram, ChatFinal};

/// The room as this process sees it: the sender's schedule and chat window, and how far
/// every member has got.
#[derive(Debug)]
pub struct Room {
    cfg: ChatConfig,
    /// Seeds every message's bytes; fresh per run, so a stray message from another run
    /// cannot pass the check.
    seed: u32,
    pacer: Pacer,
    /// When the first message went out (µs since the driver started); `None` before.
    started_us: Option<u64>,
    /// Members when the chat started.
    members: u64,
    /// Members still connected.
    live: u64,
    /// Members that received every message.
    complete: u64,
    /// Messages sent so far (the next one's sequence number).
    sent: u32,
    /// Messages every live member has received.
    everywhere: u32,
    /// Per outstanding message (slot `seq % chat_window`): members that have it, and
    /// when it was sent.
    have: Box<[u64]>,
    sent_at_us: Box<[u64]>,
    last_delivery_us: u64,
    latency_us: Histogram<u64>,
}

impl Room {
    /// A room of `cfg`'s messages, whose bytes follow from `seed`; nobody in it yet.
    pub fn new(cfg: ChatConfig, seed: u32) -> Room {
        let chat_window = cfg.chat_window.max(1) as usize;
        Room {
            pacer: Pacer::new(cfg.rate),
            cfg,
            seed,
            started_us: None,
            members: 0,
            live: 0,
            complete: 0,
            sent: 0,
            everywhere: 0,
            have: vec![0; chat_window].into_boxed_slice(),
            sent_at_us: vec![0; chat_window].into_boxed_slice(),
            last_delivery_us: 0,
            latency_us: new_histogram(),
        }
    }

    /// The seed every message's bytes follow from.
    pub fn seed(&self) -> u32 {
        self.seed
    }

    /// Messages the sender sends in all.
    pub fn messages(&self) -> u32 {
        self.cfg.messages
    }

    /// The chat begins with `members` members (every connection open now).
    pub fn start(&mut self, members: u64, now_us: u64) {
        self.members = members;
        self.live = members;
        self.started_us = Some(now_us);
    }

    /// Whether [`Room::start`] has been called.
    pub fn is_started(&self) -> bool {
        self.started_us.is_some()
    }

    fn slot(&self, seq: u32) -> usize {
        seq as usize % self.have.len()
    }

    /// The message the sender may send now, if any: one is left, the chat window has
    /// room, and the pace allows it.
    pub fn due(&self, now_us: u64) -> Option<u32> {
        let start = self.started_us?;
        let open = self.sent < self.cfg.messages
            && self.sent - self.everywhere < self.cfg.chat_window
            && self.live > 0;
        let elapsed = std::time::Duration::from_micros(now_us.saturating_sub(start));
        (open && self.pacer.allowed(elapsed) > u64::from(self.sent)).then_some(self.sent)
    }

    /// When the next paced message is due (µs since the driver started), if the
    /// chat window would let it go: how long the driver may sleep.
    pub fn next_due_us(&self) -> Option<u64> {
        let start = self.started_us?;
        let waiting =
            self.sent < self.cfg.messages && self.sent - self.everywhere < self.cfg.chat_window;
        waiting.then(|| start + self.pacer.due(u64::from(self.sent)).as_micros() as u64)
    }

    /// Message `seq` (the one [`Room::due`] named) went out at `now_us`.
    pub fn on_sent(&mut self, seq: u32, now_us: u64) {
        debug_assert_eq!(seq, self.sent);
        let slot = self.slot(seq);
        self.have[slot] = 0;
        self.sent_at_us[slot] = now_us;
        self.sent += 1;
    }

    /// A member received the last byte of message `seq` at `now_us`, `latency_us` after
    /// it was sent.
    pub fn on_delivered(&mut self, seq: u32, latency_us: u32, now_us: u64) {
        self.latency_us.saturating_record(u64::from(latency_us));
        self.last_delivery_us = now_us;
        if seq + 1 == self.cfg.messages {
            self.complete += 1;
        }
        if seq >= self.everywhere && seq < self.sent {
            let slot = self.slot(seq);
            self.have[slot] += 1;
            self.advance();
        }
    }

    /// A member left the room (its connection ended) having received messages
    /// `0 .. next`: it no longer holds the chat window back, and no longer counts towards
    /// the messages it had.
    pub fn on_member_lost(&mut self, next: u32) {
        if !self.is_started() {
            return;
        }
        for seq in self.everywhere..next.min(self.sent) {
            let slot = self.slot(seq);
            self.have[slot] -= 1;
        }
        self.live -= 1;
        self.advance();
    }

    fn advance(&mut self) {
        while self.everywhere < self.sent && self.have[self.slot(self.everywhere)] >= self.live {
            self.everywhere += 1;
        }
    }

    /// Every message has reached every member still connected (or none is left).
    pub fn is_finished(&self) -> bool {
        self.is_started() && (self.live == 0 || self.everywhere == self.cfg.messages)
    }

    /// The oldest outstanding message has waited longer than `timeout_us` for some
    /// member: the room is stuck.
    pub fn is_overdue(&self, now_us: u64, timeout_us: u64) -> bool {
        self.everywhere < self.sent
            && now_us.saturating_sub(self.sent_at_us[self.slot(self.everywhere)]) > timeout_us
    }

    /// What the room measured, for the parent.
    pub fn into_final(self) -> ChatFinal {
        let start = self.started_us.unwrap_or(0);
        ChatFinal {
            members: self.members,
            members_complete: self.complete,
            messages: u64::from(self.cfg.messages),
            secs: self.last_delivery_us.saturating_sub(start) as f64 / 1e6,
            delivery_us: encode_histogram(&self.latency_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(messages: u32, chat_window: u32, members: u64) -> Room {
        let mut r = Room::new(
            ChatConfig {
                messages,
                rate: None,
                chat_window,
            },
            1,
        );
        assert_eq!(r.due(0), None, "nothing before the start");
        r.start(members, 0);
        r
    }

    #[test]
    fn the_chat_window_opens_only_when_every_member_has_the_oldest_message() {
        let mut r = room(5, 2, 3);
        assert_eq!(r.due(0), Some(0));
        r.on_sent(0, 0);
        assert_eq!(r.due(0), Some(1));
        r.on_sent(1, 0);
        assert_eq!(r.due(0), None, "a chat window of 2 is full");
        // Message 1 everywhere does not open the chat window while 0 is missing
        // somewhere.
        for _ in 0..3 {
            r.on_delivered(1, 0, 10);
        }
        r.on_delivered(0, 0, 10);
        r.on_delivered(0, 0, 10);
        assert_eq!(r.due(10), None);
        assert!(r.is_overdue(2_000, 1_000));
        r.on_delivered(0, 0, 10);
        assert_eq!(r.due(10), Some(2), "0 and 1 are everywhere");
        assert!(!r.is_overdue(2_000, 1_000));
        for seq in 2..5 {
            r.on_sent(seq, 20);
            assert!(!r.is_finished());
            for _ in 0..3 {
                r.on_delivered(seq, 0, 30);
            }
        }
        assert!(r.is_finished());
        assert_eq!(r.due(40), None);
        let fin = r.into_final();
        assert_eq!((fin.members, fin.members_complete, fin.messages), (3, 3, 5));
    }

    #[test]
    fn a_lost_member_stops_holding_the_chat_window_back() {
        let mut r = room(4, 2, 3);
        r.on_sent(0, 0);
        r.on_sent(1, 0);
        // Members A and B have both messages; member C has only message 0 and leaves.
        for _ in 0..2 {
            r.on_delivered(0, 0, 5);
            r.on_delivered(1, 0, 5);
        }
        r.on_delivered(0, 0, 5);
        assert_eq!(r.due(5), Some(2), "0 is everywhere, 1 is not");
        r.on_member_lost(1);
        assert_eq!(r.due(5), Some(2));
        r.on_sent(2, 6);
        assert_eq!(r.due(6), Some(3), "1 is everywhere among those left");
        // Two members are left: one delivery of 2 does not make it everywhere.
        r.on_delivered(2, 0, 7);
        r.on_sent(3, 7);
        assert_eq!(r.due(7), None);
        r.on_delivered(2, 0, 7);
        for _ in 0..2 {
            r.on_delivered(3, 0, 8);
        }
        assert!(r.is_finished());
        assert_eq!(r.into_final().members_complete, 2);
    }

    #[test]
    fn a_paced_room_sends_on_schedule() {
        let mut r = Room::new(
            ChatConfig {
                messages: 10,
                rate: Some(100.0),
                chat_window: 10,
            },
            1,
        );
        r.start(1, 1_000_000);
        assert_eq!(r.due(1_000_000), Some(0));
        r.on_sent(0, 1_000_000);
        assert_eq!(r.due(1_005_000), None);
        assert_eq!(r.next_due_us(), Some(1_010_000));
        assert_eq!(r.due(1_010_000), Some(1));
    }
}
