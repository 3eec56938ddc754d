//! The event loop: one `mio::Poll`, one listener, a slab of connections keyed by Token.
//!
//! Readiness events are hints: a connection's `drive` tries the syscalls and accepts
//! `WouldBlock`, so spurious events and events for a token whose slot was reused are
//! harmless. Accepting is deferred to the end of each batch, so within a batch a slot
//! freed by a close is never reused and a later event for that token finds it empty.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::accept::Acceptor;
use super::budget::Budget;
use super::clock::{Clock, SWEEP_INTERVAL};
use super::config::Config;
use super::connection::{Connection, Shared, Verdict, READ_BUFFER_SIZE};
use super::env::{Broadcast, Env};
use super::fan_out::{FanOut, FAN_OUT_WORK, FAN_OUT_WRITES};
use super::feed::{self, FIRST_VIEW_WAIT};
use super::head_queue::HeadQueue;
use super::pubsub::hook::Pubsub;
use super::rooms::Rooms;
use super::stats::{rss_bytes, Stats};
use super::transport::{Plain, Transport};
use super::trim::Trim;
use super::view::View;
use super::warnings::Warnings;
use crate::protocol::deadline::Tick;
use crate::protocol::deflate::Codec;
use crate::stream::Cork;

const LISTENER: Token = Token(usize::MAX);
/// A worker's stdin: the whole server's counters from its supervisor (`feed.rs`).
const FEED: Token = Token(usize::MAX - 1);

/// What a connection borrows from the reactor while it runs. A macro rather than a
/// method, so that the borrow is split field by field and the slab stays free for the
/// connection itself.
macro_rules! shared {
    ($reactor:expr) => {
        Shared {
            env: Env {
                config: &$reactor.config,
                stats: &mut $reactor.stats,
                rooms: &mut $reactor.rooms,
                outbox: &mut $reactor.outbox,
                codec: &mut $reactor.codec,
                now: $reactor.tick,
                uptime_ms: $reactor.uptime_ms,
                view: $reactor.view.as_ref(),
            },
            registry: $reactor.poll.registry(),
            cork: &mut $reactor.cork,
            relaxed: $reactor.budget.pool_has_room(),
            held: &mut $reactor.budget.held,
            layer: &mut $reactor.layer,
        }
    };
}

mod admission;
use admission::waiting;

/// How often a worker reports its counters to the supervisor.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// One process's event loop and everything it owns: the poller, the listener, the
/// connections and what they share; `T` is their transport (plain or TLS).
pub struct Reactor<T: Transport = Plain> {
    poll: Poll,
    acceptor: Acceptor,
    conns: Slab<Connection<T>>,
    /// What the connections' transport shares (TLS: its configuration and buffers).
    layer: T::Shared,
    buf: Box<[u8]>,
    /// The output of the connection being driven, written once per read.
    cork: Cork,
    /// What all connections hold, and may hold (`--memory-budget`).
    budget: Budget,
    /// When to give freed memory back to the system.
    trim: Trim,
    config: Config,
    stats: Stats,
    rooms: Rooms,
    /// Chat messages completed by the connection being driven.
    outbox: Vec<Broadcast>,
    /// The one permessage-deflate compressor and decompressor of this process, made
    /// when a compressed message first arrives.
    codec: Option<Codec>,
    /// Chat messages still to fan out, and members still to write to.
    fan_out: FanOut,
    clock: Clock,
    /// The clock read once per turn, right after the poll: every connection driven in
    /// the turn sees this time (in seconds, and in milliseconds of uptime for the
    /// counters), and no event costs a clock read.
    tick: Tick,
    uptime_ms: u64,
    /// Connections whose read budget ran out: driven again next turn.
    again: Vec<Token>,
    /// Connections still waiting for their request head, oldest first: when out of
    /// descriptors, the oldest gives way to a newcomer.
    heads: HeadQueue,
    warnings: Warnings,
    shutdown: Arc<AtomicBool>,
    /// Set by SIGHUP: reload the certificate.
    reload: Arc<AtomicBool>,
    /// A worker's feed of the whole server's counters, and the newest it brought.
    feed: Option<feed::Receiver>,
    view: Option<View>,
    /// Rooms past this process: Redis pub/sub, or the mesh of workers (`pubsub`).
    pubsub: Pubsub,
}

