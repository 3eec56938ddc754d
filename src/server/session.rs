//! One connection as the server sees it, sans-IO: the protocol core, the relay the
//! route chose, and what each event means for the server (routes, rooms, counters).
//! The reactor's `Connection` runs it over a socket; tests and fuzz targets run the very
//! same session over memory. It never touches a socket, a clock or a logger: bytes, the
//! time and the IO sink come in as arguments, a connection is named by a plain id (the
//! reactor's slab key), and what is worth logging comes back as a value ([`Ending`])
//! for the shell to log. (Only a `/stats` or `/metrics` request of a lone process reads
//! its RSS.)

use std::fmt;

use super::env::Env;
use super::observe;
use super::relay::{Compression, Gather, Relay, Relayed};
use super::room_message::RoomMessage;
use super::routes::{route, Route};
use super::stats::Stats;
use crate::protocol::close::CloseCode;
use crate::protocol::deadline::Tick;
use crate::protocol::error::ProtocolError;
use crate::protocol::handshake::{Refusal, Upgrade};
use crate::protocol::http::Status;
use crate::protocol::server::{
    Answer, Event, Flushed, Misuse, ServerConfig, ServerConnection, Timeout, HIGH_WATER,
};
use crate::protocol::transmit::Transmit;

/// A chat member this far behind when the next message for it arrives is dropped: it
/// cannot slow the room (its backlog is its own) and cannot grow our memory either.
/// Four times the high-water mark, so a member that merely pauses is not dropped.
pub const SLOW_MEMBER_LIMIT: usize = 4 * HIGH_WATER;

/// The demo page served at `GET /`.
const PAGE: &str = include_str!("../../static/index.html");

/// Why a call began to close the connection, for the shell's debug log (the counters
/// are kept already). At most one per call: after either, the rest is discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The request was answered with an HTTP error, by the protocol or by a route.
    Refused(Refusal),
    /// The client broke the protocol: a Close with the error's code is queued (§7.1.7).
    Failed(ProtocolError),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Refused(refusal) => write!(f, "{} {}", refusal.status.0, refusal.reason),
            Ending::Failed(error) => write!(f, "{error}: closing with {}", error.close_code().0),
        }
    }
}

/// What a read did: the bytes it consumed, and why the connection began to close, if it
/// did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Bytes consumed from the front of the input; the rest is kept for the next read.
    pub consumed: usize,
    /// Why the connection began to close during the read, if it did.
    pub ending: Option<Ending>,
}

