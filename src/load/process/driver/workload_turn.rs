//! The driver's turn in a workload run (`process/workload.rs`): while holding, it opens
//! the measured period once the warm-up is over and, for churn, starts a new cycle in
//! every slot a finished one left; when the hold ends it closes the measured period, so
//! that draining is not measured.

use std::time::Duration;

use super::ramp::MAX_STARTS_PER_TURN;
use super::Driver;
use crate::load::process::conn::Layer;
use crate::load::wire::WorkloadMode;

impl<L: Layer> Driver<L> {
    /// Whether this is a churn run (its slots keep cycling while holding).
    pub(super) fn churns(&self) -> bool {
        self.env
            .workload
            .as_ref()
            .is_some_and(|w| w.cfg.mode == WorkloadMode::Churn)
    }

    /// One loop turn of the hold that ends at `until`.
    pub(super) fn workload_turn(&mut self, until: Duration) {
        let Some(w) = &self.env.workload else {
            return;
        };
        let warm_until = until.saturating_sub(self.cfg.hold) + w.cfg.warmup;
        if !w.has_begun() && self.elapsed() >= warm_until {
            self.tick_clock();
            let Driver { env, .. } = self;
            if let Some(w) = &mut env.workload {
                w.begin(env.now_us, &env.stats.counters);
            }
        }
        if self.churns() {
            let slots = self.cfg.share.connections as usize;
            let mut started = 0;
            while self.conns.len() < slots && started < MAX_STARTS_PER_TURN {
                self.start_one();
                started += 1;
            }
        }
    }

    /// The hold is over (or the run stops): the measured period ends now.
    pub(super) fn workload_end(&mut self) {
        self.tick_clock();
        let Driver { env, .. } = self;
        if let Some(w) = &mut env.workload {
            w.end(env.now_us, &env.stats.counters);
        }
    }
}