impl<T: Transport> Reactor<T> {
    /// A reactor for `listener`, which runs until `shutdown` is set and reloads its
    /// layer's files whenever `reload` is.
    pub fn new(
        config: Config,
        listener: std::net::TcpListener,
        shutdown: Arc<AtomicBool>,
        reload: Arc<AtomicBool>,
        layer: T::Shared,
    ) -> io::Result<Reactor<T>> {
        let poll = Poll::new()?;
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let feed = config.worker_id.and_then(|_| {
            feed::Receiver::from_stdin(poll.registry(), FEED)
                .map_err(|e| warn!("no view of the whole server from the supervisor: {e}"))
                .ok()
        });
        // A worker accepts once it has the supervisor's view, so it never has to answer
        // /stats without one; the clients meanwhile wait in the backlog, briefly.
        let accept_paused_until = feed.as_ref().map(|_| Instant::now() + FIRST_VIEW_WAIT);
        let (pubsub, rooms) = Pubsub::new(&config, poll.registry())?;
        Ok(Reactor {
            poll,
            acceptor: Acceptor::new(listener, accept_paused_until),
            conns: Slab::new(),
            layer,
            buf: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
            cork: Cork::default(),
            budget: Budget::new(config.memory_budget(), config.message_pool()),
            trim: Trim::default(),
            config,
            stats: Stats::default(),
            rooms,
            outbox: Vec::new(),
            codec: None,
            fan_out: FanOut::default(),
            clock: Clock::new(),
            tick: 0,
            uptime_ms: 0,
            again: Vec::new(),
            heads: HeadQueue::default(),
            warnings: Warnings::default(),
            shutdown,
            reload,
            feed,
            view: None,
            pubsub,
        })
    }

    /// Runs until SIGINT/SIGTERM (the shared flag), then closes every connection with
    /// 1001 and returns once they are gone or `--shutdown-timeout` has passed.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        // A worker reports to its supervisor, which logs for all; a lone process logs
        // its own status line (none with --stats-interval 0).
        let status_every = if self.config.worker_id.is_some() {
            Some(REPORT_INTERVAL)
        } else {
            Some(Duration::from_secs(self.config.stats_interval.into())).filter(|d| !d.is_zero())
        };
        // A worker's first report, at once, tells the supervisor it is listening.
        let first_status = if self.config.worker_id.is_some() {
            Duration::ZERO
        } else {
            status_every.unwrap_or_default()
        };
        let mut next_status = status_every.map(|_| Instant::now() + first_status);
        let mut last_status = String::new();
        let mut grace_end: Option<Instant> = None;
        loop {
            if grace_end.is_none() && self.shutdown.load(Ordering::Relaxed) {
                let grace = Duration::from_secs(self.config.shutdown_timeout.into());
                grace_end = Some(Instant::now() + grace);
                self.begin_shutdown();
            }
            if self.reload.swap(false, Ordering::Relaxed) {
                T::reload(&mut self.layer);
            }
            if grace_end.is_some_and(|end| self.conns.is_empty() || Instant::now() >= end) {
                info!("shut down with {} connections left", self.conns.len());
                return Ok(());
            }
            let mut wake = self.pubsub.wake().map_or(next_sweep, |w| w.min(next_sweep));
            for until in [self.acceptor.paused_until(), next_status]
                .into_iter()
                .flatten()
            {
                wake = wake.min(until);
            }
            let idle = self.again.is_empty() && self.fan_out.is_idle();
            let timeout = if idle && !self.pubsub.is_busy() {
                wake.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                // A signal arrived: loop to look at the flags.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            self.uptime_ms = self.clock.millis_at(now);
            self.tick = (self.uptime_ms / 1000) as Tick;
            let mut accept = false;
            let retry = std::mem::take(&mut self.again);
            for event in events.iter() {
                match event.token() {
                    LISTENER => accept = true,
                    FEED => self.read_feed(),
                    token if self.pubsub.owns(token) => self.pubsub.event(token, &mut self.stats),
                    // A FIN that came before this event raises no later edge.
                    token => self.drive(token, event.is_read_closed() || event.is_error()),
                }
            }
            for token in retry {
                self.drive(token, true);
            }
            let rooms = (&mut self.rooms, &mut self.fan_out);
            self.pubsub
                .turn(now, rooms, &mut self.stats, &mut self.budget.held);
            self.fan_out_some();
            // The high mark is taken before shedding, so that memory freed by shedding
            // counts as a fall.
            self.trim.observe(self.budget.held.bytes);
            if self.budget.is_over() {
                self.shed_memory();
            }
            if self.acceptor.resume_if_due(now) {
                accept = true;
            }
            if accept {
                self.accept();
            }
            if now >= next_sweep {
                self.trim.maybe_trim(self.budget.held.bytes);
                self.sweep_timers();
                next_sweep = now + SWEEP_INTERVAL;
            }
            if let (Some(at), Some(every)) = (next_status, status_every) {
                if now >= at {
                    self.stats.rss_bytes = rss_bytes().unwrap_or(0);
                    self.stats.rooms = self.rooms.len() as u64;
                    if self.config.worker_id.is_some() {
                        feed::report(&self.stats)?;
                    } else {
                        let line = self.stats.status_line();
                        if line != last_status {
                            info!("status: {line}");
                            last_status = line;
                        }
                    }
                    next_status = Some(now + every);
                }
            }
        }
    }

    /// Takes in the newest view the supervisor sent; the first one starts accepting.
    fn read_feed(&mut self) {
        let Some(view) = self
            .feed
            .as_mut()
            .and_then(|f| f.read(self.poll.registry()))
        else {
            return;
        };
        if self.view.is_none() {
            self.acceptor.resume_now();
        }
        self.view = Some(view);
    }

