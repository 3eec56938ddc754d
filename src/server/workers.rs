//! `serve --workers N`: N single-threaded reactor processes sharing one port.
//!
//! The supervisor binds the address first (resolving port 0) and keeps that socket
//! bound but not listening, which reserves the port; each worker binds it again with
//! SO_REUSEPORT and listens, and the kernel spreads new connections over the workers.
//! Each worker raises its own RLIMIT_NOFILE, so capacity grows with N. Workers write
//! their counters to the supervisor as one JSON line a second on stdout; the supervisor
//! restarts a worker that dies, forwards SIGINT/SIGTERM (each worker then closes its
//! connections with 1001), and logs one aggregate status line every `--stats-interval`.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use socket2::{Domain, Protocol, Socket, Type};

use super::config::Config;
use super::stats::Stats;
use crate::signals::{self, Again};

/// How long past `--shutdown-timeout` a worker may take to exit before SIGKILL: its
/// own timer ends its wait for the Close replies; this covers the rest of its exit.
const STOP_MARGIN: Duration = Duration::from_secs(2);
/// A worker that dies sooner than this after starting is restarted only after a pause,
/// so a worker that cannot start does not turn into a fork loop.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

struct Worker {
    id: u32,
    child: Option<Child>,
    started: Instant,
    restart_at: Option<Instant>,
    /// The counters the worker reported last (one JSON line a second on its stdout).
    latest: Arc<Mutex<Stats>>,
    /// Whether this worker has ever reported, which it first does once listening.
    ready: Arc<AtomicBool>,
}

/// Runs the supervisor until SIGINT/SIGTERM.
pub fn supervise(config: Config) -> io::Result<()> {
    let reserve = Socket::new(
        Domain::for_address(config.listen),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    reserve.set_reuse_address(true)?;
    reserve.set_reuse_port(true)?;
    reserve.bind(&config.listen.into())?;
    let listen = reserve
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP address"))?;
    let shutdown = signals::stop_flag(Again::Ignored)?;
    let mut workers: Vec<Worker> = (0..config.workers)
        .map(|id| Worker {
            id,
            child: None,
            started: Instant::now(),
            restart_at: Some(Instant::now()),
            latest: Arc::default(),
            ready: Arc::default(),
        })
        .collect();
    let status_every = Duration::from_secs(config.stats_interval.into());
    let mut last_status = Instant::now();
    let mut last_totals = (0u64, 0u64);
    // "listening on" is said once every worker listens (its first report comes right
    // after), so a client that reads it is never refused by a port nobody listens on.
    let mut announce = true;
    while !shutdown.load(Ordering::Relaxed) {
        for w in &mut workers {
            keep_alive(w, &config, listen);
        }
        if announce && workers.iter().all(|w| w.ready.load(Ordering::Relaxed)) {
            info!(
                "listening on {listen} with {} worker processes",
                config.workers
            );
            info!("chat rooms are per worker: members on different workers do not meet");
            announce = false;
        }
        if !status_every.is_zero() && last_status.elapsed() >= status_every {
            let elapsed = last_status.elapsed().as_secs_f64();
            last_status = Instant::now();
            last_totals = print_status(&workers, last_totals, elapsed);
        }
        thread::sleep(Duration::from_millis(100));
    }
    info!("stopping {} workers", workers.len());
    let grace = Duration::from_secs(config.shutdown_timeout.into()) + STOP_MARGIN;
    stop_all(&mut workers, grace);
    Ok(())
}

/// Starts the worker if due, and notices (and schedules the restart of) a dead one.
fn keep_alive(w: &mut Worker, config: &Config, listen: SocketAddr) {
    if let Some(child) = w.child.as_mut() {
        match child.try_wait() {
            Ok(None) => return,
            Ok(Some(status)) => {
                let quick = w.started.elapsed() < RESTART_BACKOFF;
                warn!(
                    "worker {} (pid {}) exited: {status}; restarting",
                    w.id,
                    child.id()
                );
                w.child = None;
                *w.latest.lock().expect("report lock") = Stats::default();
                w.restart_at = Some(
                    Instant::now()
                        + if quick {
                            RESTART_BACKOFF
                        } else {
                            Duration::ZERO
                        },
                );
            }
            Err(e) => {
                error!("worker {}: {e}", w.id);
                return;
            }
        }
    }
    if w.restart_at.is_some_and(|at| Instant::now() >= at) {
        match spawn(w, config, listen) {
            Ok(child) => {
                w.child = Some(child);
                w.started = Instant::now();
                w.restart_at = None;
            }
            Err(e) => {
                error!("cannot start worker {}: {e}", w.id);
                w.restart_at = Some(Instant::now() + RESTART_BACKOFF);
            }
        }
    }
}

fn spawn(w: &Worker, config: &Config, listen: SocketAddr) -> io::Result<Child> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(config.worker_args(listen, w.id))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let latest = Arc::clone(&w.latest);
    let ready = Arc::clone(&w.ready);
    // A reader thread per worker: the supervisor is not a reactor and need not be one.
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(report) = serde_json::from_str::<Stats>(&line) {
                *latest.lock().expect("report lock") = report;
                ready.store(true, Ordering::Relaxed);
            }
        }
    });
    Ok(child)
}

/// Prints the aggregate line; returns the totals the next line's rates start from.
fn print_status(
    workers: &[Worker],
    (handshakes_before, messages_before): (u64, u64),
    secs: f64,
) -> (u64, u64) {
    let mut sum = Stats::default();
    for w in workers {
        sum.merge(&w.latest.lock().expect("report lock"));
    }
    let up = workers.iter().filter(|w| w.child.is_some()).count();
    let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
    info!(
        "workers {up}/{} | {:.0} handshakes/s, {:.0} messages/s | {}",
        workers.len(),
        rate(sum.handshakes_total, handshakes_before),
        rate(sum.messages_in_total, messages_before),
        sum.status_line()
    );
    (sum.handshakes_total, sum.messages_in_total)
}

/// SIGTERM to every worker, a grace period for their closing handshakes, then SIGKILL.
fn stop_all(workers: &mut [Worker], grace: Duration) {
    for child in workers.iter().filter_map(|w| w.child.as_ref()) {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill has no memory preconditions; the pid is our own child, not
            // yet reaped, so it cannot have been reused by another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + grace;
    for w in workers.iter_mut() {
        let Some(child) = w.child.as_mut() else {
            continue;
        };
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// Called in a worker at start: die with the supervisor (Linux PR_SET_PDEATHSIG), so no
/// worker outlives it even if the supervisor is killed without a chance to stop them.
pub fn follow_supervisor() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    // The supervisor may have died before the prctl: then we were re-parented.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        std::process::exit(0);
    }
}
