//! The bus over Redis pub/sub (`--pubsub redis://HOST:PORT`): two connections per
//! process, one in SUBSCRIBE mode that brings the rooms' messages, one that PUBLISHes.
//! Two, because a RESP2 connection in subscribe mode may send nothing but (UN)SUBSCRIBE
//! and PING, and because then a flood of incoming room traffic, or Redis dropping a
//! subscriber that fell behind (`client-output-buffer-limit pubsub`), never holds up or
//! loses what this process publishes, and publish replies are never interleaved with
//! pushes.
//!
//! Faults: the links fail together (either one failing drops both, so that the state is
//! simply up or down); the bus then retries with a backoff from [`BACKOFF_MIN`] doubling
//! to [`BACKOFF_MAX`] and, once back, subscribes again to every room with local members.
//! Messages published meanwhile, and those whose PUBLISH had not been answered, are
//! counted as unpublished: local members still get them. A Redis that stops answering
//! (SIGSTOP) leaves the connections open: what waits to be sent is bounded (the caller's
//! `limit`, counted in the memory budget) and past it messages are not published.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::{Registry, Token};

use super::envelope;
use super::link::Link;
use super::resp::{self, Reply};
use super::Inbound;
use crate::protocol::frame::SharedFrame;
use crate::server::stats::Stats;

/// The first wait before reconnecting.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A connect that has not completed by then is given up and tried again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Connecting, since then; `again` when it is a reconnection.
    Connecting {
        since: Instant,
        again: bool,
    },
    Up,
    /// Lost (or never reached): the next attempt is at `retry`.
    Down {
        retry: Instant,
    },
}

/// This process's connections to Redis and the rooms it subscribes to.
#[derive(Debug)]
pub struct Redis {
    addr: SocketAddr,
    origin: u64,
    sub: Link<TcpStream>,
    publ: Link<TcpStream>,
    state: State,
    /// The wait before the next attempt after this one fails.
    backoff: Duration,
    /// The rooms with local members: subscribed while up, again after a reconnect.
    rooms: HashSet<Box<str>>,
    /// PUBLISH commands sent or queued and not answered yet.
    unanswered: u64,
    /// Most bytes queued for Redis; past it messages are not published.
    limit: usize,
    /// Whether the queue is full now (logged once per episode).
    full: bool,
    scratch: Vec<u8>,
}

impl Redis {
    /// A bus to Redis at `addr`, starting to connect now; `tokens` are its two links'.
    pub fn new(
        addr: SocketAddr,
        origin: u64,
        limit: usize,
        tokens: [Token; 2],
        registry: &Registry,
    ) -> Redis {
        let mut redis = Redis {
            addr,
            origin,
            sub: Link::new(tokens[0]),
            publ: Link::new(tokens[1]),
            state: State::Down {
                retry: Instant::now(),
            },
            backoff: BACKOFF_MIN,
            rooms: HashSet::new(),
            unanswered: 0,
            limit,
            full: false,
            scratch: Vec::new(),
        };
        redis.connect(false, registry);
        redis
    }

    /// Whether `token` is one of this bus's.
    pub fn owns(&self, token: Token) -> bool {
        token == self.sub.token() || token == self.publ.token()
    }

    fn connect(&mut self, again: bool, registry: &Registry) {
        let since = Instant::now();
        self.state = State::Connecting { since, again };
        let attached = [&mut self.sub, &mut self.publ]
            .into_iter()
            .try_for_each(|link| {
                let stream = TcpStream::connect(self.addr)?;
                stream.set_nodelay(true)?;
                link.attach(stream, false, registry)
            });
        if let Err(e) = attached {
            self.fail(e, registry);
        }
    }

