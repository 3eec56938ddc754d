//! `serve --workers N`: N single-threaded reactor processes sharing one port.
//!
//! The supervisor binds the address first (resolving port 0) and keeps that socket
//! bound but not listening, which reserves the port; each worker binds it again with
//! SO_REUSEPORT and listens, and the kernel spreads new connections over the workers.
//! Each worker raises its own RLIMIT_NOFILE, so capacity grows with N. Workers write
//! their counters to the supervisor as one JSON line a second on stdout; once a second
//! the supervisor sends the whole server's counters (a [`View`]: every worker's latest
//! report, and what exited workers left) back down every worker's stdin, so that any
//! worker answers `/stats` and `/metrics` for the whole server (`feed.rs`). It restarts
//! a worker that dies, forwards SIGINT/SIGTERM (each worker then closes its connections
//! with 1001) and SIGHUP (each worker reloads its certificate), hands every worker it
//! starts the session-ticket key of the moment (`tls::tickets`), and logs one aggregate
//! status line every `--stats-interval`.
//! Starting, reading and reaping the processes is [`crate::children`]'s job; this file
//! decides when (restarts, their backoff, the stop and its grace).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use socket2::{Domain, Protocol, Socket, Type};

use super::config::Config;
use super::feed;
use super::stats::Stats;
use super::view::{View, WorkerEntry};
use crate::children::{Children, Event, Stdin};
use crate::signals::{self, Again};
use crate::tls::tickets::{TicketKeys, TICKET_KEY_ENV};

/// How long past `--shutdown-timeout` a worker may take to exit before SIGKILL: its
/// own timer ends its wait for the Close replies; this covers the rest of its exit.
const STOP_MARGIN: Duration = Duration::from_secs(2);
/// A worker that dies sooner than this after starting is restarted only after a pause,
/// so a worker that cannot start does not turn into a fork loop.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);
/// How long "listening on" waits for every worker's bus to connect.
const BUS_WAIT: Duration = Duration::from_secs(10);
/// How often the supervisor looks after its workers when none reports.
const TICK: Duration = Duration::from_millis(100);
/// The supervisor sends its workers the whole server's counters as soon as every worker
/// has reported since the last view (so each entry is at most a report period old), and
/// at least this often, even when one does not report (a long fan-out, a restart).
const VIEW_INTERVAL: Duration = Duration::from_secs(1);

/// A worker slot's state beyond its process (which [`Children`] holds, in slot `id`).
struct Worker {
    id: u32,
    started: Instant,
    restart_at: Option<Instant>,
    /// The counters the worker reported last (one JSON line a second on its stdout).
    latest: Stats,
    /// Whether this worker has ever reported, which it first does once listening.
    ready: bool,
    /// Whether the process in the slot now has reported since it started.
    reporting: bool,
    /// Whether it has reported since the last view was sent.
    fresh: bool,
    /// Processes in this slot that have exited.
    restarts_total: u64,
}

/// What the supervisor keeps of its workers beyond their slots: the feed of views down
/// their stdin, and the totals that workers which exited left behind.
struct Supervision {
    children: Children<Stats>,
    /// The session-ticket keys every worker shares, with TLS.
    tickets: Option<std::sync::Arc<TicketKeys>>,
    feed: feed::Sender,
    retired: Stats,
    started: Instant,
}

impl Supervision {
    /// The whole server's counters now.
    fn view(&self, workers: &[Worker]) -> View {
        View {
            uptime_ms: self.started.elapsed().as_millis() as u64,
            workers: workers
                .iter()
                .map(|w| {
                    let pid = self.children.pid(w.id as usize);
                    WorkerEntry {
                        worker: w.id,
                        pid,
                        up: pid.is_some() && w.reporting,
                        restarts_total: w.restarts_total,
                        stats: w.latest.clone(),
                    }
                })
                .collect(),
            retired: self.retired.clone(),
        }
    }
}

