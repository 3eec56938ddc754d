//! What a load process tells its parent: the ramp's end and periodic progress (the
//! counters so far) while it runs, and the final measures when it is done. A parent
//! that no longer listens stops the run.

use super::Driver;
use crate::load::process::conn::Layer;
use crate::load::wire::{encode_histogram, WorkerFinal, WorkerMsg};

impl<L: Layer> Driver<L> {
    /// Sends the counters at the end of the ramp; returns whether anyone listened.
    pub(super) fn report_ramped(&self, emit: &mut dyn FnMut(WorkerMsg) -> bool) -> bool {
        let counters = self.env.stats.counters.clone();
        emit(WorkerMsg::Ramped { counters })
    }

    /// Sends the counters so far.
    pub(super) fn report_progress(&mut self, emit: &mut dyn FnMut(WorkerMsg) -> bool) {
        let counters = self.env.stats.counters.clone();
        if !emit(WorkerMsg::Progress { counters }) && !self.stopping {
            self.stop();
        }
    }

    pub(super) fn into_final(self) -> WorkerFinal {
        let stats = self.env.stats;
        WorkerFinal {
            counters: stats.counters,
            open_at_hold_start: self.open_at_hold_start,
            // Churn starts more attempts than slots.
            not_attempted: u64::from(self.cfg.share.connections.saturating_sub(self.started)),
            per_source: stats.per_source,
            handshake_us: encode_histogram(&stats.handshake_us),
            echo_rtt_us: encode_histogram(&stats.echo_rtt_us),
            hold_echo_rtt_us: encode_histogram(&stats.hold_echo_rtt_us),
            chat: self.env.chat.map(|room| room.into_final()),
            workload: self.env.workload.map(|w| w.into_final()),
            tls: self.env.tls.and_then(|t| t.session),
        }
    }
}
