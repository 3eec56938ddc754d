//! A chat run's result in the report: the room, the messages sent and the deliveries
//! every member must have received, with the fan-out rate and delivery latency.

use std::fmt::Write as _;

use serde::Serialize;

use super::percentiles::Percentiles;
use crate::load::wire::{ChatFinal, Counters};

/// The settings of a chat run, for the report.
#[derive(Debug, Clone)]
pub struct ChatInfo {
    /// `--chat`.
    pub room: String,
    /// `--chat-window`.
    pub chat_window: u32,
    /// `--chat-rate`.
    pub rate: Option<f64>,
}

/// A chat run's result.
#[derive(Debug, Clone, Serialize)]
pub struct ChatReport {
    /// The room every connection joined.
    pub room: String,
    /// Members when the sender began (every connection open then).
    pub members: u64,
    /// Members that received every message.
    pub members_complete: u64,
    /// The chat window: messages outstanding at most.
    #[serde(rename = "window")]
    pub chat_window: u32,
    /// The asked pace (messages per second); `None`: as fast as the chat window allows.
    pub rate: Option<f64>,
    /// `--chat-messages`.
    pub messages_requested: u64,
    /// Messages the sender sent.
    pub messages_sent: u64,
    /// Members × messages requested: every member must receive every message.
    pub deliveries_expected: u64,
    /// Messages members received whole, in order and intact.
    pub deliveries_received: u64,
    /// Deliveries expected and not received.
    pub deliveries_missing: u64,
    /// First message sent → last delivery.
    pub secs: f64,
    /// Messages sent per second over `secs`.
    pub messages_per_sec: f64,
    /// Deliveries per second over `secs`: the fan-out rate.
    pub deliveries_per_sec: f64,
    /// Send → whole message received, per delivery.
    pub delivery_us: Percentiles,
}

impl ChatReport {
    /// The chat section of a run with these settings, whose processes measured `room`
    /// and `c`, and whose deliveries took `delivery`.
    pub fn new(
        info: &ChatInfo,
        room: &ChatFinal,
        c: &Counters,
        delivery: Percentiles,
    ) -> ChatReport {
        let expected = room.members * room.messages;
        let per_sec = |n: u64| {
            if room.secs > 0.0 {
                n as f64 / room.secs
            } else {
                0.0
            }
        };
        ChatReport {
            room: info.room.clone(),
            members: room.members,
            members_complete: room.members_complete,
            chat_window: info.chat_window,
            rate: info.rate,
            messages_requested: room.messages,
            messages_sent: c.chat_sent,
            deliveries_expected: expected,
            deliveries_received: c.deliveries,
            deliveries_missing: expected.saturating_sub(c.deliveries),
            secs: room.secs,
            messages_per_sec: per_sec(c.chat_sent),
            deliveries_per_sec: per_sec(c.deliveries),
            delivery_us: delivery,
        }
    }

    /// The text report's lines.
    pub fn write_text(&self, w: &mut String) {
        let pace = match self.rate {
            Some(r) => format!("paced at {r} messages/s"),
            None => "unpaced".to_owned(),
        };
        let _ = writeln!(
            w,
            "  chat room           {}: {} members, 1 sender, window {}, {pace}",
            self.room, self.members, self.chat_window
        );
        let _ = writeln!(
            w,
            "  messages sent       {} of {}   ({:.0} messages/s)",
            self.messages_sent, self.messages_requested, self.messages_per_sec
        );
        let _ = writeln!(
            w,
            "  deliveries          {} of {} expected, {} missing   ({} members complete)",
            self.deliveries_received,
            self.deliveries_expected,
            self.deliveries_missing,
            self.members_complete
        );
        let _ = writeln!(
            w,
            "  delivery rate       {:.0} deliveries/s   (over {:.2} s, first send to last \
             delivery)",
            self.deliveries_per_sec, self.secs
        );
    }
}
