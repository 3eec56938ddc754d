//! One connection over its transport: Handshaking → Open → Closing → Draining → dropped.
//!
//! The connection moves bytes between its transport and the sans-IO protocol core; it
//! never parses bytes itself. Memory (DESIGN.md budget): an idle connection is this
//! struct and nothing else. Bytes that cannot be handled now (an unfinished request
//! head or frame header, a frame or chat message still arriving, output the socket
//! would not take) live in [`Buffers`], boxed, which exists only while it holds bytes.
//!
//! Invariants: once a Close frame or a final HTTP response is queued (`Closing`),
//! nothing else is ever queued; reading pauses while unsent output is above
//! [`HIGH_WATER`] and resumes below [`LOW_WATER`], so a client that does not read
//! cannot grow our memory, and one that does not drain that far within
//! `--send-timeout` is dropped.

use std::io;
use std::rc::Rc;

use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::config::Config;
use super::output::Output;
use super::rooms::Rooms;
use super::stats::{rss_bytes, Stats, StatsReport};
use super::timers::{due, Due, Tick, Wait};
use super::transport::Transport;
use crate::protocol::close::{encode_close_payload, CloseCode};
use crate::protocol::error::ProtocolError;
use crate::protocol::frame::{FrameHeader, OpCode};
use crate::protocol::handshake::{route, Endpoint, Route};
use crate::protocol::http::{parse_request, write_response, Header, Status, MAX_HEADERS};
use crate::protocol::message::{DataChunk, Event, Receiver, ReceiverConfig, Role};

/// At this much unsent output the connection stops reading until the client catches up.
pub const HIGH_WATER: usize = 256 * 1024;

/// Reading resumes once unsent output is below this. The gap between the marks means a
/// client that reads slowly costs a pause and a resume per 192 KiB, not per frame.
pub const LOW_WATER: usize = 64 * 1024;

/// A chat member this far behind when the next message for it arrives is dropped: it
/// cannot slow the room (its backlog is its own) and cannot grow our memory either.
/// Four times the high-water mark, so a member that merely pauses is not dropped.
pub const SLOW_MEMBER_LIMIT: usize = 4 * HIGH_WATER;

/// Reads per readiness event before yielding to other connections (fairness); with a
/// 64 KiB buffer that is 1 MiB per turn.
const READS_PER_TURN: usize = 16;

/// The demo page served at `GET /`.
const PAGE: &str = include_str!("../../static/index.html");

/// A chat message encoded once as a whole frame, to be queued for every room member.
pub type Broadcast = (Token, Rc<[u8]>);

/// What the reactor lends a connection while it runs.
pub struct Shared<'a> {
    pub config: &'a Config,
    pub stats: &'a mut Stats,
    pub registry: &'a Registry,
    pub rooms: &'a mut Rooms,
    /// Chat messages completed during this call, from sender to the sender's room;
    /// the reactor fans them out once the sender is done.
    pub outbox: &'a mut Vec<Broadcast>,
    pub now: Tick,
    pub uptime_secs: u64,
}

/// What the reactor should do with the connection afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Input may be left unread (the read budget ran out, or reading just resumed
    /// after backpressure, so no readiness edge will come): drive it again next turn.
    Again,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the HTTP request head.
    Handshaking,
    /// Exchanging frames.
    Open(Liveness),
    /// A final response or Close frame is queued: flush it, then shut down writing.
    Closing,
    /// Writing is shut down: discard input until the client's EOF (lingering close, so
    /// unread input cannot turn our FIN into a RST that destroys the last bytes).
    Draining,
    /// The client ended its side (EOF) while output we owe it is unsent: a half-closed
    /// client may still be reading, so write it all, then drop.
    Flushing,
}

/// What an open connection is waiting for; `since` says since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// Input arrived at `since`; silence is timed from then.
    Heard,
    /// Silent so long that a heartbeat Ping is out (`since` is still the last input).
    Pinged,
    /// Reading is paused (backpressure) since `since`, until unsent output drains below
    /// [`LOW_WATER`]. Draining is what counts, not a trickle of bytes: a client whose
    /// kernel takes a few bytes now and then but that never reads must not stay forever.
    Paused,
}

/// What an open connection does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    Echo,
    /// Sends each whole message to every member of its room (see `Rooms`).
    Chat,
}

