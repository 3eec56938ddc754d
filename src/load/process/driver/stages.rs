//! The run's stages and the moves between them: `Ramping` (attempts start, paced and
//! capped) → `AwaitingGo` (all settled; the parent releases every worker at once, so
//! the hold has all connections open together) → `Holding` → `Draining` (at most
//! `max_pending` closes in flight, so a million closes do not swamp the server into
//! close timeouts) → done when the slab is empty. A stop (signal, parent gone) jumps to
//! `Draining`, aborting pending attempts and closing the rest at once. In chat mode
//! `Chatting` replaces `Holding`: one member sends the room's messages as the chat
//! window and pace allow (`chat_progress.rs`) until all have arrived or one is late.

use std::time::Duration;

use super::Driver;
use crate::load::process::conn::Layer;
use crate::load::wire::WorkerMsg;

/// Where the run is (see the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Ramping,
    AwaitingGo,
    Holding {
        until: Duration,
    },
    /// Chat mode: the sender (a slab key) sends while members receive.
    Chatting {
        sender: usize,
    },
    Draining,
}

impl<L: Layer> Driver<L> {
    /// Every attempt has settled: tells the parent, then waits for its go or holds.
    pub(super) fn end_ramp(&mut self, emit: &mut dyn FnMut(WorkerMsg) -> bool) {
        if !self.report_ramped(emit) {
            self.stop();
        } else if self.cfg.wait_for_go {
            self.stage = Stage::AwaitingGo;
        } else {
            self.start_hold();
        }
    }

    pub(super) fn start_hold(&mut self) {
        self.open_at_hold_start = self.env.stats.counters.open;
        self.tick_clock();
        for (key, conn) in self.conns.iter_mut() {
            conn.start_echoing(&mut self.env);
            self.deadlines.file(key, conn.deadline_ms());
        }
        if self.env.chat.is_some() {
            self.start_chat();
        } else if (self.open_at_hold_start == 0 && !self.churns()) || self.cfg.hold.is_zero() {
            self.start_drain();
        } else {
            self.stage = Stage::Holding {
                until: self.elapsed() + self.cfg.hold,
            };
            self.env.stats.hold_us = Some((self.epoch.elapsed().as_micros() as u64, u64::MAX));
        }
    }

    /// Begins closing every open connection (see [`Driver::close_some`]). When
    /// stopping, attempts not yet verified are dropped first.
    pub(super) fn start_drain(&mut self) {
        self.workload_end();
        self.stage = Stage::Draining;
        if let Some((_, end)) = &mut self.env.stats.hold_us {
            *end = (*end).min(self.epoch.elapsed().as_micros() as u64);
        }
        self.drain_cursor = 0;
        if self.stopping {
            self.abort_pending();
        }
        self.close_some();
    }

    pub(super) fn stop(&mut self) {
        self.stopping = true;
        if self.stage != Stage::Draining {
            self.start_drain();
        }
    }
}
