//! A load connection's echoes: the warm-up's (`--warmup-bytes`), the verification echo
//! that proves it live, and the hold's periodic ones (`--echo-every`). Each payload
//! follows from (seed, seq), so no copy is kept for checking, and each echo is checked
//! byte for byte as it streams back (a compressed one once it is whole and inflated,
//! `compressed.rs`).

use super::layer::Layer;
use super::{Conn, Echo, End, Phase, VERIFIED};
use crate::load::process::env::{Env, NEVER};
use crate::load::wire::Failure;
use crate::protocol::frame::OpCode;
use crate::protocol::receiver::DataChunk;

impl<L: Layer> Conn<L> {
    /// Checks a piece of the echo against what was sent, byte for byte.
    pub(super) fn on_echo_chunk(
        &mut self,
        env: &mut Env,
        chunk: &DataChunk<'_>,
    ) -> Result<(), End> {
        if chunk.compressed {
            return self.on_compressed_chunk(env, chunk);
        }
        let Phase::Running { echo, .. } = &mut self.phase else {
            return Ok(());
        };
        if let Echo::Window { .. } = echo {
            return self.on_echo_window_chunk(env, chunk);
        }
        let Echo::Waiting { seq, matched } = *echo else {
            return Err(Failure::UnexpectedMessage.into());
        };
        let (payload, size) = env.cfg.echo_shape(seq);
        let size = u64::from(size);
        let first_of_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
        if first_of_message && (matched != 0 || chunk.opcode != payload.opcode(seq)) {
            return Err(Failure::EchoMismatch.into());
        }
        let end = u64::from(matched) + chunk.payload.len() as u64;
        if end > size || !payload.matches(self.seed, seq, u64::from(matched), chunk.payload) {
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
        if seq < env.cfg.warmup_echoes() {
            // A warm-up echo is not an echo of the run: the next one (or the
            // verification echo) goes at once.
            return self.send_echo(env);
        }
        self.on_echo_done(env);
        self.on_verified_workload(env)
    }

    /// An echo came back whole: count it, verify the connection if it was the first,
    /// and set the deadline of the next periodic one.
    fn on_echo_done(&mut self, env: &mut Env) {
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
        let (payload, size) = env.cfg.echo_shape(seq);
        let opcode = payload.opcode(seq);
        let mask = env.rng.next_u32().to_ne_bytes();
        let id = self.id();
        Ok(self.with_core(env, |core, env, link| {
            let fill = |p: &mut [u8]| payload.fill(seed, seq, 0, p);
            core.send_message(opcode, size as usize, fill, mask, id, &mut env.out, link)
        })?)
    }
}
