//! What a load connection sends once open and how it checks what comes back: echoes,
//! each payload following from (seed, seq) so that no copy is kept for checking, and
//! chat messages checked against the room's sequence, byte for byte.

use super::chat;
use super::conn::{Conn, Echo, End, Next, Phase, VERIFIED};
use super::env::{Env, NEVER};
use super::failure::Failure;
use super::payload;
use crate::protocol::frame::OpCode;
use crate::protocol::receiver::DataChunk;

impl Conn {
    /// Checks a piece of the echo against what was sent, byte for byte.
    pub(super) fn on_echo_chunk(
        &mut self,
        env: &mut Env,
        chunk: &DataChunk<'_>,
    ) -> Result<(), End> {
        let size = u64::from(env.cfg.message_size);
        let Phase::Running { echo, .. } = &mut self.phase else {
            return Ok(());
        };
        if let Echo::Window { .. } = echo {
            return self.on_window_chunk(env, chunk);
        }
        let Echo::Waiting { seq, matched } = *echo else {
            return Err(Failure::UnexpectedMessage.into());
        };
        let first_of_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
        if first_of_message && (matched != 0 || chunk.opcode != payload::opcode(seq)) {
            return Err(Failure::EchoMismatch.into());
        }
        let end = u64::from(matched) + chunk.payload.len() as u64;
        if end > size || !payload::matches(self.seed, seq, u64::from(matched), chunk.payload) {
            return Err(Failure::EchoMismatch.into());
        }
        if !chunk.ends_message() {
            *echo = Echo::Waiting {
                seq,
                matched: end as u32,
            };
            return Ok(());
        }
        if end != size {
            return Err(Failure::EchoMismatch.into());
        }
        *echo = Echo::Idle {
            seq: seq.wrapping_add(1),
        };
        self.on_echo_done(env);
        self.on_verified_workload(env)
    }

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
        chat::check(
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
        let r = self.with_core(env, |core, env, link| {
            let fill = |p: &mut [u8]| chat::fill(seed, seq, stamp, p);
            core.send_message(payload::opcode(seq), size, fill, mask, &mut env.out, link)
        });
        self.settle(env, r.map_err(End::from))
    }

    pub(super) fn on_echo_done(&mut self, env: &mut Env) {
        let rtt = env.now_us32().wrapping_sub(self.since_us);
        env.stats.record_echo(u64::from(rtt), env.now_us);
        env.stats.counters.echoes += 1;
        let first = self.flags & VERIFIED == 0;
        if first {
            self.flags |= VERIFIED;
            env.stats.counters.verified += 1;
            env.stats.counters.pending -= 1;
        }
        let every = env.cfg.echo_every_ms;
        self.deadline_ms = match every {
            // Periodic echoes wait for the hold (`start_echoing`): the ramp carries only
            // the verification echoes, so it does not pay for echoes on connections that
            // are verified already (at a million, a third of the CPU of the ramp's end).
            0 => NEVER,
            _ if first => NEVER,
            _ => env.after_ms(every),
        };
    }

    /// Starts the periodic echoes of a verified, idle connection (the hold has begun):
    /// the first at a random point of the interval, so a process's echoes spread evenly
    /// over it instead of all firing together.
    pub fn start_echoing(&mut self, env: &mut Env) {
        let every = env.cfg.echo_every_ms;
        if every == 0 || self.flags & VERIFIED == 0 || !self.can_close() {
            return;
        }
        let offset = env.rng.below(u64::from(every)) as u32;
        self.deadline_ms = env.after_ms(offset);
    }

    /// Sends the next echo: a masked Text/Binary frame whose payload follows from
    /// (seed, seq), so it needs no copy kept for checking.
    pub(super) fn send_echo(&mut self, env: &mut Env) -> Result<(), End> {
        let Phase::Running { echo, .. } = &mut self.phase else {
            return Ok(());
        };
        let Echo::Idle { seq } = *echo else {
            return Ok(());
        };
        *echo = Echo::Waiting { seq, matched: 0 };
        self.since_us = env.now_us32();
        self.deadline_ms = env.after_ms(env.cfg.echo_timeout_ms);
        let seed = self.seed;
        let size = env.cfg.message_size as usize;
        let opcode = payload::opcode(seq);
        let mask = env.rng.next_u32().to_ne_bytes();
        Ok(self.with_core(env, |core, env, link| {
            let fill = |p: &mut [u8]| payload::fill(seed, seq, 0, p);
            core.send_message(opcode, size, fill, mask, &mut env.out, link)
        })?)
    }
}
