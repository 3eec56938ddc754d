//! The ramp: starting connection attempts, as fast as the pacer (`--rate`) and the
//! in-flight cap (`--max-pending`, steered by handshake latency) allow, each bound to
//! its source address, until this process's share has started and settled.

use mio::{Interest, Token};

use super::Driver;
use crate::load::process::conn::{Conn, Layer};
use crate::load::process::socket;

/// Attempts started per loop turn at most, so events keep being served while unpaced
/// attempts pour out.
pub(super) const MAX_STARTS_PER_TURN: u32 = 256;

impl<L: Layer> Driver<L> {
    /// Every attempt has started and has been verified or has failed.
    pub(super) fn ramp_done(&self) -> bool {
        self.started == self.cfg.share.connections && self.env.stats.counters.pending == 0
    }

    pub(super) fn start_connections(&mut self) {
        let share = self.cfg.share;
        let allowed = self
            .pacer
            .allowed(self.elapsed())
            .min(u64::from(share.connections));
        let due = allowed.saturating_sub(u64::from(self.started));
        let pending = self.env.stats.counters.pending;
        let room = self.env.ramp_cap.limit().saturating_sub(pending);
        let n = due.min(room).min(u64::from(MAX_STARTS_PER_TURN));
        for _ in 0..n {
            self.start_one();
        }
    }

    /// Starts attempt number `started`: socket, source bind, connect, register.
    pub(super) fn start_one(&mut self) {
        let global = self.cfg.share.first + u64::from(self.started);
        self.started += 1;
        self.env.stats.counters.attempted += 1;
        let (source, ip) = match self.cfg.sources {
            Some(range) => {
                let i = range.index_for(global);
                (i, Some(range.get(u32::from(i))))
            }
            None => (0, None),
        };
        // The handshake latency starts here, not at the top of a turn that may start
        // hundreds of sockets.
        self.tick_clock();
        let layer = match L::new(&mut self.env) {
            Ok(layer) => layer,
            Err(why) => {
                self.env.stats.counters.fail(why);
                return;
            }
        };
        let mut stream = match socket::start_connect(ip, self.cfg.target_for(global)) {
            Ok(stream) => stream,
            Err(why) => {
                self.env.stats.counters.fail(why);
                return;
            }
        };
        let entry = self.conns.vacant_entry();
        // Both interests, once, for the connection's whole life: edge-triggered
        // WRITABLE fires only when the send buffer drains, so it costs nothing while
        // idle, and never re-registering saves a syscall per state change.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(entry.key()), interest)
        {
            self.env.stats.counters.fail(socket::io_failure(&e));
            return;
        }
        let key = entry.key();
        let conn = entry.insert(Conn::new(stream, source, layer, &mut self.env));
        self.deadlines.file(key, conn.deadline_ms());
    }
}
