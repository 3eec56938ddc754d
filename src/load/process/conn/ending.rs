//! How a load connection ends: the closing handshake it starts (Close 1000, then the
//! server's Close and EOF), an abort when the run stops, and the count of the outcome,
//! which keeps the `open`/`pending`/`closing` gauges and a chat room's members right.

use super::layer::Layer;
use super::{Conn, Echo, End, Next, Phase, CLOSING, ESTABLISHED, VERIFIED};
use crate::load::process::env::Env;
use crate::load::wire::Failure;
use crate::protocol::close::CloseCode;

impl<L: Layer> Conn<L> {
    /// Starts the closing handshake (Close 1000); only when [`Conn::can_close`].
    pub fn begin_close(&mut self, env: &mut Env) -> Next {
        if !self.can_close() {
            return Next::Keep;
        }
        let r = self.close_now(env);
        self.settle(env, r.map_err(End::from))
    }

    /// Sends Close 1000 and waits for the server's Close, then its EOF.
    pub(super) fn close_now(&mut self, env: &mut Env) -> Result<(), Failure> {
        self.flags |= CLOSING;
        self.deadline_ms = env.after_ms(env.cfg.close_timeout_ms);
        env.stats.counters.closing += 1;
        let mask = env.rng.next_u32().to_ne_bytes();
        self.with_core(env, |core, _, link| {
            core.close(CloseCode::NORMAL, mask, link)
        })
    }

    /// Drops an unfinished connection because the run is stopping.
    pub fn abort(&mut self, env: &mut Env) -> Next {
        env.stats.counters.aborted += 1;
        self.release(env);
        Next::Remove
    }

    pub(super) fn settle(&mut self, env: &mut Env, r: Result<(), End>) -> Next {
        match r {
            Ok(()) => Next::Keep,
            Err(end) => self.finish(env, end),
        }
    }

    /// Counts how the connection ended. A failure while closing is an unclean close,
    /// not a failed connection: it was verified and held already.
    pub(super) fn finish(&mut self, env: &mut Env, end: End) -> Next {
        let closing = self.flags & CLOSING != 0;
        let c = &mut env.stats.counters;
        match end {
            End::Clean => c.closed_clean += 1,
            End::CloseTimeout => c.close_timeout += 1,
            End::Fail(why) if closing => {
                log::debug!("unclean close: {why}");
                c.close_unclean += 1;
            }
            End::Fail(why) => {
                c.fail(why);
                if self.flags & ESTABLISHED == 0 {
                    env.ramp_cap.observe_failure();
                }
            }
        }
        self.release(env);
        Next::Remove
    }

    fn release(&mut self, env: &mut Env) {
        if let (
            Phase::Running {
                echo: Echo::Chat { next, .. },
                ..
            },
            Some(room),
        ) = (self.phase, &mut env.chat)
        {
            if self.flags & CLOSING == 0 {
                room.on_member_lost(next);
            }
        }
        // Its deflate context, if it kept one, goes before its id (the socket's)
        // can name another connection.
        if let Some(codec) = &mut env.out.deflate {
            codec.forget(self.id());
        }
        let c = &mut env.stats.counters;
        if self.flags & ESTABLISHED != 0 {
            c.open -= 1;
        }
        if self.flags & VERIFIED == 0 {
            c.pending -= 1;
        }
        if self.flags & CLOSING != 0 {
            c.closing -= 1;
        }
    }

    pub(super) fn eof(&self) -> End {
        match self.phase {
            Phase::Running { core, .. } if core.close_answered() => End::Clean,
            _ => Failure::ServerEof.into(),
        }
    }
}