/// The server's side of one connection: the protocol core, carrying the relay that
/// the route chose. Its calls mirror the core's and keep its order (see
/// `ServerConnection`'s "Call order"): each turn [`poll_read`](Self::poll_read), then
/// [`handle_read`](Self::handle_read) per read (which answers requests and relays
/// messages itself) or [`handle_eof`](Self::handle_eof), then, once output is written,
/// [`handle_flushed`](Self::handle_flushed); on the clock
/// [`handle_timeout`](Self::handle_timeout); between turns [`deliver`](Self::deliver)
/// (a chat message), [`go_away`](Self::go_away) (shutdown) or
/// [`give_way`](Self::give_way) (eviction). A core [`Misuse`] is passed on for the
/// shell to drop the connection.
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

    /// Whether to read the socket now, with `unsent` bytes of output not yet written
    /// (see `ServerConnection::poll_read`).
    pub fn poll_read(&mut self, unsent: usize, relaxed: bool, env: &Env<'_>) -> bool {
        let config = self.config(env);
        self.core.poll_read(unsent, relaxed, &config, env.now)
    }

    /// Bytes were read: runs the protocol over `data` (of which the first `scanned`
    /// bytes were seen by an earlier call) until it needs more, answers requests as the
    /// routes say, relays messages (chat messages go to `env.outbox` from sender `id`),
    /// and says how many bytes it consumed and why the connection began to close, if
    /// it did.
    pub fn handle_read(
        &mut self,
        id: usize,
        data: &mut [u8],
        scanned: usize,
        env: &mut Env<'_>,
        io: &mut impl Gather,
    ) -> Result<Handled, Misuse> {
        let config = self.config(env);
        let core = &mut self.core;
        let (mut pos, mut ending) = (0, None);
        loop {
            let scanned = if pos == 0 { scanned } else { 0 };
            // One match on the result, field by field: moving the event out of it whole
            // (with `?`) copies it, once per frame on the echo path.
            let read = core.handle_read(&mut data[pos..], scanned, &config, env.now, io);
            let (n, event) = match read {
                Err(misuse) => return Err(misuse),
                Ok((0, None)) => break,
                Ok((n, None)) => {
                    pos += n;
                    continue;
                }
                Ok((n, Some(event))) => (n, event),
            };
            pos += n;
            match event {
                Event::Request { target, upgrade } => {
                    ending = answer(id, target, upgrade, core, io, env)?;
                }
                Event::Refused(refusal) => {
                    env.stats.refused(&refusal);
                    ending = Some(Ending::Refused(refusal));
                }
                Event::Data(chunk) => {
                    let ends_message = chunk.ends_message();
                    let relay = core.app();
                    let deflate = Compression {
                        codec: env.codec,
                        enabled: env.config.deflates(),
                        id,
                        limit: config.max_message_size,
                        now: env.now,
                    };
                    match relay.on_data(chunk, core, io, deflate)? {
                        Relayed::Chat(frame) => {
                            env.stats.messages_in_total += 1;
                            env.outbox.push((id, frame));
                        }
                        Relayed::Failed(error) => {
                            env.stats.protocol_errors_total += 1;
                            env.stats.closed_with(error.close_code().0);
                            ending = Some(Ending::Failed(error));
                        }
                        Relayed::Kept if ends_message && relay == Relay::Echo => {
                            env.stats.messages_in_total += 1;
                            env.stats.messages_out_total += 1;
                        }
                        Relayed::Kept => {}
                    }
                }
                Event::PeerClosed(code) => env
                    .stats
                    .closed_with(code.unwrap_or(CloseCode::NO_STATUS).0),
                Event::Failed(error) => {
                    env.stats.protocol_errors_total += 1;
                    env.stats.closed_with(error.close_code().0);
                    ending = Some(Ending::Failed(error));
                }
            }
        }
        Ok(Handled {
            consumed: pos,
            ending,
        })
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

    /// The client ended its side, with `unsent` bytes of output not yet written;
    /// returns whether the connection is done (see `ServerConnection::handle_eof`).
    pub fn handle_eof(&mut self, unsent: usize, now: Tick) -> Result<bool, Misuse> {
        self.core.handle_eof(unsent, now)
    }

    /// Output was written and `unsent` bytes are left (see
    /// `ServerConnection::handle_flushed`).
    pub fn handle_flushed(&mut self, unsent: usize, now: Tick) -> Flushed {
        self.core.handle_flushed(unsent, now)
    }

    /// Whether writing ends once the output owed is flushed (our Close or final answer
    /// is queued).
    pub fn shuts_down_when_flushed(&self) -> bool {
        self.core.shuts_down_when_flushed()
    }

    /// Acts on a deadline due now, if any; counts it and says which.
    pub fn handle_timeout(
        &mut self,
        env: &mut Env<'_>,
        io: &mut impl Gather,
    ) -> Result<Option<Timeout>, Misuse> {
        let timeout = self
            .core
            .handle_timeout(env.now, &env.config.timeouts(), io)?;
        if let Some(timeout) = timeout {
            env.stats.timed_out(timeout);
        }
        Ok(timeout)
    }

    /// Since when this connection has waited for its request head, if it still does.
    pub fn awaiting_head_since(&self) -> Option<Tick> {
        self.core.awaiting_head_since()
    }

    /// Ends a connection still waiting for its request head, to make room for a
    /// newcomer when every descriptor is taken: it is told 503 (Retry-After).
    pub fn give_way(&mut self, env: &mut Env<'_>, io: &mut impl Gather) -> Result<(), Misuse> {
        self.core.cut_short(Refusal::GAVE_WAY, env.now, io)?;
        env.stats.refused(&Refusal::GAVE_WAY);
        env.stats.evicted("request_head");
        Ok(())
    }

    /// Asks an open connection to close with 1001 (server shutting down).
    pub fn go_away(&mut self, env: &mut Env<'_>, io: &mut impl Gather) -> Result<(), Misuse> {
        if let Some(code) = self.core.go_away(env.now, io)? {
            env.stats.closed_with(code.0);
        }
        Ok(())
    }

    /// Sends a chat message to this member through its core (compressed if it agreed
    /// to permessage-deflate and the message was worth compressing), with `unsent`
    /// bytes already waiting for it. The core sends nothing after its Close (§5.5.1): then the
    /// message is skipped. A member too far behind gets nothing more and is to be
    /// dropped, unless it is closing anyway.
    pub fn deliver(
        &mut self,
        message: &RoomMessage,
        unsent: usize,
        stats: &mut Stats,
        tx: &mut impl Transmit,
    ) -> Result<Admit, Misuse> {
        let behind = unsent > SLOW_MEMBER_LIMIT;
        let frame = message.frame_for(self.core.deflate());
        // A member too far behind is sent nothing (it is dropped), but whether the core
        // would still send decides between dropping it and letting it finish closing.
        let sent = if behind {
            self.core.send_shared(frame, &mut Withheld)?
        } else {
            self.core.send_shared(frame, tx)?
        };
        Ok(match (sent, behind) {
            (false, _) => Admit::Skip,
            (true, true) => {
                stats.slow_members_dropped_total += 1;
                Admit::Drop
            }
            (true, false) => {
                stats.messages_out_total += 1;
                Admit::Queue
            }
        })
    }
}

