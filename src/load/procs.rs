//! The parent of a multi-process run: starts the workers (this same binary re-executed
//! as `load … --worker K/P`), reads their JSON lines, releases the hold once every
//! worker has ramped, shows progress, passes a stop on, and always kills and reaps them.
//!
//! Why processes: RLIMIT_NOFILE caps a process's descriptors (20,000 here, hard), and a
//! million connections need a million descriptors on the client side too.
//!
//! Each worker's stdout is read by a small thread that forwards lines over a channel;
//! the parent is a supervisor, not a reactor, so blocking reads there cost nothing.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::plan::WorkerSlot;
use super::progress::Progress;
use super::report::Tally;
use super::stats::WorkerMsg;
use super::LoadArgs;

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

/// The spawned workers. Dropping it kills and reaps any still running, so no path out
/// of the parent (error, panic) leaves them behind.
struct Workers {
    children: Vec<Worker>,
}

struct Worker {
    child: Child,
    /// The control pipe; dropping it (EOF) stops the worker.
    stdin: Option<ChildStdin>,
    reaped: bool,
}

impl Workers {
    /// Sends a control line to every worker still there (one that is gone cannot care).
    fn tell(&mut self, line: &str) {
        for w in &mut self.children {
            if let Some(stdin) = &mut w.stdin {
                if writeln!(stdin, "{line}")
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    w.stdin = None;
                }
            }
        }
    }

    fn reap(&mut self, index: usize) -> String {
        let w = &mut self.children[index];
        w.stdin = None;
        w.reaped = true;
        match w.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("wait failed: {e}"),
        }
    }

    /// SIGKILL to every worker not yet reaped (by the PID we started it with).
    fn kill_all(&mut self) {
        for w in &mut self.children {
            if !w.reaped {
                let _ = w.child.kill();
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill_all();
        for w in &mut self.children {
            if !w.reaped {
                let _ = w.child.wait();
                w.reaped = true;
            }
        }
    }
}

/// Runs `procs` workers to completion, feeding `tally` and `progress`. `stop` is the
/// parent's signal flag.
pub fn run(
    args: &LoadArgs,
    procs: u32,
    stop: &Arc<AtomicBool>,
    tally: &mut Tally,
    progress: &mut Progress,
) -> Ending {
    let mut ending = Ending::default();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            ending.error = Some(format!("cannot find this executable to start workers: {e}"));
            return ending;
        }
    };
    let (tx, rx) = mpsc::channel::<(usize, Option<WorkerMsg>)>();
    let mut workers = Workers {
        children: Vec::new(),
    };
    for index in 0..procs {
        let slot = WorkerSlot {
            index,
            count: procs,
        };
        let spawned = Command::new(&exe)
            .arg("load")
            .args(args.worker_args(slot))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                // `workers` is dropped on return: the ones already started are killed.
                ending.error = Some(format!("cannot start worker {slot}: {e}"));
                return ending;
            }
        };
        let stdout = child.stdout.take().expect("stdout was piped");
        let stdin = child.stdin.take();
        let tx = tx.clone();
        let k = index as usize;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<WorkerMsg>(&line) {
                    Ok(msg) => {
                        if tx.send((k, Some(msg))).is_err() {
                            return;
                        }
                    }
                    Err(e) => log::warn!("worker {k}: unreadable line ({e}): {line:.200}"),
                }
            }
            let _ = tx.send((k, None));
        });
        workers.children.push(Worker {
            child,
            stdin,
            reaped: false,
        });
    }
    drop(tx);

    let close_timeout = args.close_timeout;
    let mut go_sent = false;
    let mut stop_sent = false;
    let mut kill_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((k, Some(msg))) => tally.on_msg(k, msg),
            Ok((k, None)) => {
                let status = workers.reap(k);
                tally.on_gone(k);
                if !tally.has_final(k) {
                    let why = format!("worker {k} ended without a result ({status})");
                    log::error!("{why}; stopping the others");
                    ending.error.get_or_insert(why);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Every worker's output has closed: all are reaped.
            Err(RecvTimeoutError::Disconnected) => break,
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
