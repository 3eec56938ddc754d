//! `serve --workers N`: N single-threaded reactor processes sharing one port.
//!
//! The supervisor binds the address first (resolving port 0) and keeps that socket
//! bound but not listening, which reserves the port; each worker binds it again with
//! SO_REUSEPORT and listens, and the kernel spreads new connections over the workers.
//! Each worker raises its own RLIMIT_NOFILE, so capacity grows with N. Workers write
//! their counters to the supervisor as one JSON line a second on stdout; the supervisor
//! restarts a worker that dies, forwards SIGINT/SIGTERM (each worker then closes its
//! connections with 1001), and logs one aggregate status line every `--stats-interval`.
//! Starting, reading and reaping the processes is [`crate::children`]'s job; this file
//! decides when (restarts, their backoff, the stop and its grace).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use socket2::{Domain, Protocol, Socket, Type};

use super::config::Config;
use super::stats::Stats;
use crate::children::{Children, Event, Stdin};
use crate::signals::{self, Again};

/// How long past `--shutdown-timeout` a worker may take to exit before SIGKILL: its
/// own timer ends its wait for the Close replies; this covers the rest of its exit.
const STOP_MARGIN: Duration = Duration::from_secs(2);
/// A worker that dies sooner than this after starting is restarted only after a pause,
/// so a worker that cannot start does not turn into a fork loop.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);
/// How often the supervisor looks after its workers when none reports.
const TICK: Duration = Duration::from_millis(100);

/// A worker slot's state beyond its process (which [`Children`] holds, in slot `id`).
struct Worker {
    id: u32,
    started: Instant,
    restart_at: Option<Instant>,
    /// The counters the worker reported last (one JSON line a second on its stdout).
    latest: Stats,
    /// Whether this worker has ever reported, which it first does once listening.
    ready: bool,
}

/// Runs the supervisor until SIGINT/SIGTERM. Workers re-run this process's command
/// line ([`crate::children`]), so `config` must be the one parsed from it.
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
            started: Instant::now(),
            restart_at: Some(Instant::now()),
            latest: Stats::default(),
            ready: false,
        })
        .collect();
    let mut children = Children::<Stats>::new("server worker", workers.len());
    let status_every = Duration::from_secs(config.stats_interval.into());
    let mut last_status = Instant::now();
    let mut last_totals = (0u64, 0u64);
    // "listening on" is said once every worker listens (its first report comes right
    // after), so a client that reads it is never refused by a port nobody listens on.
    let mut announce = true;
    while !shutdown.load(Ordering::Relaxed) {
        for w in &mut workers {
            keep_alive(w, &mut children, listen);
        }
        if announce && workers.iter().all(|w| w.ready) {
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
            let up = children.running();
            last_totals = print_status(&workers, up, last_totals, elapsed);
        }
        let tick = Instant::now() + TICK;
        while let Some((id, event)) = children.next(tick.saturating_duration_since(Instant::now()))
        {
            // A closed stdout needs nothing here: keep_alive notices the exit.
            if let Event::Line(report) = event {
                workers[id].latest = report;
                workers[id].ready = true;
            }
        }
    }
    info!("stopping {} workers", workers.len());
    // SIGTERM to every worker, a grace period for their closing handshakes, then SIGKILL.
    let grace = Duration::from_secs(config.shutdown_timeout.into()) + STOP_MARGIN;
    children.signal(libc::SIGTERM);
    children.stop(Instant::now() + grace);
    Ok(())
}

/// Starts the worker if due, and notices (and schedules the restart of) a dead one.
fn keep_alive(w: &mut Worker, children: &mut Children<Stats>, listen: SocketAddr) {
    let slot = w.id as usize;
    if let Some(pid) = children.pid(slot) {
        match children.try_wait(slot) {
            Ok(None) => return,
            Ok(Some(status)) => {
                let quick = w.started.elapsed() < RESTART_BACKOFF;
                warn!("worker {} (pid {pid}) exited: {status}; restarting", w.id);
                w.latest = Stats::default();
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
        // The supervisor's own command line, on the port it resolved (`--listen`
        // overrides itself), as worker `id`.
        let extra = [
            format!("--listen={listen}"),
            format!("--worker-id={}", w.id),
        ];
        match children.spawn(slot, &extra, Stdin::Null) {
            Ok(_) => {
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

/// Prints the aggregate line; returns the totals the next line's rates start from.
fn print_status(
    workers: &[Worker],
    up: usize,
    (handshakes_before, messages_before): (u64, u64),
    secs: f64,
) -> (u64, u64) {
    let mut sum = Stats::default();
    for w in workers {
        sum.merge(&w.latest);
    }
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