/// Runs the supervisor until SIGINT/SIGTERM. Workers re-run this process's command
/// line ([`crate::children`]), so `config` must be the one parsed from it.
pub fn supervise(config: Config) -> io::Result<()> {
    let tickets = match config.tls_files() {
        Some(files) => {
            let keys = TicketKeys::fresh(config.tls_ticket_rotation).map_err(io::Error::other)?;
            let keys = std::sync::Arc::new(keys);
            // A certificate that does not load fails here, once, not in every worker.
            crate::tls::server_config(&files, keys.clone()).map_err(io::Error::other)?;
            Some(keys)
        }
        None => None,
    };
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
    let reload = signals::reload_flag()?;
    let mut workers: Vec<Worker> = (0..config.workers)
        .map(|id| Worker {
            id,
            started: Instant::now(),
            restart_at: Some(Instant::now()),
            latest: Stats::default(),
            ready: false,
            reporting: false,
            fresh: false,
            restarts_total: 0,
        })
        .collect();
    let mut sup = Supervision {
        children: Children::<Stats>::new("server worker", workers.len()),
        tickets,
        feed: feed::Sender::new(workers.len()),
        retired: Stats::default(),
        started: Instant::now(),
    };
    let mut next_view = Instant::now();
    let status_every = Duration::from_secs(config.stats_interval.into());
    let mut last_status = Instant::now();
    let mut last_totals = (0u64, 0u64);
    // "listening on" is said once every worker listens (its first report comes right
    // after), so a client that reads it is never refused by a port nobody listens on.
    let mut announce = true;
    while !shutdown.load(Ordering::Relaxed) {
        if reload.swap(false, Ordering::Relaxed) {
            info!("SIGHUP: every worker reloads its certificate");
            sup.children.signal(libc::SIGHUP);
        }
        for w in &mut workers {
            keep_alive(w, &mut sup, listen);
        }
        // Sent before "listening on" is said, so every worker can answer for the whole
        // server by the time a client that read that line asks.
        if Instant::now() >= next_view || all_fresh(&workers) {
            let view = sup.view(&workers);
            sup.feed.send(&view);
            next_view = Instant::now() + VIEW_INTERVAL;
            for w in &mut workers {
                w.fresh = false;
            }
        } else {
            sup.feed.flush();
        }
        if announce && workers.iter().all(|w| w.ready) && bus_ready(&workers, sup.started) {
            info!(
                "listening on {listen} with {} worker processes",
                config.workers
            );
            match &config.pubsub {
                Some(url) => info!("chat rooms span workers and hosts through Redis at {url}"),
                None => info!("chat rooms span the workers: they relay over Unix sockets"),
            }
            announce = false;
        }
        if !status_every.is_zero() && last_status.elapsed() >= status_every {
            let elapsed = last_status.elapsed().as_secs_f64();
            last_status = Instant::now();
            let up = sup.children.running();
            last_totals = print_status(&sup.view(&workers), up, last_totals, elapsed);
        }
        let tick = Instant::now() + TICK;
        while let Some((id, event)) = sup
            .children
            .next(tick.saturating_duration_since(Instant::now()))
        {
            // A closed stdout needs nothing here: keep_alive notices the exit.
            if let Event::Line(report) = event {
                let w = &mut workers[id];
                w.latest = report;
                w.ready = true;
                w.fresh = true;
                // A new worker waits for its first view to accept: send one now.
                if !w.reporting {
                    w.reporting = true;
                    next_view = Instant::now();
                }
                if Instant::now() >= next_view || all_fresh(&workers) {
                    break;
                }
            }
        }
    }
    info!("stopping {} workers", workers.len());
    // SIGTERM to every worker, a grace period for their closing handshakes, then SIGKILL.
    let grace = Duration::from_secs(config.shutdown_timeout.into()) + STOP_MARGIN;
    sup.children.signal(libc::SIGTERM);
    sup.children.stop(Instant::now() + grace);
    Ok(())
}

/// Whether every worker's bus (the mesh, or Redis) is connected, so that a room is whole
/// from the first client on; a bus that takes longer than [`BUS_WAIT`] is not waited for
/// (its counters and log say why).
fn bus_ready(workers: &[Worker], started: Instant) -> bool {
    let up = workers.iter().all(|w| w.latest.pubsub_up > 0);
    if !up && started.elapsed() >= BUS_WAIT {
        warn!("not every worker's pub/sub bus is up after {BUS_WAIT:?}: accepting anyway");
        return true;
    }
    up
}

/// Whether every worker that reports has done so since the last view.
fn all_fresh(workers: &[Worker]) -> bool {
    workers.iter().any(|w| w.fresh) && workers.iter().all(|w| w.fresh || !w.reporting)
}

/// Starts the worker if due, and notices (and schedules the restart of) a dead one,
/// whose totals it moves to the retired ones.
fn keep_alive(w: &mut Worker, sup: &mut Supervision, listen: SocketAddr) {
    let children = &mut sup.children;
    let slot = w.id as usize;
    if let Some(pid) = children.pid(slot) {
        match children.try_wait(slot) {
            Ok(None) => return,
            Ok(Some(status)) => {
                let quick = w.started.elapsed() < RESTART_BACKOFF;
                warn!("worker {} (pid {pid}) exited: {status}; restarting", w.id);
                sup.retired.merge(&w.latest.totals_only());
                sup.feed.detach(slot);
                w.latest = Stats::default();
                w.reporting = false;
                w.restarts_total += 1;
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
        // The ticket key of this moment, for this worker alone (`tls::tickets`).
        let env: Vec<_> = sup
            .tickets
            .iter()
            .map(|keys| (TICKET_KEY_ENV, keys.handoff()))
            .collect();
        match children.spawn_with_env(slot, &extra, &env, Stdin::Control) {
            Ok(_) => {
                w.started = Instant::now();
                w.restart_at = None;
                if let Some(stdin) = children.take_stdin(slot) {
                    sup.feed.attach(slot, stdin);
                }
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
    view: &View,
    up: usize,
    (handshakes_before, messages_before): (u64, u64),
    secs: f64,
) -> (u64, u64) {
    let sum = view.total();
    let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
    info!(
        "workers {up}/{} | {:.0} handshakes/s, {:.0} messages/s | {}",
        view.workers.len(),
        rate(sum.handshakes_total, handshakes_before),
        rate(sum.messages_in_total, messages_before),
        sum.status_line()
    );
    (sum.handshakes_total, sum.messages_in_total)
}