    /// Both links dropped: counts what was not confirmed, logs the change once, and
    /// schedules the next attempt.
    fn fail(&mut self, e: io::Error, registry: &Registry) {
        self.sub.detach(registry);
        self.publ.detach(registry);
        self.full = false;
        match self.state {
            State::Up => warn!(
                "pubsub: lost Redis at {}: {e}; rooms stay local until it is back, \
                 retrying every {BACKOFF_MIN:?} to {BACKOFF_MAX:?}",
                self.addr
            ),
            _ => debug!("pubsub: cannot reach Redis at {}: {e}", self.addr),
        }
        self.state = State::Down {
            retry: Instant::now() + self.backoff,
        };
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// The messages that were on their way when the links failed.
    fn take_unanswered(&mut self) -> u64 {
        std::mem::take(&mut self.unanswered)
    }

    /// An event on one of the links.
    pub fn event(&mut self, token: Token, registry: &Registry, stats: &mut Stats) {
        let link = if token == self.sub.token() {
            &mut self.sub
        } else {
            &mut self.publ
        };
        let result = link
            .ready(|s| match s.peer_addr() {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    s.take_error()?.map_or(Ok(false), Err)
                }
                Err(e) => Err(e),
            })
            .and_then(|_| link.flush());
        if let Err(e) = result {
            return self.lost(e, registry, stats);
        }
        if let State::Connecting { again, .. } = self.state {
            if self.sub.is_connected() && self.publ.is_connected() {
                self.came_up(again, registry, stats);
            }
        }
    }

    fn came_up(&mut self, again: bool, registry: &Registry, stats: &mut Stats) {
        self.state = State::Up;
        self.backoff = BACKOFF_MIN;
        stats.pubsub_up = 1;
        if again {
            stats.pubsub_reconnects_total += 1;
            info!(
                "pubsub: Redis at {} is back; subscribing to {} rooms again",
                self.addr,
                self.rooms.len()
            );
        } else {
            info!("pubsub: connected to Redis at {}", self.addr);
        }
        if !self.rooms.is_empty() {
            let mut channels: Vec<Vec<u8>> = vec![b"SUBSCRIBE".to_vec()];
            channels.extend(self.rooms.iter().map(|r| resp::channel(r)));
            let args: Vec<&[u8]> = channels.iter().map(Vec::as_slice).collect();
            resp::command(self.sub.output(), &args);
            if let Err(e) = self.sub.flush() {
                self.lost(e, registry, stats);
            }
        }
    }

    fn lost(&mut self, e: io::Error, registry: &Registry, stats: &mut Stats) {
        stats.pubsub_up = 0;
        stats.pubsub_unpublished_total += self.take_unanswered();
        self.fail(e, registry);
        stats.pubsub_queued_bytes = 0;
    }

    /// A room got its first local member (`joined`) or lost its last.
    pub fn room_changed(
        &mut self,
        room: &str,
        joined: bool,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        let changed = if joined {
            self.rooms.insert(room.into())
        } else {
            self.rooms.remove(room)
        };
        if changed && self.state == State::Up {
            let verb: &[u8] = if joined { b"SUBSCRIBE" } else { b"UNSUBSCRIBE" };
            resp::command(self.sub.output(), &[verb, &resp::channel(room)]);
            if let Err(e) = self.sub.flush() {
                self.lost(e, registry, stats);
            }
        }
    }

    /// Publishes a chat message of `room` (once, for every other process).
    pub fn publish(
        &mut self,
        room: &str,
        frame: &SharedFrame,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        if self.state != State::Up {
            stats.pubsub_unpublished_total += 1;
            return;
        }
        if self.publ.queued() >= self.limit {
            stats.pubsub_unpublished_total += 1;
            if !self.full {
                warn!(
                    "pubsub: Redis at {} is not taking messages ({} bytes wait); not \
                     publishing until it does",
                    self.addr,
                    self.publ.queued()
                );
                self.full = true;
            }
            return;
        }
        self.scratch.clear();
        if !envelope::seal(self.origin, frame, &mut self.scratch) {
            return;
        }
        resp::command(
            self.publ.output(),
            &[b"PUBLISH", &resp::channel(room), &self.scratch],
        );
        self.unanswered += 1;
        stats.pubsub_published_total += 1;
        let flushed = self.publ.flush();
        stats.pubsub_queued_bytes = self.publ.queued() as u64;
        if let Err(e) = flushed {
            self.lost(e, registry, stats);
        }
    }