/// The output of a member about to be dropped: nothing is queued for it.
struct Withheld;

impl Transmit for Withheld {
    fn transmit(&mut self, _head: &[u8], _body: &[u8]) {}
    fn transmit_shared(&mut self, _frame: &std::rc::Rc<[u8]>) {}
}

/// What became of a chat message for a member (see [`Session::deliver`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Queued: the member is to be written to.
    Queue,
    /// Not sent: the member's core has sent its Close, after which nothing is sent.
    Skip,
    /// Too far behind (over [`SLOW_MEMBER_LIMIT`]): drop the member.
    Drop,
}

/// Answers a request head the protocol accepted, as its route says; returns the
/// refusal if it is one.
fn answer(
    id: usize,
    target: &str,
    upgrade: Option<Upgrade<'_>>,
    core: &mut ServerConnection<Relay>,
    io: &mut impl Gather,
    env: &mut Env<'_>,
) -> Result<Option<Ending>, Misuse> {
    let full = |env: &Env<'_>| {
        env.config
            .max_connections
            .is_some_and(|max| env.stats.websockets >= max as u64)
    };
    let refusal = match (route(target, upgrade.is_some()), upgrade) {
        (Ok(Route::Echo | Route::Chat(_)), Some(_)) if full(env) => {
            env.stats.shed_total += 1;
            Refusal::OVER_CAPACITY
        }
        (Ok(route), Some(upgrade)) => {
            core.handle_answer(Answer::Accept(upgrade), env.now, io)?;
            env.stats.handshakes_total += 1;
            if let Route::Chat(room) = route {
                env.rooms.join(id, room.as_str());
                core.set_app(Relay::Chat);
            }
            return Ok(None);
        }
        (Ok(route @ (Route::Stats | Route::Metrics | Route::Dashboard)), None) => {
            match observe::answer(route, env) {
                Ok(page) => {
                    let headers = page.headers();
                    let answer = Answer::Respond {
                        status: Status::OK,
                        headers: &headers,
                        body: &page.body,
                    };
                    core.handle_answer(answer, env.now, io)?;
                    env.stats.http_responses_total += 1;
                    return Ok(None);
                }
                Err(refusal) => refusal,
            }
        }
        (Ok(_), None) => {
            let answer = Answer::Respond {
                status: Status::OK,
                headers: &[("Content-Type", "text/html; charset=utf-8")],
                body: PAGE.as_bytes(),
            };
            core.handle_answer(answer, env.now, io)?;
            env.stats.http_responses_total += 1;
            return Ok(None);
        }
        (Err(refusal), _) => refusal,
    };
    core.handle_answer(Answer::Refuse(refusal), env.now, io)?;
    env.stats.refused(&refusal);
    Ok(Some(Ending::Refused(refusal)))
}
