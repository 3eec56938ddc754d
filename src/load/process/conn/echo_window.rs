//! A load connection under a workload (`process/workload.rs`), once its verification echo
//! is back: in echo mode it keeps its echo window (`--echo-window`) of messages in
//! flight, checks each echo byte for byte as it streams back (in order: one TCP stream,
//! one echo each), and sends the next message as each one returns, until the measured
//! period ends; in churn mode it closes at once, so that its slot can start the next
//! cycle.
//!
//! Frames sent while a read is handled go into the process's cork and leave in one write
//! once the read is done ([`Conn::flush_cork`]): pipelined, a connection answers all the
//! echoes a read brought with one write, as a server that corks its replies does.

use std::os::fd::AsRawFd;

use super::layer::Layer;
use super::{Conn, Echo, End, Phase};
use crate::load::process::env::{Env, NEVER};
use crate::load::process::workload::Workload;
use crate::load::wire::{Failure, WorkloadMode};
use crate::protocol::frame::OpCode;
use crate::protocol::receiver::DataChunk;
use crate::protocol::transmit::Transmit;

impl<L: Layer> Conn<L> {
    /// The verification echo is back (the connection is idle): start the workload.
    pub(super) fn on_verified_workload(&mut self, env: &mut Env) -> Result<(), End> {
        let Some(w) = &env.workload else {
            return Ok(());
        };
        match w.cfg.mode {
            WorkloadMode::Churn => self.close_now(env).map_err(End::from),
            WorkloadMode::Echo if w.running => {
                let Phase::Running { echo, .. } = &mut self.phase else {
                    return Ok(());
                };
                let Echo::Idle { seq } = *echo else {
                    return Ok(());
                };
                let echo_window = w.cfg.echo_window;
                *echo = Echo::Window {
                    next: seq,
                    sent: seq,
                    matched: 0,
                };
                self.deadline_ms = env.after_ms(env.cfg.echo_timeout_ms);
                for _ in 0..echo_window {
                    self.cork_next(env);
                }
                Ok(())
            }
            WorkloadMode::Echo => Ok(()),
        }
    }

    /// Checks a piece of the oldest echo in flight; a whole one frees its place in the
    /// echo window for the next message (until the measured period ends).
    pub(super) fn on_echo_window_chunk(
        &mut self,
        env: &mut Env,
        chunk: &DataChunk<'_>,
    ) -> Result<(), End> {
        let (payload, size) = (env.cfg.payload, u64::from(env.cfg.message_size));
        let Phase::Running {
            echo:
                Echo::Window {
                    next,
                    sent,
                    matched,
                },
            ..
        } = &mut self.phase
        else {
            return Err(Failure::UnexpectedMessage.into());
        };
        if *next == *sent {
            return Err(Failure::UnexpectedMessage.into());
        }
        let first_of_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
        if first_of_message && (*matched != 0 || chunk.opcode != payload.opcode(*next)) {
            return Err(Failure::EchoMismatch.into());
        }
        let end = u64::from(*matched) + chunk.payload.len() as u64;
        if end > size || !payload.matches(self.seed, *next, u64::from(*matched), chunk.payload) {
            return Err(Failure::EchoMismatch.into());
        }
        if !chunk.ends_message() {
            *matched = end as u32;
            return Ok(());
        }
        if end != size {
            return Err(Failure::EchoMismatch.into());
        }
        let seq = *next;
        *next += 1;
        *matched = 0;
        let (next, sent) = (*next, *sent);
        let now = env.now_us32();
        let w = workload(env);
        let rtt = now.wrapping_sub(w.sent_time(self.stream.as_raw_fd(), seq));
        w.on_echo(rtt);
        let running = w.running;
        env.stats.echo_rtt_us.saturating_record(u64::from(rtt));
        env.stats.counters.echoes += 1;
        if running {
            self.deadline_ms = env.after_ms(env.cfg.echo_timeout_ms);
            self.cork_next(env);
        } else if next == sent {
            // The measured period is over and every echo is back: idle, so it may close.
            self.phase = match self.phase {
                Phase::Running { core, .. } => Phase::Running {
                    core,
                    echo: Echo::Idle { seq: next },
                },
                other => other,
            };
            self.deadline_ms = NEVER;
        }
        Ok(())
    }

    /// Builds the next message of the echo window into the cork.
    fn cork_next(&mut self, env: &mut Env) {
        let fd = self.stream.as_raw_fd();
        let seed = self.seed;
        let (payload, size) = (env.cfg.payload, env.cfg.message_size as usize);
        let now = env.now_us32();
        let Phase::Running {
            core,
            echo: Echo::Window { sent, .. },
        } = &mut self.phase
        else {
            return;
        };
        let seq = *sent;
        *sent += 1;
        let mask = env.rng.next_u32().to_ne_bytes();
        let Env { workload, out, .. } = env;
        let Some(w) = workload else {
            return;
        };
        w.on_sent(fd, seq, now);
        let fill = |p: &mut [u8]| payload.fill(seed, seq, 0, p);
        let id = fd as usize;
        core.send_message(payload.opcode(seq), size, fill, mask, id, out, &mut w.cork);
    }

    /// Writes what the last read's echoes corked (one write), or drops it when that
    /// read ended the connection (`ok` false): nothing may follow a Close, and the cork
    /// must be empty for the next connection.
    pub(super) fn flush_cork(&mut self, env: &mut Env, ok: bool) -> Result<(), Failure> {
        match &env.workload {
            Some(w) if !w.cork.is_empty() => {}
            _ => return Ok(()),
        }
        if !ok {
            workload(env).cork.clear();
            return Ok(());
        }
        self.with_core(env, |_, env, link| {
            let cork = &mut workload(env).cork;
            link.transmit(cork, &[]);
            cork.clear();
        })
    }
}

fn workload(env: &mut Env) -> &mut Workload {
    env.workload
        .as_mut()
        .expect("only a workload run has an echo window")
}