/// Why a turn ended, which decides what the reactor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Nothing to do until the next readiness event.
    Idle,
    /// The read budget ran out with input possibly left.
    Budget,
    /// Reading is paused because unsent output passed [`HIGH_WATER`].
    Paused,
    /// The connection is finished.
    Done,
}

/// Bytes a connection holds only while it must.
#[derive(Debug, Default)]
struct Buffers {
    /// Unconsumed input: an unfinished request head, frame header or control frame.
    input: Vec<u8>,
    /// The unmasked payload received so far of a data frame (echo) or a whole message
    /// (chat) that is still arriving.
    gathered: Vec<u8>,
    /// Output the socket would not take yet.
    output: Output,
}

impl Buffers {
    fn is_empty(&self) -> bool {
        self.input.is_empty() && self.gathered.is_empty() && self.output.is_empty()
    }
}

/// The answer to a request head: what `route` decided, or a refusal.
#[derive(Debug, Clone, Copy)]
enum Reply<'a> {
    Serve(Route<'a>),
    Refuse {
        status: Status,
        headers: &'static [(&'static str, &'static str)],
        /// The `/stats` name of the refusal.
        name: &'static str,
        reason: &'static str,
    },
}

/// One client connection over a transport `S` (a TCP socket in the server).
#[derive(Debug)]
pub struct Connection<S = TcpStream> {
    socket: S,
    /// When the current wait began (see [`Phase`] and [`Liveness`]).
    since: Tick,
    phase: Phase,
    relay: Relay,
    /// The interest currently registered, so reregistration happens only on change.
    registered: Interest,
    receiver: Receiver,
    buffers: Option<Box<Buffers>>,
}

impl<S: Transport> Connection<S> {
    /// Registers an accepted socket for reading.
    pub fn new(mut socket: S, token: Token, registry: &Registry, now: Tick) -> io::Result<Self> {
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(Connection {
            socket,
            since: now,
            phase: Phase::Handshaking,
            relay: Relay::Echo,
            registered: Interest::READABLE,
            receiver: Receiver::default(),
            buffers: None,
        })
    }

