//! A load connection as a chat room member: it checks every message it receives
//! against the room's sequence, byte for byte (`chat_message.rs`), and reports each
//! delivery to the room; one member, the sender, also sends the room's messages.

use super::layer::Layer;
use super::{Conn, Echo, End, Next, Phase};
use crate::load::process::chat_message;
use crate::load::process::env::Env;
use crate::load::process::payload;
use crate::load::wire::Failure;
use crate::protocol::frame::OpCode;
use crate::protocol::receiver::DataChunk;

impl<L: Layer> Conn<L> {
    /// Checks a piece of a chat message: the next in sequence, byte for byte, with the
    /// opcode it was sent with; a whole one is a delivery.
    pub(super) fn on_chat_chunk(
        &mut self,
        env: &mut Env,
        chunk: &DataChunk<'_>,
    ) -> Result<(), Failure> {
        let size = u64::from(env.cfg.message_size);
        let (now_us, now_us32) = (env.now_us, env.now_us32());
        let (Phase::Running { echo, .. }, Some(room)) = (&mut self.phase, &mut env.chat) else {
            return Err(Failure::UnexpectedMessage);
        };
        let Echo::Chat { next, matched } = *echo else {
            return Err(Failure::UnexpectedMessage);
        };
        if next >= room.messages() {
            // Every message has arrived already: this one is one too many.
            return Err(Failure::ChatOutOfOrder);
        }
        let first_of_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
        if first_of_message {
            if matched != 0 || chunk.opcode != payload::opcode(next) {
                return Err(Failure::ChatMismatch);
            }
            self.since_us = 0;
        }
        let end = u64::from(matched) + chunk.payload.len() as u64;
        if end > size {
            return Err(Failure::ChatMismatch);
        }
        chat_message::check(
            room.seed(),
            next,
            u64::from(matched),
            chunk.payload,
            &mut self.since_us,
        )?;
        if !chunk.ends_message() {
            *echo = Echo::Chat {
                next,
                matched: end as u32,
            };
            return Ok(());
        }
        if end != size {
            return Err(Failure::ChatMismatch);
        }
        *echo = Echo::Chat {
            next: next + 1,
            matched: 0,
        };
        room.on_delivered(next, now_us32.wrapping_sub(self.since_us), now_us);
        env.stats.counters.deliveries += 1;
        Ok(())
    }

    /// Sends chat message `seq` to the room (this connection is the sender), stamped
    /// with the time now.
    pub fn send_chat(&mut self, env: &mut Env, seq: u32) -> Next {
        let stamp = env.now_us32();
        let Some(room) = &mut env.chat else {
            return Next::Keep;
        };
        let seed = room.seed();
        room.on_sent(seq, env.now_us);
        env.stats.counters.chat_sent += 1;
        let size = env.cfg.message_size as usize;
        let mask = env.rng.next_u32().to_ne_bytes();
        let id = self.id();
        let r = self.with_core(env, |core, env, link| {
            let fill = |p: &mut [u8]| chat_message::fill(seed, seq, stamp, p);
            let opcode = payload::opcode(seq);
            core.send_message(opcode, size, fill, mask, id, &mut env.out, link)
        });
        self.settle(env, r.map_err(End::from))
    }
}