    /// Reads what Redis sent: publish confirmations always, room messages only when
    /// `take_messages` (the caller's fan-out has room), handing them to `inbound`.
    pub fn pump(
        &mut self,
        take_messages: bool,
        inbound: &mut Inbound<'_>,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        if let Err(e) = self.pump_links(take_messages, inbound, stats) {
            self.lost(e, registry, stats);
        }
        if self.full && self.publ.queued() < self.limit / 2 {
            info!("pubsub: Redis at {} takes messages again", self.addr);
            self.full = false;
        }
    }

    fn pump_links(
        &mut self,
        take_messages: bool,
        inbound: &mut Inbound<'_>,
        stats: &mut Stats,
    ) -> io::Result<()> {
        if self.state != State::Up {
            return Ok(());
        }
        while self.publ.may_read() {
            self.publ.read()?;
            let mut used = 0;
            while let Some((reply, n)) = resp::next_reply(&self.publ.input[used..]).map_err(bad)? {
                if let Reply::Error(text) = reply {
                    let text = &self.publ.input[used..][text];
                    debug!("pubsub: PUBLISH refused: {}", String::from_utf8_lossy(text));
                    stats.pubsub_unpublished_total += 1;
                    stats.pubsub_published_total -= 1;
                }
                self.unanswered = self.unanswered.saturating_sub(1);
                used += n;
            }
            self.publ.consume(used);
        }
        self.publ.flush()?;
        stats.pubsub_queued_bytes = self.publ.queued() as u64;
        if take_messages && self.sub.may_read() {
            self.sub.read()?;
            let mut used = 0;
            while let Some((reply, n)) = resp::next_reply(&self.sub.input[used..]).map_err(bad)? {
                let input = &self.sub.input[used..];
                match reply {
                    Reply::Message { channel, payload } => {
                        let opened = envelope::open(&input[payload]);
                        if let Some(room) = resp::room_of(&input[channel]) {
                            if opened.origin != Some(self.origin) {
                                stats.pubsub_received_total += 1;
                                inbound(room, opened.frame());
                            }
                        }
                    }
                    Reply::Error(text) => {
                        warn!(
                            "pubsub: Redis refused a subscription: {}",
                            String::from_utf8_lossy(&input[text])
                        );
                    }
                    Reply::Other => {}
                }
                used += n;
            }
            self.sub.consume(used);
        }
        Ok(())
    }

    /// Whether there may be more to read at once.
    pub fn has_work(&self) -> bool {
        self.state == State::Up && (self.sub.may_read() || self.publ.may_read())
    }

    /// When [`Redis::tick`] has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        match self.state {
            State::Up => None,
            State::Connecting { since, .. } => Some(since + CONNECT_TIMEOUT),
            State::Down { retry, .. } => Some(retry),
        }
    }

    /// Reconnects when due; gives up a connect that takes too long.
    pub fn tick(&mut self, now: Instant, registry: &Registry, stats: &mut Stats) {
        match self.state {
            State::Down { retry, .. } if now >= retry => self.connect(true, registry),
            State::Connecting { since, .. } if now >= since + CONNECT_TIMEOUT => {
                self.lost(io::ErrorKind::TimedOut.into(), registry, stats)
            }
            _ => {}
        }
    }

    /// Bytes this bus holds: what waits to be sent or read.
    pub fn held(&self) -> usize {
        self.sub.queued() + self.publ.queued() + self.sub.input.len() + self.publ.input.len()
    }
}

fn bad(e: resp::BadReply) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("not RESP: {}", e.0))
}