    pub fn is_websocket(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// The transport, for the in-memory harness to feed.
    pub(super) fn transport_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// Asks an open connection to close with 1001 (server shutting down).
    pub fn go_away(&mut self, token: Token, sh: &mut Shared) -> Verdict {
        let result = match self.phase {
            Phase::Open(_) => self.send_close(CloseCode::GOING_AWAY, "server shutting down", sh),
            Phase::Handshaking => {
                self.set_phase(Phase::Closing, sh);
                Ok(())
            }
            _ => Ok(()),
        };
        self.finish_turn(token, result.map(|()| Turn::Idle), sh)
    }

    /// Handles readiness (or a retry): flush, read and process, flush again. Events are
    /// only hints: every step tries the syscall and accepts `WouldBlock`, so a spurious
    /// or stale event is harmless.
    pub fn drive(&mut self, token: Token, buf: &mut [u8], sh: &mut Shared) -> Verdict {
        let result = self.flush(sh).and_then(|()| self.read_turn(token, buf, sh));
        self.finish_turn(token, result, sh)
    }

    /// Queues a chat message for this member (the reactor's fan-out).
    pub fn deliver(&mut self, token: Token, frame: &Rc<[u8]>, sh: &mut Shared) -> Verdict {
        if !self.is_websocket() {
            return Verdict::Keep;
        }
        if self.output_len() > SLOW_MEMBER_LIMIT {
            debug!(
                "connection {}: dropped: {} bytes behind its chat room",
                token.0,
                self.output_len()
            );
            sh.stats.slow_members_dropped_total += 1;
            return Verdict::Drop;
        }
        sh.stats.messages_out_total += 1;
        let result = self.write_shared(frame, sh).map(|()| Turn::Idle);
        self.finish_turn(token, result, sh)
    }

    /// Acts on a due deadline, if any.
    pub fn on_tick(&mut self, token: Token, sh: &mut Shared) -> Verdict {
        let wait = match self.phase {
            Phase::Handshaking => Wait::Handshake,
            Phase::Open(Liveness::Heard) => Wait::Idle { pinged: false },
            Phase::Open(Liveness::Pinged) => Wait::Idle { pinged: true },
            Phase::Open(Liveness::Paused) => Wait::Paused,
            Phase::Closing | Phase::Draining | Phase::Flushing => Wait::Close,
        };
        let Some(what) = due(wait, sh.now.saturating_sub(self.since), sh.config) else {
            return Verdict::Keep;
        };
        debug!("connection {}: {what:?}", token.0);
        let result = match what {
            Due::HandshakeTimeout => {
                sh.stats.timeouts_total += 1;
                let refuse = Reply::Refuse {
                    status: Status(408, "Request Timeout"),
                    headers: &[],
                    name: "timeout",
                    reason: "request head not received in time",
                };
                self.reply(token, refuse, sh).map(|()| Turn::Idle)
            }
            Due::Ping => {
                // The silence goes on counting from the last input.
                self.phase = Phase::Open(Liveness::Pinged);
                self.send_frame(OpCode::Ping, true, &[], sh)
                    .map(|()| Turn::Idle)
            }
            Due::IdleTimeout => {
                sh.stats.timeouts_total += 1;
                self.send_close(CloseCode::GOING_AWAY, "idle timeout", sh)
                    .map(|()| Turn::Idle)
            }
            Due::SendTimeout | Due::CloseTimeout => {
                sh.stats.timeouts_total += 1;
                Ok(Turn::Done)
            }
        };
        self.finish_turn(token, result, sh)
    }

    /// Reads until `WouldBlock`, the turn's budget, or backpressure.
    fn read_turn(&mut self, token: Token, buf: &mut [u8], sh: &mut Shared) -> io::Result<Turn> {
        if self.phase == Phase::Flushing {
            return Ok(Turn::Idle);
        }
        for _ in 0..READS_PER_TURN {
            if self.pause_if_backed_up(sh) {
                return Ok(Turn::Paused);
            }
            // Input kept from before (under 8 KiB: a head is refused at MAX_HEAD_LEN) goes
            // in front of the fresh bytes, so both are processed in place as one slice.
            let kept = self.buffers.as_ref().map_or(0, |b| b.input.len());
            debug_assert!(kept < buf.len());
            match self.socket.read(&mut buf[kept..]) {
                // EOF: the client is done sending. With nothing left to send it, we are
                // done too; a client that ends without a Close frame gets no Close from
                // us (§7.1.5: it sees 1006).
                Ok(0) if self.output_len() == 0 => return Ok(Turn::Done),
                Ok(0) => {
                    self.set_phase(Phase::Flushing, sh);
                    return Ok(Turn::Idle);
                }
                Ok(n) => {
                    sh.stats.bytes_in_total += n as u64;
                    if let Phase::Open(_) = self.phase {
                        // Any input is a sign of life, not only a Pong (§5.5.2 allows
                        // a client to answer a Ping late, or with a frame of its own).
                        self.since = sh.now;
                        self.phase = Phase::Open(Liveness::Heard);
                    }
                    if let Some(b) = self.buffers.as_mut().filter(|_| kept > 0) {
                        buf[..kept].copy_from_slice(&b.input);
                        b.input = Vec::new();
                    }
                    let data = &mut buf[..kept + n];
                    let used = self.process(token, data, kept, sh)?;
                    if used < data.len() {
                        // Only what cannot be consumed yet is copied out, and released
                        // once it is: a partial head, frame header or control frame.
                        self.buffers().input.extend_from_slice(&data[used..]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Turn::Idle),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Turn::Budget)
    }

    /// Pauses reading from an open connection whose unsent output reached
    /// [`HIGH_WATER`]; returns whether reading is paused.
    fn pause_if_backed_up(&mut self, sh: &Shared) -> bool {
        match self.phase {
            Phase::Open(Liveness::Paused) => true,
            Phase::Open(_) if self.output_len() >= HIGH_WATER => {
                self.phase = Phase::Open(Liveness::Paused);
                self.since = sh.now;
                true
            }
            _ => false,
        }
    }

    /// Ends a turn: flush, resume reading below [`LOW_WATER`], move Closing → Draining
    /// once the output is out, release idle buffers, keep the registered interest in
    /// step with pending output, and tell the reactor whether to come back without
    /// waiting for an event.
    fn finish_turn(&mut self, token: Token, result: io::Result<Turn>, sh: &mut Shared) -> Verdict {
        let result = result.and_then(|turn| {
            if turn == Turn::Done {
                return Ok(Verdict::Drop);
            }
            self.flush(sh)?;
            let resumed =
                self.phase == Phase::Open(Liveness::Paused) && self.output_len() < LOW_WATER;
            if resumed {
                // Silence counts anew: input could not be heard while paused.
                self.phase = Phase::Open(Liveness::Heard);
                self.since = sh.now;
            }
            let drained = self.output_len() == 0;
            match self.phase {
                Phase::Flushing if drained => return Ok(Verdict::Drop),
                Phase::Closing if drained => {
                    self.socket.shutdown_write()?;
                    self.set_phase(Phase::Draining, sh);
                }
                _ => {}
            }
            if self.buffers.as_ref().is_some_and(|b| b.is_empty()) {
                self.buffers = None;
            }
            let want = if drained {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            if want != self.registered {
                sh.registry.reregister(&mut self.socket, token, want)?;
                self.registered = want;
            }
            // Reading that stopped short of WouldBlock gets no new readable edge: come
            // back for it. A still-paused connection waits for the writable event.
            Ok(if turn == Turn::Budget || resumed {
                Verdict::Again
            } else {
                Verdict::Keep
            })
        });
        match result {
            Ok(verdict) => verdict,
            Err(e) => {
                debug!("connection {}: dropped: {e}", token.0);
                Verdict::Drop
            }
        }
    }

    /// Runs the protocol over `data` (of which the first `scanned` bytes were seen by an
    /// earlier call) and returns how many bytes it consumed.
    fn process(
        &mut self,
        token: Token,
        data: &mut [u8],
        scanned: usize,
        sh: &mut Shared,
    ) -> io::Result<usize> {
        let mut pos = 0;
        if self.phase == Phase::Handshaking {
            match self.handshake(token, data, scanned, sh)? {
                Some(head_len) => pos = head_len,
                None => return Ok(0),
            }
        }
        let rx_config = ReceiverConfig {
            role: Role::Server,
            max_message_size: sh.config.max_message_size,
        };
        while let Phase::Open(_) = self.phase {
            match self.receiver.poll(&rx_config, &mut data[pos..]) {
                Ok((0, None)) => return Ok(pos),
                Ok((n, event)) => {
                    pos += n;
                    if let Some(event) = event {
                        self.on_event(token, event, sh)?;
                    }
                }
                Err(e) => self.fail(token, e, sh)?,
            }
        }
        // Closing or draining: whatever else arrives is discarded.
        Ok(data.len())
    }

    /// Parses the request head once complete and answers it. Returns the head's length
    /// (bytes after it are frames) or `None` while the head is unfinished.
    fn handshake(
        &mut self,
        token: Token,
        data: &[u8],
        scanned: usize,
        sh: &mut Shared,
    ) -> io::Result<Option<usize>> {
        let mut storage = [Header::default(); MAX_HEADERS];
        let (reply, used) = match parse_request(data, scanned, &mut storage) {
            Ok(None) => return Ok(None),
            Ok(Some((request, head_len))) => {
                let reply = match route(&request, &sh.config.policy()) {
                    Ok(route) => Reply::Serve(route),
                    Err(e) => Reply::Refuse {
                        status: e.status(),
                        headers: e.headers(),
                        name: e.name(),
                        reason: e.reason(),
                    },
                };
                (reply, head_len)
            }
            Err(e) => {
                let refuse = Reply::Refuse {
                    status: e.status(),
                    headers: &[],
                    name: e.name(),
                    reason: e.reason(),
                };
                (refuse, data.len())
            }
        };
        self.reply(token, reply, sh)?;
        Ok(Some(used))
    }

    /// Sends the answer to a request head and moves to the phase it leads to.
    fn reply(&mut self, token: Token, reply: Reply, sh: &mut Shared) -> io::Result<()> {
        let mut out = Vec::new();
        let reply = match reply {
            Reply::Serve(Route::Upgrade { .. })
                if sh
                    .config
                    .max_connections
                    .is_some_and(|max| sh.stats.websockets >= max as u64) =>
            {
                sh.stats.shed_total += 1;
                Reply::Refuse {
                    status: Status::SERVICE_UNAVAILABLE,
                    headers: &[("Retry-After", "1")],
                    name: "over_capacity",
                    reason: "server at --max-connections",
                }
            }
            other => other,
        };
        match reply {
            Reply::Serve(Route::Upgrade {
                accept,
                endpoint,
                protocol,
            }) => {
                let accept = std::str::from_utf8(&accept).expect("base64 is ASCII");
                let mut headers = vec![
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", accept),
                ];
                if let Some(protocol) = protocol {
                    headers.push(("Sec-WebSocket-Protocol", protocol));
                }
                write_response(&mut out, Status::SWITCHING_PROTOCOLS, &headers, b"");
                sh.stats.handshakes_total += 1;
                if let Endpoint::Chat { room } = endpoint {
                    sh.rooms.join(token, room);
                    self.relay = Relay::Chat;
                }
                self.set_phase(Phase::Open(Liveness::Heard), sh);
            }
            Reply::Serve(Route::Page) => {
                let headers = [("Content-Type", "text/html; charset=utf-8")];
                write_response(&mut out, Status::OK, &headers, PAGE.as_bytes());
                sh.stats.http_responses_total += 1;
                self.set_phase(Phase::Closing, sh);
            }
            Reply::Serve(Route::Stats) => {
                sh.stats.rss_bytes = rss_bytes().unwrap_or(0);
                sh.stats.rooms = sh.rooms.len() as u64;
                let report = StatsReport {
                    stats: sh.stats,
                    uptime_secs: sh.uptime_secs,
                    pid: std::process::id(),
                };
                let body = serde_json::to_vec_pretty(&report).expect("counters serialize");
                let headers = [
                    ("Content-Type", "application/json"),
                    ("Cache-Control", "no-store"),
                ];
                write_response(&mut out, Status::OK, &headers, &body);
                sh.stats.http_responses_total += 1;
                self.set_phase(Phase::Closing, sh);
            }
            Reply::Refuse {
                status,
                headers,
                name,
                reason,
            } => {
                debug!(
                    "connection {}: {} {}: {reason}",
                    token.0, status.0, status.1
                );
                let mut all = vec![("Content-Type", "text/plain; charset=utf-8")];
                all.extend_from_slice(headers);
                let body = format!("{} {}: {reason}\n", status.0, status.1);
                write_response(&mut out, status, &all, body.as_bytes());
                sh.stats.http_responses_total += 1;
                sh.stats.handshake_failed(name);
                self.set_phase(Phase::Closing, sh);
            }
        }
        self.write_or_queue(&out, &[], sh)
    }

    fn on_event(&mut self, token: Token, event: Event, sh: &mut Shared) -> io::Result<()> {
        match event {
            Event::Data(chunk) => match self.relay {
                Relay::Echo => self.echo(chunk, sh),
                Relay::Chat => {
                    self.gather(token, chunk, sh);
                    Ok(())
                }
            },
            // §5.5.2/§5.5.3: a Pong carries the Ping's payload.
            Event::Ping(payload) => self.send_frame(OpCode::Pong, true, payload, sh),
            Event::Pong(_) => Ok(()),
            // §5.5.1: answer with a Close, echoing the status code (none if none).
            Event::Close(body) => match body.code {
                Some(code) => self.send_close(code, "", sh),
                None => {
                    self.set_phase(Phase::Closing, sh);
                    sh.stats.closed_with(CloseCode::NO_STATUS.0);
                    self.send_frame(OpCode::Close, true, &[], sh)
                }
            },
        }
    }

    /// Echoes a data frame. A frame whole in the read buffer goes straight back out with
    /// one vectored write; one that arrives in pieces is gathered first, because its
    /// echo must not start before the frame is known to be valid.
    fn echo(&mut self, chunk: DataChunk, sh: &mut Shared) -> io::Result<()> {
        if chunk.ends_message() {
            sh.stats.messages_in_total += 1;
            sh.stats.messages_out_total += 1;
        }
        if chunk.starts_frame() && chunk.ends_frame() {
            return self.send_frame(chunk.opcode, chunk.fin, chunk.payload, sh);
        }
        let frame = &mut self.buffers().gathered;
        frame.extend_from_slice(chunk.payload);
        if chunk.ends_frame() {
            let frame = std::mem::take(frame);
            self.send_frame(chunk.opcode, chunk.fin, &frame, sh)?;
        }
        Ok(())
    }

    /// Gathers a chat message; once whole (and so valid: UTF-8 is checked as it
    /// arrives) it is encoded as one unfragmented frame, once for the whole room.
    /// Fragments cannot be relayed as they come: members would see several senders'
    /// fragments interleaved, which §5.4 forbids.
    fn gather(&mut self, token: Token, chunk: DataChunk, sh: &mut Shared) {
        let whole_here =
            chunk.opcode != OpCode::Continuation && chunk.starts_frame() && chunk.ends_message();
        let frame = if whole_here {
            encode_frame(chunk.message, chunk.payload)
        } else {
            let gathered = &mut self.buffers().gathered;
            gathered.extend_from_slice(chunk.payload);
            if !chunk.ends_message() {
                return;
            }
            let message = std::mem::take(gathered);
            encode_frame(chunk.message, &message)
        };
        sh.stats.messages_in_total += 1;
        sh.outbox.push((token, frame));
    }

    /// Fails the connection for a protocol violation (§7.1.7): Close with its code.
    fn fail(&mut self, token: Token, error: ProtocolError, sh: &mut Shared) -> io::Result<()> {
        let code = error.close_code();
        debug!("connection {}: {error}: closing with {}", token.0, code.0);
        sh.stats.protocol_errors_total += 1;
        self.send_close(code, &error.to_string(), sh)
    }

    fn send_close(&mut self, code: CloseCode, reason: &str, sh: &mut Shared) -> io::Result<()> {
        let (payload, len) = encode_close_payload(code, reason);
        self.set_phase(Phase::Closing, sh);
        sh.stats.closed_with(code.0);
        self.send_frame(OpCode::Close, true, &payload[..len], sh)
    }

    /// The one place the phase changes between its kinds. A new kind of phase starts its
    /// wait now (`since`). A connection counts as a WebSocket exactly while `Open`: the
    /// gauge and `--max-connections` see it arrive at the handshake and leave when
    /// closing starts (the reactor uncounts one dropped while still `Open`).
    fn set_phase(&mut self, phase: Phase, sh: &mut Shared) {
        let was_open = self.is_websocket();
        let open = matches!(phase, Phase::Open(_));
        match (was_open, open) {
            (false, true) => sh.stats.websockets += 1,
            (true, false) => sh.stats.websockets -= 1,
            _ => {}
        }
        if std::mem::discriminant(&phase) != std::mem::discriminant(&self.phase) {
            self.since = sh.now;
        }
        self.phase = phase;
    }

    /// Sends one unmasked server frame (§5.1).
    fn send_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        sh: &mut Shared,
    ) -> io::Result<()> {
        // Never send after Close (§5.5.1): once closing, only the Close itself goes
        // out, and a Ping or Pong that races it is dropped.
        if !self.is_websocket() && opcode != OpCode::Close {
            return Ok(());
        }
        let header = FrameHeader {
            fin,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let (head, head_len) = header.encode();
        self.write_or_queue(&head[..head_len], payload, sh)
    }

    /// Writes `a` then `b` now if nothing is queued before them; whatever the socket does
    /// not take is copied into the output queue.
    fn write_or_queue(&mut self, a: &[u8], b: &[u8], sh: &mut Shared) -> io::Result<()> {
        let done = self.write_now(a, b, sh)?;
        if done < a.len() + b.len() {
            let output = &mut self.buffers().output;
            if done < a.len() {
                output.push_copy(&a[done..]);
                output.push_copy(b);
            } else {
                output.push_copy(&b[done - a.len()..]);
            }
        }
        Ok(())
    }

    /// Writes a shared frame now if nothing is queued before it, and queues the rest of
    /// it by reference: the room's members share one copy.
    fn write_shared(&mut self, frame: &Rc<[u8]>, sh: &mut Shared) -> io::Result<()> {
        let done = self.write_now(frame, &[], sh)?;
        if done < frame.len() {
            self.buffers().output.push_shared(Rc::clone(frame), done);
        }
        Ok(())
    }

    /// Writes as much of `a` then `b` as the socket takes, provided nothing is queued
    /// (which must go first); returns how much went out.
    fn write_now(&mut self, a: &[u8], b: &[u8], sh: &mut Shared) -> io::Result<usize> {
        let total = a.len() + b.len();
        let mut done = 0;
        while self.output_len() == 0 && done < total {
            let result = if done < a.len() {
                self.socket
                    .write_vectored(&[io::IoSlice::new(&a[done..]), io::IoSlice::new(b)])
            } else {
                self.socket.write(&b[done - a.len()..])
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        sh.stats.bytes_out_total += done as u64;
        Ok(done)
    }

    /// Writes queued output until done or `WouldBlock`.
    fn flush(&mut self, sh: &mut Shared) -> io::Result<()> {
        let Some(b) = self.buffers.as_mut() else {
            return Ok(());
        };
        let written = b.output.write_to(&mut self.socket)?;
        sh.stats.bytes_out_total += written as u64;
        Ok(())
    }

    fn output_len(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.output.len())
    }

    fn buffers(&mut self) -> &mut Buffers {
        self.buffers.get_or_insert_with(Box::default)
    }

    /// Deregisters the socket before it is dropped (and closed).
    pub fn deregister(&mut self, registry: &Registry) {
        // A failure here means the descriptor is already gone from the epoll set.
        let _ = registry.deregister(&mut self.socket);
    }
}

/// One unfragmented, unmasked server frame (§5.2) in a single shared allocation.
fn encode_frame(opcode: OpCode, payload: &[u8]) -> Rc<[u8]> {
    let header = FrameHeader {
        fin: true,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let (head, head_len) = header.encode();
    // A chain of slice iterators has an exact length: `Rc` allocates once.
    head[..head_len].iter().chain(payload).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Shutdown;
    use std::time::{Duration, Instant};

    use mio::Poll;

    #[test]
    fn an_idle_connection_fits_the_memory_budget() {
        // DESIGN.md: at most 96 bytes of user memory per idle connection. An idle
        // connection is exactly its slab slot: this struct plus the slab's entry tag.
        // Growing it is a decision to take on purpose, with a new RSS measurement.
        assert_eq!(std::mem::size_of::<Receiver>(), 40);
        // mio's TcpStream carries an 8-byte selector id in debug builds only.
        let expected = if cfg!(debug_assertions) { 72 } else { 64 };
        assert_eq!(std::mem::size_of::<Connection>(), expected);
        assert!(
            std::mem::size_of::<Option<Box<Buffers>>>() == 8,
            "buffers are one pointer"
        );
    }

    /// A client sends a frame and a Close, then half-closes, before the server has read
    /// any of it. With a tiny send buffer the echo cannot all go out at once, so the
    /// server reads the EOF while it still owes the client most of the echo and the
    /// Close reply: it must deliver both before dropping the connection.
    #[test]
    fn output_owed_at_the_clients_eof_is_delivered() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        socket2::SockRef::from(&accepted)
            .set_send_buffer_size(4096)
            .unwrap();
        accepted.set_nonblocking(true).unwrap();

        let key = [1, 2, 3, 4];
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut sent =
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec();
        for (opcode, body) in [
            (OpCode::Binary, &payload[..]),
            (OpCode::Close, &[0x03, 0xE8][..]),
        ] {
            let header = FrameHeader {
                fin: true,
                opcode,
                mask: Some(key),
                payload_len: body.len() as u64,
            };
            let (h, n) = header.encode();
            sent.extend_from_slice(&h[..n]);
            let start = sent.len();
            sent.extend_from_slice(body);
            crate::protocol::frame::apply_mask(&mut sent[start..], key, 0);
        }
        client.write_all(&sent).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut received = Vec::new();
            let _ = client.read_to_end(&mut received);
            received
        });

        let poll = Poll::new().unwrap();
        let config = Config::from_args(&[]);
        let mut stats = Stats::default();
        let mut rooms = Rooms::default();
        let mut outbox = Vec::new();
        let token = Token(0);
        let socket = TcpStream::from_std(accepted);
        let mut conn: Connection = Connection::new(socket, token, poll.registry(), 0).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut sh = Shared {
                config: &config,
                stats: &mut stats,
                registry: poll.registry(),
                rooms: &mut rooms,
                outbox: &mut outbox,
                now: 0,
                uptime_secs: 0,
            };
            if conn.drive(token, &mut buf, &mut sh) == Verdict::Drop {
                break;
            }
            assert!(Instant::now() < deadline, "the connection never finished");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(conn);
        let received = reader.join().unwrap();
        let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(received.starts_with(b"HTTP/1.1 101 "));
        let frames = &received[head_end..];
        let echo = FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let (h, n) = echo.encode();
        assert_eq!(
            frames.len(),
            n + payload.len() + 4,
            "the echo and the Close reply, whole"
        );
        assert_eq!(&frames[..n], &h[..n], "echo header");
        assert!(
            frames[n..n + payload.len()] == payload[..],
            "echo payload differs"
        );
        assert_eq!(
            &frames[n + payload.len()..],
            &[0x88, 0x02, 0x03, 0xE8],
            "Close 1000 reply"
        );
    }
}
