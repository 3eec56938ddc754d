//! One connection as the server sees it, sans-IO: the protocol core, the relay the
//! route chose, and what each event means for the server (routes, rooms, counters).
//! The reactor's `Connection` runs it over a socket; tests and fuzz targets run the very
//! same session over memory. It never touches a socket or a clock: bytes, the time and
//! the IO sink come in as arguments (only a `/stats` or `/metrics` request of a lone
//! process reads its RSS).

use std::rc::Rc;

use log::debug;
use mio::Token;

use super::config::Config;
use super::observe;
use super::relay::{Gather, Relay};
use super::rooms::Rooms;
use super::routes::{route, Route, OVER_CAPACITY};
use super::stats::Stats;
use super::view::View;
use crate::protocol::close::CloseCode;
use crate::protocol::deadline::Tick;
use crate::protocol::handshake::{Refusal, Upgrade};
use crate::protocol::http::Status;
use crate::protocol::server::{Event, ServerConfig, ServerConnection, Timeout, HIGH_WATER};

/// A chat member this far behind when the next message for it arrives is dropped: it
/// cannot slow the room (its backlog is its own) and cannot grow our memory either.
/// Four times the high-water mark, so a member that merely pauses is not dropped.
pub const SLOW_MEMBER_LIMIT: usize = 4 * HIGH_WATER;

/// The demo page served at `GET /`.
const PAGE: &str = include_str!("../../static/index.html");

/// A chat message encoded once as a whole frame, to be queued for every room member.
pub type Broadcast = (Token, Rc<[u8]>);

/// What the server lends a session while it runs.
pub struct Env<'a> {
    pub config: &'a Config,
    pub stats: &'a mut Stats,
    pub rooms: &'a mut Rooms,
    /// Chat messages completed during this call, from sender to the sender's room;
    /// the reactor fans them out once the sender is done.
    pub outbox: &'a mut Vec<Broadcast>,
    pub now: Tick,
    /// Milliseconds since this process started.
    pub uptime_ms: u64,
    /// The whole server's counters, as a worker's supervisor sent them last (`None` in
    /// a lone process, or before the first one came).
    pub view: Option<&'a View>,
}

/// The server's side of one connection: the protocol core, carrying the relay that
/// the route chose.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    core: ServerConnection<Relay>,
}

impl Session {
    /// A connection accepted at `now`.
    pub fn new(now: Tick) -> Session {
        Session {
            core: ServerConnection::new(now, Relay::Echo),
        }
    }

    /// The protocol state, for the IO decisions (reading, pausing, closing).
    pub fn core(&mut self) -> &mut ServerConnection<Relay> {
        &mut self.core
    }

    /// Whether the route made this a chat member.
    pub fn is_chat(&self) -> bool {
        self.core.app() == Relay::Chat
    }

    /// Whether this is an open WebSocket (past the handshake, not closing).
    pub fn is_open(&self) -> bool {
        self.core.is_open()
    }

    /// Keeps the `websockets` gauge in step: a connection counts as a WebSocket exactly
    /// while its core is open, so the gauge and `--max-connections` see it arrive at
    /// the handshake and leave when closing starts (the reactor uncounts one dropped
    /// while still open). Call with whether it was open before the call that ended.
    pub fn track(&self, was_open: bool, stats: &mut Stats) {
        match (was_open, self.is_open()) {
            (false, true) => stats.websockets += 1,
            (true, false) => stats.websockets -= 1,
            _ => {}
        }
    }

    /// Counts a connection the server drops: one still open ended without a closing
    /// handshake (a Close sent counts where it is sent), which clients see as 1006.
    pub fn dropped(&self, stats: &mut Stats) {
        if self.is_open() {
            stats.websockets -= 1;
            stats.closed_with(CloseCode::ABNORMAL.0);
        }
        stats.connections -= 1;
    }

    /// Runs the protocol over `data` (of which the first `scanned` bytes were seen by an
    /// earlier call) and returns how many bytes it consumed.
    pub fn process(
        &mut self,
        token: Token,
        data: &mut [u8],
        scanned: usize,
        env: &mut Env,
        io: &mut impl Gather,
    ) -> usize {
        let config = self.config(env);
        let core = &mut self.core;
        let mut pos = 0;
        loop {
            let scanned = if pos == 0 { scanned } else { 0 };
            let (n, event) = core.poll(&mut data[pos..], scanned, &config, env.now, io);
            pos += n;
            let Some(event) = event else {
                if n == 0 {
                    break;
                }
                continue;
            };
            match event {
                Event::Request { target, upgrade } => answer(token, target, upgrade, core, io, env),
                Event::Refused(refusal) => {
                    debug!(
                        "connection {}: {} {}",
                        token.0, refusal.status.0, refusal.reason
                    );
                    env.stats.refused(&refusal);
                }
                Event::Data(chunk) => {
                    let ends_message = chunk.ends_message();
                    let relay = core.app();
                    if let Some(frame) = relay.on_data(chunk, core, io) {
                        env.stats.messages_in_total += 1;
                        env.outbox.push((token, frame));
                    } else if ends_message && relay == Relay::Echo {
                        env.stats.messages_in_total += 1;
                        env.stats.messages_out_total += 1;
                    }
                }
                Event::PeerClosed(code) => env
                    .stats
                    .closed_with(code.unwrap_or(CloseCode::NO_STATUS).0),
                Event::Failed(error) => {
                    let code = error.close_code().0;
                    debug!("connection {}: {error}: closing with {code}", token.0);
                    env.stats.protocol_errors_total += 1;
                    env.stats.closed_with(code);
                }
            }
        }
        pos
    }

