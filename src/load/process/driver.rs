//! The event loop of one load process: one thread, one `mio::Poll`, one `Slab` of
//! [`Conn`]s keyed by `Token`. Each turn it lets the stage act, polls, dispatches
//! readiness to the connections, and fires their due deadlines on a coarse tick, from a
//! timer wheel (`deadlines.rs`: only the connections whose deadline falls in the tick
//! are visited).
//!
//! [`Driver`]'s fields are private to this file and `driver/`, which holds the rest of
//! its work, by job:
//!
//! - `ramp.rs`: starting connection attempts, paced and capped, over the source
//!   addresses;
//! - `stages.rs`: the run's stages and the moves between them (ramp → go → hold →
//!   drain, a stop);
//! - `drain.rs`: closing every connection, a few in flight at a time, and a stop's
//!   aborts;
//! - `chat_turn.rs`, `workload_turn.rs`: what the hold does in a chat run or under a
//!   workload;
//! - `report.rs`: what the process tells its parent (the ramp's end, progress, the
//!   final measures).
//!
//! Token safety: connections are inserted only between poll batches, so an event for a
//! connection that ended earlier in its batch finds a vacant slot, never a newcomer.
//!
//! Deadlines: every call into a connection that may move its deadline is followed by
//! [`refile`], which puts it on the wheel when it moved; the wheel's stale entries are
//! told apart by their deadline (see `deadlines.rs`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use super::conn::{Conn, Layer, Next, Readiness};
use super::deadlines::{Deadlines, Entries, SLOT_MS};
use super::env::{Env, NEVER};
use super::pacing::Pacer;
use super::ramp_cap::InFlightCap;
use super::settings::DriverConfig;
use crate::load::wire::{WorkerFinal, WorkerMsg};

mod chat_turn;
mod drain;
mod ramp;
mod report;
mod stages;
mod workload_turn;

use stages::Stage;

/// How often due deadlines fire: the wheel's slot. Coarse on purpose: one look at the
/// wheel per tick, however many connections are held.
const TICK: Duration = Duration::from_millis(SLOT_MS as u64);
/// The poll token of the waker (never a slab key: the slab would need 2^64 entries).
const WAKER: Token = Token(usize::MAX);
/// The process-wide read buffer; larger than the biggest kept input (an 8 KiB head).
const READ_BUF: usize = 64 * 1024;

/// Requests from outside the loop, set by signal handlers or the parent's stdin reader.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Stop: abort pending attempts, close open connections, finish.
    pub stop: Arc<AtomicBool>,
    /// Start the hold (when waiting for it).
    pub go: Arc<AtomicBool>,
}

/// One process's load: built with [`Driver::new`], consumed by [`Driver::run`].
#[derive(Debug)]
pub struct Driver<L: Layer> {
    poll: Poll,
    events: Events,
    conns: Slab<Conn<L>>,
    env: Env,
    buf: Box<[u8]>,
    cfg: DriverConfig,
    pacer: Pacer,
    epoch: Instant,
    /// Attempts started so far (the next one's index within the share).
    started: u32,
    stage: Stage,
    stopping: bool,
    open_at_hold_start: u64,
    waker: Arc<Waker>,
    /// Keys of connections aborted in a pass over the slab, removed after it.
    dead: Vec<usize>,
    /// Every connection's deadline, by the tick it falls in.
    deadlines: Deadlines,
    /// The entries of the ticks being fired (kept for its capacity).
    due: Entries,
    /// While draining: the next slab key to consider closing.
    drain_cursor: usize,
}