    fn drive(&mut self, token: Token, until_eof: bool) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return; // a stale event for a connection already closed
        };
        if conn.is_chat() && self.fan_out.has_pending() {
            // Backpressure on chat senders: no new messages while earlier ones are
            // still to fan out, so the queue and the work it stands for stay bounded.
            self.again.push(token);
            return;
        }
        let mut sh = shared!(self);
        let verdict = conn.drive(token, &mut self.buf, until_eof, &mut sh);
        self.pubsub
            .publish(&self.outbox, &self.rooms, &mut self.stats);
        // Queue the messages before following the verdict: a sender whose last message
        // came with its Close and EOF is dropped now, and leaves its room with it.
        self.fan_out.collect(&mut self.outbox, &self.rooms);
        self.follow(token, verdict);
    }

    /// Does what a connection's verdict asks.
    fn follow(&mut self, token: Token, verdict: Verdict) {
        match verdict {
            Verdict::Keep => {}
            Verdict::Again => self.again.push(token),
            Verdict::Drop => self.close(token),
        }
    }

    /// A turn's share of chat fan-out: queue pending messages for every member of their
    /// room (each message encoded once, its bytes shared), up to a bound on the work,
    /// then give a bounded number of members one write each, carrying every frame
    /// queued for them. What is left waits for the next turn (polled without sleeping),
    /// so one busy room never stalls the other connections.
    fn fan_out_some(&mut self) {
        let mut work = 0;
        while work < FAN_OUT_WORK {
            let Some((frame, recipients)) = self.fan_out.next_message(&self.rooms) else {
                break;
            };
            work += recipients.len();
            for &id in &recipients {
                let Some(conn) = self.conns.get_mut(id) else {
                    continue; // dropped earlier in this fan-out
                };
                let mut sh = shared!(self);
                match conn.deliver(Token(id), &frame, &mut sh) {
                    Some(Verdict::Drop) => self.close(Token(id)),
                    Some(_) => {}
                    None => self.fan_out.queued(id),
                }
            }
            self.fan_out.done_with(recipients);
        }
        for _ in 0..FAN_OUT_WRITES {
            let Some(id) = self.fan_out.next_write() else {
                break;
            };
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            let token = Token(id);
            let mut sh = shared!(self);
            let verdict = conn.write_queued(token, &mut sh);
            self.follow(token, verdict);
        }
    }

    /// The one way a connection leaves: remove from the slab, count, drop (close).
    fn close(&mut self, token: Token) {
        let Some(conn) = self.conns.try_remove(token.0) else {
            return;
        };
        conn.close(&mut self.stats, &mut self.budget.held);
        self.rooms.leave(token.0);
        if let Some(codec) = &mut self.codec {
            codec.forget(token.0);
        }
        // A descriptor is free again: accepting paused for want of one resumes.
        self.acceptor.resume_now();
    }

    /// Over the memory budget: drops the connections holding the most (see `Budget`).
    fn shed_memory(&mut self) {
        let before = self.budget.held.bytes;
        let holders = self.budget.largest_holders(&self.conns);
        let dropped = holders.len();
        for token in holders {
            self.close(token);
            self.stats.memory_shed_total += 1;
        }
        let (limit, after) = (self.budget.limit(), self.budget.held.bytes);
        self.warnings.warn(|| {
            format!(
                "over the memory budget ({before} of {limit} bytes held): dropped the \
                 {dropped} connections holding the most; {after} bytes held now"
            )
        });
    }

    /// Visits every connection and acts on due deadlines.
    fn sweep_timers(&mut self) {
        let conns = &self.conns;
        self.heads.sweep(|t, since| waiting(conns, t, since));
        self.visit(0..self.conns.capacity(), Connection::handle_timeout);
    }

    /// Stops accepting and asks every connection to close.
    fn begin_shutdown(&mut self) {
        info!("shutting down: closing {} connections", self.conns.len());
        self.acceptor.stop(self.poll.registry());
        self.visit(0..self.conns.capacity(), Connection::go_away);
    }

    /// Runs `f` on the connection in each of `slots` (skipping empty ones), then follows
    /// their verdicts.
    fn visit(
        &mut self,
        slots: std::ops::Range<usize>,
        mut f: impl FnMut(&mut Connection<T>, Token, &mut Shared<'_, T::Shared>) -> Verdict,
    ) {
        let mut sh = shared!(self);
        let mut verdicts = Vec::new();
        for i in slots {
            if let Some(conn) = self.conns.get_mut(i) {
                match f(conn, Token(i), &mut sh) {
                    Verdict::Keep => {}
                    verdict => verdicts.push((Token(i), verdict)),
                }
            }
        }
        for (token, verdict) in verdicts {
            self.follow(token, verdict);
        }
    }
}

impl<T: Transport> std::fmt::Debug for Reactor<T> {
    /// The state worth a look: the connections and the counters, not the read buffer.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &self.conns.len())
            .field("tick", &self.tick)
            .field("budget", &self.budget)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
