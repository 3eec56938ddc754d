//! The whole server's counters as `/stats` and `/metrics` show them: an entry per
//! worker slot (its latest report), the totals left by worker processes that have
//! exited, and their sum.
//!
//! With `--workers N` the supervisor builds a [`View`] once a second from its workers'
//! reports and sends it down every worker's stdin (`feed.rs`), so whichever worker
//! answers a request, it describes the whole server as of the same moment. A lone
//! process builds one from its own live counters for each request, in the same shape.
//!
//! Invariant: the sum of the entries and `retired` is the server's total, and no total
//! in it ever goes down while the supervisor lives: when a worker exits, its last
//! reported totals move to `retired` as its entry is cleared. (What it counted after its
//! last report, at most a second's worth, is lost with it.)

use serde::{Deserialize, Serialize};

use super::stats::Stats;

/// One worker slot as the supervisor last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEntry {
    /// The slot (`--worker-id`), 0 to N-1; a restarted worker keeps its slot.
    pub worker: u32,
    /// The process in the slot now, if one runs.
    pub pid: Option<u32>,
    /// Whether that process runs and has reported since it started.
    pub up: bool,
    /// Processes in this slot that have exited (and been replaced).
    pub restarts_total: u64,
    /// Its latest report (zero until the process in the slot first reports). Nested
    /// here, flattened in the `/stats` body ([`WorkerRow`]): serde cannot read a
    /// flattened map with number keys (`closes_by_code`) back.
    pub stats: Stats,
}

/// The server's counters at one moment, worker by worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The server's age when the view was taken (the supervisor's, or the lone
    /// process's), in milliseconds: rates are differences over it.
    pub uptime_ms: u64,
    /// Every worker slot.
    pub workers: Vec<WorkerEntry>,
    /// The totals of worker processes that have exited (gauges zero), so that the
    /// server's totals never go down when a worker is replaced.
    pub retired: Stats,
}

impl View {
    /// A lone process's view of itself: one entry, its own live counters.
    pub fn alone(stats: &Stats, uptime_ms: u64, pid: u32) -> View {
        View {
            uptime_ms,
            workers: vec![WorkerEntry {
                worker: 0,
                pid: Some(pid),
                up: true,
                restarts_total: 0,
                stats: stats.clone(),
            }],
            retired: Stats::default(),
        }
    }

    /// The whole server: every entry and the retired totals, added up.
    pub fn total(&self) -> Stats {
        let mut sum = self.retired.clone();
        for entry in &self.workers {
            sum.merge(&entry.stats);
        }
        sum
    }

    /// The `/stats` body, as answered by worker `worker` (process `pid`).
    pub fn report(&self, worker: u32, pid: u32) -> StatsBody<'_> {
        StatsBody {
            total: self.total(),
            uptime_secs: self.uptime_ms / 1000,
            uptime_ms: self.uptime_ms,
            pid,
            worker,
            workers: self
                .workers
                .iter()
                .map(|e| WorkerRow {
                    worker: e.worker,
                    pid: e.pid,
                    up: e.up,
                    restarts_total: e.restarts_total,
                    stats: &e.stats,
                })
                .collect(),
            retired: &self.retired,
        }
    }
}

/// The `/stats` body: the server's totals at the top (the fields `/stats` has always
/// had), then who answered, then the breakdown they add up from.
#[derive(Debug, Serialize)]
pub struct StatsBody<'a> {
    /// The whole server's counters.
    #[serde(flatten)]
    pub total: Stats,
    /// The server's age, in seconds.
    pub uptime_secs: u64,
    /// The server's age, in milliseconds.
    pub uptime_ms: u64,
    /// The process that answered this request.
    pub pid: u32,
    /// The worker slot that answered this request (0 for a lone process).
    pub worker: u32,
    /// Each worker slot's own counters.
    pub workers: Vec<WorkerRow<'a>>,
    /// The totals of workers that have exited.
    pub retired: &'a Stats,
}

/// A worker in the `/stats` body: who it is, then its counters, named as the totals.
#[derive(Debug, Serialize)]
pub struct WorkerRow<'a> {
    /// The slot.
    pub worker: u32,
    /// The process in the slot now, if one runs.
    pub pid: Option<u32>,
    /// Whether it runs and has reported.
    pub up: bool,
    /// Processes in this slot that have exited.
    pub restarts_total: u64,
    /// Its counters.
    #[serde(flatten)]
    pub stats: &'a Stats,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(worker: u32, connections: u64, accepted: u64) -> WorkerEntry {
        let mut stats = Stats {
            connections,
            accepted_total: accepted,
            ..Stats::default()
        };
        stats.closed_with(1000);
        WorkerEntry {
            worker,
            pid: Some(100 + worker),
            up: true,
            restarts_total: 0,
            stats,
        }
    }

    #[test]
    fn the_total_adds_up_the_workers_and_the_retired() {
        let mut view = View {
            uptime_ms: 5_000,
            workers: vec![entry(0, 10, 20), entry(1, 5, 7)],
            retired: Stats::default(),
        };
        view.retired.accepted_total = 100;
        let total = view.total();
        assert_eq!(total.connections, 15);
        assert_eq!(total.accepted_total, 127);
        assert_eq!(total.closes_by_code[&1000], 2);
    }

    #[test]
    fn a_view_survives_the_trip_down_a_workers_stdin() {
        let mut view = View {
            uptime_ms: 1_234,
            workers: vec![entry(0, 1, 2), entry(1, 3, 4)],
            retired: Stats::default(),
        };
        view.workers[1].stats.handshake_failed("not_found");
        view.retired.closed_with(1006);
        let line = serde_json::to_string(&view).unwrap();
        assert!(!line.contains('\n'), "one line: {line}");
        assert_eq!(serde_json::from_str::<View>(&line).unwrap(), view);
    }

    #[test]
    fn the_stats_body_keeps_the_old_fields_on_top_and_adds_the_breakdown() {
        let view = View {
            uptime_ms: 61_500,
            workers: vec![entry(0, 10, 20), entry(1, 5, 7)],
            retired: Stats::default(),
        };
        let body = serde_json::to_value(view.report(1, 4242)).unwrap();
        assert_eq!(body["connections"], 15);
        assert_eq!(body["accepted_total"], 27);
        assert_eq!(body["closes_by_code"]["1000"], 2);
        assert_eq!(body["uptime_secs"], 61);
        assert_eq!(body["uptime_ms"], 61_500);
        assert_eq!(
            (body["pid"].clone(), body["worker"].clone()),
            (4242.into(), 1.into())
        );
        assert_eq!(body["workers"][1]["connections"], 5);
        assert_eq!(body["workers"][1]["pid"], 101);
        assert_eq!(body["workers"][0]["up"], true);
        assert_eq!(body["retired"]["accepted_total"], 0);
    }

    #[test]
    fn a_lone_process_is_worker_zero_of_one() {
        let stats = Stats {
            websockets: 3,
            ..Stats::default()
        };
        let view = View::alone(&stats, 10, 77);
        assert_eq!(view.workers.len(), 1);
        assert_eq!(view.workers[0].pid, Some(77));
        assert_eq!(view.total(), stats);
    }
}