impl<L: Layer> Driver<L> {
    /// A driver for `cfg`, with its poll and waker; nothing connects before
    /// [`Driver::run`].
    pub fn new(cfg: DriverConfig) -> io::Result<Driver<L>> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let sources = cfg.sources.map_or(0, |s| s.len() as usize);
        let ramp_cap = InFlightCap::new(cfg.share.max_pending, cfg.ramp_target);
        let env = Env::new(cfg.conn.clone(), sources, ramp_cap);
        Ok(Driver {
            poll,
            events: Events::with_capacity(1024),
            conns: Slab::with_capacity(cfg.share.connections as usize),
            env,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            pacer: Pacer::new(cfg.share.rate),
            cfg,
            epoch: Instant::now(),
            started: 0,
            stage: Stage::Ramping,
            stopping: false,
            open_at_hold_start: 0,
            waker,
            dead: Vec::new(),
            deadlines: Deadlines::default(),
            due: Vec::new(),
            drain_cursor: 0,
        })
    }

    /// Wakes the loop from another thread (after setting a [`Control`] flag).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Runs the whole load of this process and returns what it measured. `emit`
    /// receives progress and the end of the ramp; when it returns `false` (nobody is
    /// listening any more) the run stops as if asked to.
    pub fn run(
        mut self,
        control: &Control,
        emit: &mut dyn FnMut(WorkerMsg) -> bool,
    ) -> io::Result<WorkerFinal> {
        self.epoch = Instant::now();
        if self.cfg.timeline {
            self.env.stats.start_seconds();
        }
        let mut next_tick = TICK;
        let mut next_progress = self.cfg.progress_every;
        loop {
            self.tick_clock();
            if control.stop.load(Ordering::Relaxed) && !self.stopping {
                self.stop();
            }
            match self.stage {
                Stage::Ramping => {
                    self.start_connections();
                    if self.ramp_done() {
                        self.end_ramp(emit);
                    }
                }
                Stage::AwaitingGo if control.go.load(Ordering::Relaxed) => self.start_hold(),
                Stage::Holding { until } if self.elapsed() >= until => self.start_drain(),
                Stage::Holding { until } => self.workload_turn(until),
                Stage::Chatting { sender } => self.chat_turn(sender),
                Stage::Draining | Stage::AwaitingGo => {}
            }
            // Checked after the transitions above, so a run whose ramp ended with nothing
            // open finishes now rather than after another poll.
            if self.stage == Stage::Draining && self.conns.is_empty() {
                break;
            }
            let timeout = self.poll_timeout(next_tick);
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                // A signal: the flags are checked at the top of the loop.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.dispatch();
            let now = self.elapsed();
            if now >= next_tick {
                self.env.ramp_cap.adjust();
                self.sweep();
                next_tick = now + TICK;
            }
            if self.stage == Stage::Draining {
                self.close_some();
            }
            if now >= next_progress {
                self.report_progress(emit);
                next_progress = now + self.cfg.progress_every;
            }
            self.env.stats.send_seconds(false, emit);
        }
        self.env.stats.send_seconds(true, emit);
        Ok(self.into_final())
    }

    fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn tick_clock(&mut self) {
        self.env.now_us = self.epoch.elapsed().as_micros() as u64;
    }

    /// How long the poll may sleep: until the next sweep, or the next paced attempt.
    fn poll_timeout(&self, next_tick: Duration) -> Duration {
        let now = self.elapsed();
        let mut timeout = next_tick.saturating_sub(now);
        let share = &self.cfg.share;
        let room = self.env.stats.counters.pending < self.env.ramp_cap.limit();
        if self.stage == Stage::Ramping && self.started < share.connections && room {
            let next = self.pacer.due(u64::from(self.started));
            timeout = timeout.min(next.saturating_sub(now));
        }
        if let Stage::Holding { until } = self.stage {
            timeout = timeout.min(until.saturating_sub(now));
        }
        if let (Stage::Chatting { .. }, Some(room)) = (self.stage, &self.env.chat) {
            if let Some(due) = room.next_due_us() {
                timeout = timeout.min(Duration::from_micros(due).saturating_sub(now));
            }
        }
        timeout
    }

    fn dispatch(&mut self) {
        let Driver {
            events,
            conns,
            env,
            buf,
            epoch,
            deadlines,
            ..
        } = self;
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let key = event.token().0;
            // Vacant: its connection ended earlier in this batch (see the header).
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            // Fresh per event: echo round trips are timed against it.
            env.now_us = epoch.elapsed().as_micros() as u64;
            let before = conn.deadline_ms();
            let next = conn.on_ready(env, buf, Readiness::of(event));
            refile(deadlines, conns, key, before, next);
        }
    }

    /// The coarse timer pass: timeouts and due periodic echoes, for the connections the
    /// wheel has in the ticks passed. While draining it also rewinds the close cursor,
    /// for connections skipped because an echo was in flight.
    fn sweep(&mut self) {
        self.tick_clock();
        let Driver {
            conns,
            env,
            stage,
            drain_cursor,
            deadlines,
            due,
            ..
        } = self;
        let now_ms = env.now_ms();
        deadlines.take(now_ms, due);
        for (key, filed) in due.drain(..) {
            let key = key as usize;
            let Some(conn) = conns.get_mut(key) else {
                continue; // ended since it was filed
            };
            if conn.deadline_ms() != filed {
                continue; // moved since: filed again under its new deadline
            }
            if !conn.is_due(now_ms) {
                // Later in this tick, or parked beyond the wheel's reach.
                deadlines.file(key, filed);
                continue;
            }
            // Filed whether or not it moved: one that is still due fires next tick, as
            // it would have from a sweep of the slab.
            let next = conn.on_deadline(env);
            refile(deadlines, conns, key, NEVER, next);
        }
        if *stage == Stage::Draining && *drain_cursor >= conns.capacity() {
            *drain_cursor = 0;
        }
    }
}

