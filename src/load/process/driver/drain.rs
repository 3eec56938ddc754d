//! Draining: closing every open connection with few closes in flight at once (this
//! process's share of `--max-pending`), and, when the run stops, dropping the attempts
//! not yet verified.

use super::{refile, Driver};
use crate::load::process::conn::Layer;
use crate::load::process::conn::Next;

impl<L: Layer> Driver<L> {
    /// Starts closes while fewer than this process's share of `--max-pending` are under
    /// way (no limit when stopping: then speed matters more than tidiness). Walks the
    /// slab with a cursor, so the whole drain costs one pass, not one per close.
    pub(super) fn close_some(&mut self) {
        let cap = if self.stopping {
            u64::MAX
        } else {
            u64::from(self.cfg.share.max_pending)
        };
        self.tick_clock();
        let Driver {
            conns,
            env,
            drain_cursor,
            deadlines,
            ..
        } = self;
        while env.stats.counters.closing < cap && *drain_cursor < conns.capacity() {
            let key = *drain_cursor;
            *drain_cursor += 1;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if conn.can_close() {
                let before = conn.deadline_ms();
                let next = conn.begin_close(env);
                refile(deadlines, conns, key, before, next);
            }
        }
    }

    /// Drops every attempt not yet verified: the run is stopping, and their outcome
    /// would measure nothing.
    pub(super) fn abort_pending(&mut self) {
        let Driver {
            conns, env, dead, ..
        } = self;
        for (key, conn) in conns.iter_mut() {
            if conn.is_pending() && conn.abort(env) == Next::Remove {
                dead.push(key);
            }
        }
        for key in dead.drain(..) {
            conns.remove(key);
        }
    }
}
