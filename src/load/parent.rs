//! The parent of a multi-process run: starts the workers (this same command line re-run
//! with `--worker K/P` appended), feeds their JSON lines to the tally, releases the
//! hold once every worker has ramped, shows progress, passes a stop on, and kills the
//! workers that do not finish after it.
//!
//! Why processes: RLIMIT_NOFILE caps a process's descriptors (20,000 here, hard), and a
//! million connections need a million descriptors on the client side too. With
//! `--hosts`, the workers run on other hosts, each started through `--remote` (ssh, `ip
//! netns exec`), whose pipes carry the same lines.
//!
//! Starting, reading and reaping the processes is [`crate::children`]'s job (which also
//! kills and reaps them on any path out, error and panic included); this file runs the
//! protocol with them: `go` and `stop` on their control pipes, results on their stdout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::hosts::{self, LoadHost};
use super::process::plan::WorkerSlot;
use super::process::seconds::unix_ms;
use super::progress::Progress;
use super::report::Tally;
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

/// The workers of a run: how many, and where they run.
#[derive(Debug, Clone, Copy)]
pub struct Workers<'a> {
    /// Worker processes.
    pub count: u32,
    /// `--hosts`: on those hosts, through `--remote`; `None`: here.
    pub placement: Option<Placement<'a>>,
}

/// `--hosts` and `--remote`.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// The load hosts, in `--hosts` order.
    pub hosts: &'a [LoadHost],
    /// The command prefix with `{host}` in it.
    pub remote: &'a str,
}

/// Runs the workers to completion, feeding `tally` and `progress`. `stop` is the
/// parent's signal flag; `close_timeout` is the workers' (`--close-timeout`).
pub fn run(
    workers_of: Workers<'_>,
    close_timeout: Duration,
    stop: &Arc<AtomicBool>,
    tally: &mut Tally,
    progress: &mut Progress,
) -> Ending {
    let mut ending = Ending::default();
    let procs = workers_of.count;
    let mut workers = Children::<WorkerMsg>::new("load worker", procs as usize);
    for index in 0..procs {
        let slot = WorkerSlot {
            index,
            count: procs,
        };
        let extra = ["--worker".to_owned(), slot.to_string()];
        if let Some(t) = &mut tally.timeline {
            t.started(index as usize, unix_ms());
        }
        let started = match workers_of.placement {
            None => workers.spawn(index as usize, &extra, Stdin::Control),
            Some(p) => {
                let host = hosts::host_of(p.hosts, slot);
                tally.place(index as usize, hosts::source_offset(p.hosts, slot));
                hosts::remote_prefix(p.remote, &host.name)
                    .map_err(std::io::Error::other)
                    .and_then(|prefix| {
                        workers.spawn_via(index as usize, &prefix, &extra, Stdin::Control)
                    })
            }
        };
        if let Err(e) = started {
            // `workers` is dropped on return: the ones already started are killed.
            ending.error = Some(format!("cannot start worker {slot}: {e}"));
            return ending;
        }
    }

    let mut go_sent = false;
    let mut stop_sent = false;
    let mut kill_at: Option<Instant> = None;
    // Until every worker's output has closed and it is reaped.
    while workers.running() > 0 {
        match workers.next(Duration::from_millis(100)) {
            Some((k, Event::Line(WorkerMsg::Clock { unix_ms: theirs }))) => {
                tally.on_clock(k, theirs, unix_ms());
            }
            Some((k, Event::Line(msg))) => tally.on_msg(k, msg),
            Some((k, Event::Closed)) => {
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
