//! The driver's part in a chat run (`--chat`): the chat starts once the ramp is over,
//! with every open connection a room member and the first of them the sender, and
//! each loop turn the sender sends what the room's window and pace allow
//! (`chat_progress.rs`), until every member has every message or one is late.

use super::stages::Stage;
use super::Driver;
use crate::load::process::conn::Layer;
use crate::load::process::conn::Next;

impl<L: Layer> Driver<L> {
    /// Starts the chat with every open connection as a member, and the first of them as
    /// the sender.
    pub(super) fn start_chat(&mut self) {
        self.tick_clock();
        let Some(room) = &mut self.env.chat else {
            return;
        };
        match self.conns.iter().find(|(_, c)| c.can_close()) {
            Some((sender, _)) => {
                room.start(self.open_at_hold_start, self.env.now_us);
                self.stage = Stage::Chatting { sender };
            }
            None => self.start_drain(),
        }
    }

    /// Sends what the room allows now; ends the chat once every member has every
    /// message, the oldest message is overdue, or the sender is gone.
    pub(super) fn chat_turn(&mut self, sender: usize) {
        self.tick_clock();
        let timeout_us = u64::from(self.cfg.conn.echo_timeout_ms) * 1000;
        let Driver {
            conns,
            env,
            deadlines,
            ..
        } = self;
        let Some(room) = &env.chat else {
            return;
        };
        if room.is_finished() {
            return self.start_drain();
        }
        if room.is_overdue(env.now_us, timeout_us) {
            log::warn!(
                "chat: a message has not reached every member within {} s \
                 (--echo-timeout); giving up",
                timeout_us as f64 / 1e6
            );
            return self.start_drain();
        }
        // Nothing is inserted after the ramp, so the sender's key cannot have been
        // reused: an empty slot means its connection ended.
        let Some(conn) = conns.get_mut(sender) else {
            log::warn!("chat: the sender's connection ended; giving up");
            return self.start_drain();
        };
        while let Some(seq) = env.chat.as_ref().and_then(|r| r.due(env.now_us)) {
            let before = conn.deadline_ms();
            if conn.send_chat(env, seq) == Next::Remove {
                conns.remove(sender);
                break;
            }
            if conn.deadline_ms() != before {
                deadlines.file(sender, conn.deadline_ms());
            }
        }
    }
}
