//! The parent of a multi-process run: starts the workers (this same command line re-run
//! with `--worker K/P` appended), a few at a time (`--ramp-procs`: the next starts as
//! one finishes its ramp), feeds their JSON lines to the tally, releases the hold once
//! every worker has ramped, shows progress, passes a stop on, and kills the workers
//! that do not finish after it.
//!
//! Why a few at a time: on two cores, 51 processes each ramping a fiftieth of a million
//! connections wake for a handful of events at a time and queue behind each other;
//! four at a time take theirs in batches (measured at 100,000 connections: 6 processes
//! ramp 10-13% faster than 30, with half the handshake p99).
//!
//! Why processes: RLIMIT_NOFILE caps a process's descriptors (20,000 here, hard), and a
//! million connections need a million descriptors on the client side too.
//!
//! Starting, reading and reaping the processes is [`crate::children`]'s job (which also
//! kills and reaps them on any path out, error and panic included); this file runs the
//! protocol with them: `go` and `stop` on their control pipes, results on their stdout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::plan::WorkerSlot;
use super::progress::Progress;
use super::report::Tally;
use super::timeline::unix_ms;
use super::wire::WorkerMsg;
use crate::children::{Children, Event, Stdin};

/// Slack after a stop before workers that have not finished are killed: on top of the
/// close timeout, time to write and read their final line.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How the workers' run ended, beyond what the tally holds.
#[derive(Debug, Default)]
pub struct Ending {
    /// A stop signal arrived.
    pub interrupted: bool,
    /// Something went wrong with the workers themselves.
    pub error: Option<String>,
}

/// Runs `procs` workers to completion, `at_once` ramping together (0: all), feeding
/// `tally` and `progress`. `stop` is the parent's signal flag; `close_timeout` is the
/// workers' (`--close-timeout`).
pub fn run(
    procs: u32,
    at_once: u32,
    close_timeout: Duration,
    stop: &Arc<AtomicBool>,
    tally: &mut Tally,
    progress: &mut Progress,
) -> Ending {
    let mut ending = Ending::default();
    let mut workers = Children::<WorkerMsg>::new("load worker", procs as usize);
    let at_once = if at_once == 0 {
        procs
    } else {
        at_once.min(procs)
    };
    // Workers started so far: 0 .. next.
    let mut next = 0;
    while next < at_once {
        if let Err(e) = start(&mut workers, tally, procs, &mut next) {
            // `workers` is dropped on return: the ones already started are killed.
            ending.error = Some(e);
            return ending;
        }
    }

    let mut go_sent = false;
    let mut stop_sent = false;
    let mut kill_at: Option<Instant> = None;
    // Until every worker's output has closed and it is reaped.
    while workers.running() > 0 {
        let mut one_done = false;
        match workers.next(Duration::from_millis(100)) {
            Some((k, Event::Line(msg))) => {
                one_done = matches!(msg, WorkerMsg::Ramped { .. });
                tally.on_msg(k, msg);
            }
            Some((k, Event::Closed)) => {
                one_done = true;
                let status = match workers.wait(k) {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("wait failed: {e}"),
                };
                tally.on_gone(k);
                if !tally.has_final(k) {
                    let why = format!("worker {k} ended without a result ({status})");
                    log::error!("{why}; stopping the others");
                    ending.error.get_or_insert(why);
                }
            }
            None => {}
        }
        if stop.load(Ordering::Relaxed) {
            ending.interrupted = true;
        }
        // One ramp is over (or a worker is gone): the next worker starts its own.
        let stopping = ending.interrupted || ending.error.is_some();
        if one_done && next < procs && !stopping {
            if let Err(e) = start(&mut workers, tally, procs, &mut next) {
                log::error!("{e}; stopping the others");
                ending.error = Some(e);
            }
        }
        if !go_sent && tally.all_ramped() {
            // The barrier: the hold starts everywhere at once, so all connections of
            // all workers are open together.
            workers.tell("go");
            go_sent = true;
        }
        if !stop_sent && (ending.interrupted || ending.error.is_some()) {
            workers.tell("stop");
            stop_sent = true;
            kill_at = Some(Instant::now() + close_timeout + STOP_GRACE);
        }
        if kill_at.is_some_and(|at| Instant::now() >= at) {
            log::error!("workers did not finish after stop; killing them");
            workers.kill_all();
            kill_at = None;
        }
        progress.update(&tally.totals());
    }
    ending
}

/// Starts worker `next` of `procs` (and counts it), telling the timeline.
fn start(
    workers: &mut Children<WorkerMsg>,
    tally: &mut Tally,
    procs: u32,
    next: &mut u32,
) -> Result<(), String> {
    let slot = WorkerSlot {
        index: *next,
        count: procs,
    };
    *next += 1;
    let extra = ["--worker".to_owned(), slot.to_string()];
    if let Some(t) = &mut tally.timeline {
        t.started(slot.index as usize, unix_ms());
    }
    workers
        .spawn(slot.index as usize, &extra, Stdin::Control)
        .map(|_| ())
        .map_err(|e| format!("cannot start worker {slot}: {e}"))
}