/// After a call into the connection at `key` that began with deadline `before` and
/// returned `next`: drops the connection, or files its deadline on the wheel if the call
/// moved it (the one place a moved deadline reaches the wheel).
fn refile<L: Layer>(
    deadlines: &mut Deadlines,
    conns: &mut Slab<Conn<L>>,
    key: usize,
    before: u32,
    next: Next,
) {
    if next == Next::Remove {
        conns.remove(key);
    } else if let Some(conn) = conns.get(key) {
        if conn.deadline_ms() != before {
            deadlines.file(key, conn.deadline_ms());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::process::conn::Plain;
    use crate::load::process::payload::Payload;
    use crate::load::process::plan::{share, WorkerSlot};
    use crate::load::process::settings::{ChatConfig, ConnConfig};
    use crate::load::wire::{decode_histogram, Failure, Second};
    use crate::protocol::receiver::{ReceiverConfig, Role};
    use std::net::{SocketAddr, TcpListener};

    /// An independent echo server (tungstenite, a thread per connection) on an
    /// ephemeral loopback port; it lives until the test process ends.
    fn tungstenite_echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let Ok(mut ws) = tungstenite::accept(stream) else {
                        return;
                    };
                    // Echo data; tungstenite answers pings and the Close by itself and
                    // ends with ConnectionClosed once the closing handshake is done.
                    while let Ok(msg) = ws.read() {
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn config(target: SocketAddr, connections: u32) -> DriverConfig {
        DriverConfig {
            target,
            more_targets: Vec::new(),
            sources: Some("127.0.0.2-127.0.0.4".parse().unwrap()),
            share: share(connections, None, 16, WorkerSlot { index: 0, count: 1 }),
            hold: Duration::from_millis(300),
            conn: ConnConfig {
                host: target.to_string(),
                path: "/echo".to_owned(),
                message_size: 300,
                payload: Payload::Ascii,
                warmup_bytes: 0,
                connect_timeout_ms: 5_000,
                echo_timeout_ms: 5_000,
                close_timeout_ms: 5_000,
                echo_every_ms: 100,
                receiver: ReceiverConfig {
                    role: Role::Client,
                    max_message_size: u64::MAX >> 1,
                    deflate: false,
                },
                deflate: None,
                max_spill: 64 * 1024,
                chat: None,
                workload: None,
                tls: None,
            },
            wait_for_go: false,
            progress_every: Duration::from_millis(50),
            timeline: false,
            ramp_target: Duration::ZERO,
        }
    }

    #[test]
    fn connections_are_dealt_to_every_target_in_turn() {
        let [a, b, c] = [9001, 9002, 9003].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let mut cfg = config(a, 7);
        assert!((0..3).all(|i| cfg.target_for(i) == a));
        cfg.more_targets = vec![b, c];
        let dealt: Vec<SocketAddr> = (0..7).map(|i| cfg.target_for(i)).collect();
        assert_eq!(dealt, [a, b, c, a, b, c, a]);
    }

    #[test]
    fn connections_are_verified_held_with_echoes_and_closed_cleanly() {
        let target = tungstenite_echo_server();
        let mut msgs = Vec::new();
        let mut cfg = config(target, 40);
        cfg.timeline = true;
        let fin = Driver::<Plain>::new(cfg)
            .unwrap()
            .run(&Control::default(), &mut |m| {
                msgs.push(m);
                true
            })
            .unwrap();
        let c = &fin.counters;
        assert!(c.failures.is_empty(), "{:?}", c.failures);
        assert_eq!((c.attempted, c.established, c.verified), (40, 40, 40));
        // Closes were paced at 16 in flight (the share's max_pending).
        assert_eq!(
            (c.closed_clean, c.open, c.pending, c.closing),
            (40, 0, 0, 0)
        );
        assert_eq!(fin.open_at_hold_start, 40);
        // The verification echo plus periodic echoes during the hold.
        assert!(c.echoes > 40, "{}", c.echoes);
        assert_eq!(fin.per_source, vec![14, 13, 13]);
        let rtt = decode_histogram(&fin.echo_rtt_us).unwrap();
        assert_eq!(rtt.len(), c.echoes);
        // The hold's echoes are the periodic ones: not the 40 verifications.
        let hold = decode_histogram(&fin.hold_echo_rtt_us).unwrap();
        assert!(
            !hold.is_empty() && hold.len() <= c.echoes - 40,
            "{}",
            hold.len()
        );
        assert_eq!(decode_histogram(&fin.handshake_us).unwrap().len(), 40);
        assert!(msgs.iter().any(|m| matches!(m, WorkerMsg::Ramped { .. })));
        // Every second, in order, adding up to the run's counts.
        let seconds: Vec<_> = msgs
            .iter()
            .filter_map(|m| match m {
                WorkerMsg::Second(s) => Some(s),
                _ => None,
            })
            .collect();
        assert!(seconds.windows(2).all(|w| w[1].t == w[0].t + 1));
        let sum = |f: fn(&Second) -> u64| seconds.iter().map(|s| f(s)).sum::<u64>();
        assert_eq!((sum(|s| s.handshakes), sum(|s| s.echoes)), (40, c.echoes));
        assert_eq!(seconds.last().map(|s| s.open), Some(0));
    }

    #[test]
    fn a_room_that_does_not_broadcast_leaves_deliveries_missing() {
        // The echo server as a "room" that sends each message back to its sender only:
        // the sender receives its own, no other member anything, so the chat window never
        // moves past its first messages and the chat gives up once they are overdue.
        let target = tungstenite_echo_server();
        let mut cfg = config(target, 3);
        cfg.conn.path = "/chat?room=x".to_owned();
        cfg.conn.echo_timeout_ms = 300;
        cfg.conn.chat = Some(ChatConfig {
            messages: 5,
            rate: None,
            chat_window: 2,
        });
        let fin = Driver::<Plain>::new(cfg)
            .unwrap()
            .run(&Control::default(), &mut |_| true)
            .unwrap();
        let c = &fin.counters;
        assert!(c.failures.is_empty(), "{:?}", c.failures);
        assert_eq!((c.verified, c.echoes, c.closed_clean), (3, 0, 3));
        assert_eq!(
            (c.chat_sent, c.deliveries),
            (2, 2),
            "a chat window of 2, to the sender"
        );
        let chat = fin.chat.expect("a chat result");
        assert_eq!(
            (chat.members, chat.members_complete, chat.messages),
            (3, 0, 5)
        );
        assert_eq!(decode_histogram(&chat.delivery_us).unwrap().len(), 2);
    }

    #[test]
    fn an_echo_that_never_comes_back_times_out_on_the_wheel() {
        // A server that answers the opening handshake and then reads without answering:
        // each verification echo's deadline is set while handling readiness, and only
        // the timer wheel can end it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    if let Ok(mut ws) = tungstenite::accept(stream) {
                        while ws.read().is_ok() {}
                    }
                });
            }
        });
        let mut cfg = config(target, 5);
        cfg.conn.echo_timeout_ms = 300;
        let driver = Driver::<Plain>::new(cfg).unwrap();
        // A stop after 5 s, so that a deadline the wheel lost fails the test rather
        // than hanging it (the echoes would then be aborted, not timed out).
        let control = Control::default();
        let (stop, waker) = (control.stop.clone(), driver.waker());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            stop.store(true, Ordering::Relaxed);
            let _ = waker.wake();
        });
        let fin = driver.run(&control, &mut |_| true).unwrap();
        let c = &fin.counters;
        assert_eq!(c.failures.get(&Failure::EchoTimeout), Some(&5), "{c:?}");
        assert_eq!((c.established, c.verified, c.open, c.aborted), (5, 0, 0, 0));
    }

    #[test]
    fn an_absent_server_refuses_every_connection_promptly() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        let fin = Driver::<Plain>::new(config(target, 100))
            .unwrap()
            .run(&Control::default(), &mut |_| true)
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        let c = &fin.counters;
        assert_eq!(c.attempted, 100);
        assert_eq!(c.failures.get(&Failure::ConnectRefused), Some(&100));
        assert_eq!((c.established, c.pending, c.open), (0, 0, 0));
    }

    #[test]
    fn a_stop_before_the_ramp_ends_aborts_and_reports_unstarted_attempts() {
        let target = tungstenite_echo_server();
        let mut cfg = config(target, 1000);
        cfg.share.rate = Some(100.0);
        let control = Control::default();
        let stop = control.stop.clone();
        let mut progress = 0;
        let fin = Driver::<Plain>::new(cfg)
            .unwrap()
            .run(&control, &mut |_| {
                progress += 1;
                if progress == 4 {
                    stop.store(true, Ordering::Relaxed);
                }
                true
            })
            .unwrap();
        let c = &fin.counters;
        assert!(fin.not_attempted > 500, "{}", fin.not_attempted);
        assert_eq!(c.attempted + fin.not_attempted, 1000);
        assert_eq!(c.verified, c.closed_clean, "{c:?}");
        assert_eq!(c.attempted, c.verified + c.aborted, "{c:?}");
        assert_eq!((c.open, c.pending), (0, 0));
    }
}