    /// What the core follows for this connection: the server's options, with the chat
    /// message limit for a chat member (chat gathers whole messages, echo streams).
    fn config<'c>(&self, env: &Env<'c>) -> ServerConfig<'c> {
        let mut config = env.config.server();
        if self.core.app() == Relay::Chat {
            config.max_message_size = config
                .max_message_size
                .min(env.config.chat_max_message_size);
        }
        config
    }

    /// Pauses reading while unsent output is too far behind (see
    /// `ServerConnection::pause_if_backed_up`); returns whether reading is paused.
    pub fn pause_if_backed_up(&mut self, unsent: usize, relaxed: bool, env: &Env) -> bool {
        let config = self.config(env);
        self.core
            .pause_if_backed_up(unsent, relaxed, &config, env.now)
    }

    /// Acts on a deadline due now, if any; counts it.
    pub fn on_tick(
        &mut self,
        token: Token,
        env: &mut Env,
        io: &mut impl Gather,
    ) -> Option<Timeout> {
        let timeout = self.core.on_tick(env.now, &env.config.timeouts(), io)?;
        debug!("connection {}: {timeout:?}", token.0);
        env.stats.timed_out(timeout);
        Some(timeout)
    }

    /// Since when this connection has waited for its request head, if it still does.
    pub fn awaiting_head_since(&self) -> Option<Tick> {
        self.core.awaiting_head_since()
    }

    /// Ends a connection still waiting for its request head, to make room for a
    /// newcomer when every descriptor is taken: it is told 503 (Retry-After).
    pub fn give_way(&mut self, env: &mut Env, io: &mut impl Gather) {
        self.core.refuse(Refusal::GAVE_WAY, env.now, io);
        env.stats.refused(&Refusal::GAVE_WAY);
        env.stats.evicted("request_head");
    }

    /// Asks an open connection to close with 1001 (server shutting down).
    pub fn go_away(&mut self, env: &mut Env, io: &mut impl Gather) {
        if let Some(code) = self.core.go_away(env.now, io) {
            env.stats.closed_with(code.0);
        }
    }

    /// Whether a chat message for this member may be queued now, with `unsent` bytes
    /// already waiting: only while open, and a member too far behind is to be dropped.
    pub fn admits(&self, token: Token, unsent: usize, stats: &mut Stats) -> Admit {
        if !self.is_open() {
            return Admit::Skip;
        }
        if unsent > SLOW_MEMBER_LIMIT {
            debug!(
                "connection {}: dropped: {unsent} bytes behind its chat room",
                token.0
            );
            stats.slow_members_dropped_total += 1;
            return Admit::Drop;
        }
        stats.messages_out_total += 1;
        Admit::Queue
    }
}

/// What to do with a chat message for a member (see [`Session::admits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Queue,
    /// Not an open WebSocket (closing): nothing is sent after Close.
    Skip,
    /// Too far behind: drop the member.
    Drop,
}

/// Answers a request head the protocol accepted, as its route says.
fn answer(
    token: Token,
    target: &str,
    upgrade: Option<Upgrade>,
    core: &mut ServerConnection<Relay>,
    io: &mut impl Gather,
    env: &mut Env,
) {
    let full = |env: &Env| {
        env.config
            .max_connections
            .is_some_and(|max| env.stats.websockets >= max as u64)
    };
    let refusal = match (route(target, upgrade.is_some()), upgrade) {
        (Ok(Route::Echo | Route::Chat(_)), Some(_)) if full(env) => {
            env.stats.shed_total += 1;
            OVER_CAPACITY
        }
        (Ok(route), Some(upgrade)) => {
            core.accept(&upgrade, env.now, io);
            env.stats.handshakes_total += 1;
            if let Route::Chat(room) = route {
                env.rooms.join(token, room.as_str());
                core.set_app(Relay::Chat);
            }
            return;
        }
        (Ok(route @ (Route::Stats | Route::Metrics | Route::Dashboard)), None) => {
            match observe::answer(route, env) {
                Ok(page) => {
                    core.respond(Status::OK, &page.headers(), &page.body, env.now, io);
                    env.stats.http_responses_total += 1;
                    return;
                }
                Err(refusal) => refusal,
            }
        }
        (Ok(_), None) => {
            let headers = [("Content-Type", "text/html; charset=utf-8")];
            core.respond(Status::OK, &headers, PAGE.as_bytes(), env.now, io);
            env.stats.http_responses_total += 1;
            return;
        }
        (Err(refusal), _) => refusal,
    };
    debug!(
        "connection {}: {} {}",
        token.0, refusal.status.0, refusal.reason
    );
    core.refuse(refusal, env.now, io);
    env.stats.refused(&refusal);
}
