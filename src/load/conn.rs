//! One client connection's state machine over its socket: connect → opening handshake →
//! verification echo → hold (periodic echoes, pongs for pings) → clean close. In chat
//! mode the join (the 101 on `/chat?room=…`) verifies it instead, and it holds as a room
//! member: it checks every message it receives against the room's sequence (`chat.rs`),
//! and one member, the sender, sends them.
//!
//! The protocol work is the sans-IO core's (`protocol::{http, handshake, frame,
//! message, close}`); this file decides what to send and what an answer means. The
//! driver owns the poll loop and calls in with readiness, deadlines and the close order.
//!
//! Invariants:
//! - Small: an idle connection is its slab entry only (see `conn_is_small`); bytes that
//!   cannot be handled now (a partial head or frame, unsent output) live in a boxed
//!   [`Spill`] that exists only while it holds some.
//! - One deadline per connection, meaning depends on the phase; the driver's periodic
//!   sweep compares it (no per-connection timers).
//! - Every way a connection ends goes through [`Conn::finish`] or [`Conn::abort`], which
//!   count the outcome and keep the `open`/`pending` gauges right; after a method returns
//!   [`Next::Remove`] the driver only drops it.

use std::io::{self, Read, Write};

use hdrhistogram::Histogram;
use mio::net::TcpStream;

use super::chat::{self, ChatConfig, Room};
use super::payload;
use super::rng::Rng;
use super::socket::{connect_failure, io_failure};
use super::stats::{new_histogram, Counters, Failure};
use crate::protocol::close::{encode_close_payload, CloseCode};
use crate::protocol::frame::{apply_mask, FrameHeader, OpCode};
use crate::protocol::handshake::{check_response, client_key, client_request, ResponseError};
use crate::protocol::http::{parse_response, Header, MAX_HEADERS};
use crate::protocol::message::{DataChunk, Event, Receiver, ReceiverConfig};

/// A deadline that never comes.
pub const NEVER: u32 = u32::MAX;

/// What every connection of a process shares: settings, clock, scratch, measurements.
pub struct Env {
    pub cfg: ConnConfig,
    /// Microseconds since the driver started; set by the driver before each call.
    pub now_us: u64,
    pub rng: Rng,
    /// Scratch for one outgoing frame (reused; never per connection).
    pub out: Vec<u8>,
    pub stats: Stats,
    /// Chat mode: the room every connection joins.
    pub chat: Option<Room>,
}

impl Env {
    pub fn new(cfg: ConnConfig, sources: usize) -> Env {
        let mut rng = Rng::from_os();
        Env {
            out: Vec::with_capacity(cfg.message_size as usize + 14),
            chat: cfg.chat.clone().map(|c| Room::new(c, rng.next_u32())),
            cfg,
            now_us: 0,
            rng,
            stats: Stats {
                counters: Counters::default(),
                handshake_us: new_histogram(),
                echo_rtt_us: new_histogram(),
                per_source: vec![0; sources],
            },
        }
    }

    /// Milliseconds since the driver started (fits `u32` for 49 days).
    pub fn now_ms(&self) -> u32 {
        (self.now_us / 1000).min(u64::from(NEVER - 1)) as u32
    }

    /// The clock in wrapping microseconds: differences are right for spans under 71
    /// minutes, and every timed span here is bounded by a timeout far below that.
    pub fn now_us32(&self) -> u32 {
        self.now_us as u32
    }

    fn after_ms(&self, ms: u32) -> u32 {
        self.now_ms().saturating_add(ms).min(NEVER - 1)
    }
}

/// Settings every connection of a process follows.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// The `Host` header value (the target address as given).
    pub host: String,
    pub path: String,
    /// Bytes of each echo payload (chat: of each message).
    pub message_size: u32,
    /// Connect start → 101 received.
    pub connect_timeout_ms: u32,
    /// Echo sent → echo back (chat: a message sent → received by every member).
    pub echo_timeout_ms: u32,
    /// Our Close sent → server's Close and EOF.
    pub close_timeout_ms: u32,
    /// Periodic echo interval; 0 sends only the verification echo.
    pub echo_every_ms: u32,
    pub receiver: ReceiverConfig,
    /// The most unsent output a connection may hold before it counts as stalled.
    pub max_spill: usize,
    /// Chat mode instead of echoes.
    pub chat: Option<ChatConfig>,
}

/// What a process measures; sent to the parent at the end.
pub struct Stats {
    pub counters: Counters,
    pub handshake_us: Histogram<u64>,
    pub echo_rtt_us: Histogram<u64>,
    /// Established connections per source index.
    pub per_source: Vec<u64>,
}

/// What the driver does with a connection after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Keep,
    /// It has ended and been counted: drop it.
    Remove,
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Fail(Failure),
    /// The close we started completed: server's Close, then its EOF.
    Clean,
    CloseTimeout,
}

impl From<Failure> for End {
    fn from(f: Failure) -> End {
        End::Fail(f)
    }
}

/// Bytes a connection could not handle yet. Boxed and present only while non-empty.
#[derive(Debug, Default)]
struct Spill {
    /// Received bytes not consumed yet: a partial response head or frame header, or a
    /// partial control frame.
    input: Vec<u8>,
    /// Bytes the socket would not take yet.
    output: Vec<u8>,
}

/// The outstanding echo, if any; or, in chat mode, the next message expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// Nothing outstanding; `seq` is the next echo's number.
    Idle { seq: u32 },
    /// Echo `seq` was sent and `matched` of its bytes have come back intact.
    Waiting { seq: u32, matched: u32 },
    /// A chat member: messages `0 .. next` arrived whole, and `matched` bytes of message
    /// `next` so far (its stamp is gathered in `since_us`).
    Chat { next: u32, matched: u32 },
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Non-blocking connect in progress.
    Connecting,
    /// Request sent; waiting for a complete response head. `scanned` is how much of the
    /// kept input the head parser has already searched.
    Handshake { key: [u8; 24], scanned: u16 },
    /// Upgraded: echoes and pings.
    Open { rx: Receiver, echo: Echo },
    /// We sent Close; waiting for the server's Close, then its EOF (RFC 6455 §7.1.1:
    /// the server closes TCP first, so TIME_WAIT stays on its side, not on our ports).
    Closing { rx: Receiver, got_close: bool },
}

const ESTABLISHED: u8 = 1;
const VERIFIED: u8 = 2;

/// One connection: its socket and a few words of state.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Start of the span being timed (connect start, then the outstanding echo, or the
    /// chat message arriving, by its stamp), in wrapping microseconds.
    since_us: u32,
    /// When the current phase times out, or the next periodic echo is due (ms).
    deadline_ms: u32,
    /// Seeds this connection's echo payloads.
    seed: u32,
    /// Index of the source address it was bound to.
    source: u16,
    flags: u8,
    spill: Option<Box<Spill>>,
    phase: Phase,
}

impl Conn {
    /// A connection whose connect has just been started on `stream` (already registered).
    pub fn new(stream: TcpStream, source: u16, env: &mut Env) -> Conn {
        env.stats.counters.pending += 1;
        Conn {
            stream,
            since_us: env.now_us32(),
            deadline_ms: env.after_ms(env.cfg.connect_timeout_ms),
            seed: env.rng.next_u32(),
            source,
            flags: 0,
            spill: None,
            phase: Phase::Connecting,
        }
    }

    /// Whether its deadline has passed.
    pub fn is_due(&self, now_ms: u32) -> bool {
        self.deadline_ms <= now_ms
    }

    /// Not yet verified (counts against `--max-pending`).
    pub fn is_pending(&self) -> bool {
        self.flags & VERIFIED == 0
    }

    /// Open with no echo outstanding (or a chat member): it may start closing now.
    pub fn can_close(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open {
                echo: Echo::Idle { .. } | Echo::Chat { .. },
                ..
            }
        )
    }

    /// Handles readiness reported by the poll.
    pub fn on_ready(
        &mut self,
        env: &mut Env,
        buf: &mut [u8],
        readable: bool,
        writable: bool,
    ) -> Next {
        let r = self.ready(env, buf, readable, writable);
        self.settle(env, r)
    }

    /// Handles a passed deadline: a timeout, or the next periodic echo.
    pub fn on_deadline(&mut self, env: &mut Env) -> Next {
        let r = match self.phase {
            Phase::Connecting => Err(Failure::ConnectTimeout.into()),
            Phase::Handshake { .. } => Err(Failure::HandshakeTimeout.into()),
            Phase::Open {
                echo: Echo::Waiting { .. },
                ..
            } => Err(Failure::EchoTimeout.into()),
            Phase::Open {
                echo: Echo::Chat { .. },
                ..
            } => {
                self.deadline_ms = NEVER;
                Ok(())
            }
            Phase::Open {
                echo: Echo::Idle { .. },
                ..
            } => {
                if env.cfg.echo_every_ms > 0 {
                    self.send_echo(env)
                } else {
                    self.deadline_ms = NEVER;
                    Ok(())
                }
            }
            Phase::Closing { .. } => Err(End::CloseTimeout),
        };
        self.settle(env, r)
    }

    /// Starts the closing handshake (Close 1000); only when [`Conn::can_close`].
    pub fn begin_close(&mut self, env: &mut Env) -> Next {
        if !self.can_close() {
            return Next::Keep;
        }
        let Phase::Open { rx, .. } = self.phase else {
            return Next::Keep;
        };
        self.phase = Phase::Closing {
            rx,
            got_close: false,
        };
        self.deadline_ms = env.after_ms(env.cfg.close_timeout_ms);
        env.stats.counters.closing += 1;
        let (body, n) = encode_close_payload(CloseCode::NORMAL, "");
        let r = self.send_control(env, OpCode::Close, &body[..n]);
        self.settle(env, r.map_err(End::from))
    }

    /// Drops an unfinished connection because the run is stopping.
    pub fn abort(&mut self, env: &mut Env) -> Next {
        env.stats.counters.aborted += 1;
        self.release(env);
        Next::Remove
    }

    fn settle(&mut self, env: &mut Env, r: Result<(), End>) -> Next {
        match r {
            Ok(()) => Next::Keep,
            Err(end) => self.finish(env, end),
        }
    }

    /// Counts how the connection ended. A failure while closing is an unclean close,
    /// not a failed connection: it was verified and held already.
    fn finish(&mut self, env: &mut Env, end: End) -> Next {
        let closing = matches!(self.phase, Phase::Closing { .. });
        let c = &mut env.stats.counters;
        match end {
            End::Clean => c.closed_clean += 1,
            End::CloseTimeout => c.close_timeout += 1,
            End::Fail(why) if closing => {
                log::debug!("unclean close: {why}");
                c.close_unclean += 1;
            }
            End::Fail(why) => c.fail(why),
        }
        self.release(env);
        Next::Remove
    }

    fn release(&mut self, env: &mut Env) {
        if let (
            Phase::Open {
                echo: Echo::Chat { next, .. },
                ..
            },
            Some(room),
        ) = (self.phase, &mut env.chat)
        {
            room.on_member_lost(next);
        }
        let c = &mut env.stats.counters;
        if self.flags & ESTABLISHED != 0 {
            c.open -= 1;
        }
        if self.flags & VERIFIED == 0 {
            c.pending -= 1;
        }
        if let Phase::Closing { .. } = self.phase {
            c.closing -= 1;
        }
    }

    fn ready(
        &mut self,
        env: &mut Env,
        buf: &mut [u8],
        readable: bool,
        writable: bool,
    ) -> Result<(), End> {
        if let Phase::Connecting = self.phase {
            if !self.connected()? {
                return Ok(());
            }
            let key = client_key(env.rng.nonce());
            let request = client_request(&env.cfg.host, &env.cfg.path, &key);
            self.phase = Phase::Handshake { key, scanned: 0 };
            self.send(&request, env.cfg.max_spill)?;
        }
        if writable {
            self.flush()?;
        }
        if readable {
            self.on_readable(env, buf)?;
        }
        Ok(())
    }

    /// Whether the pending connect has completed (mio: check `take_error`, then
    /// `peer_addr`; `NotConnected` means still in progress, e.g. a spurious wake-up).
    fn connected(&mut self) -> Result<bool, Failure> {
        match self.stream.take_error() {
            Ok(Some(e)) | Err(e) => return Err(connect_failure(&e)),
            Ok(None) => {}
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(connect_failure(&e)),
        }
    }

    /// Reads until `WouldBlock` (edge-triggered), into the shared buffer behind any kept
    /// input. No fairness bound is needed: a server only sends what we asked for (echoes,
    /// the Close) plus pings, and anything else fails the connection at once.
    fn on_readable(&mut self, env: &mut Env, buf: &mut [u8]) -> Result<(), End> {
        loop {
            let kept = self.spill.as_ref().map_or(0, |s| s.input.len());
            let n = match self.stream.read(&mut buf[kept..]) {
                Ok(0) => return Err(self.eof()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_failure(&e).into()),
            };
            if let Some(spill) = &mut self.spill {
                buf[..kept].copy_from_slice(&spill.input);
                spill.input.clear();
            }
            let len = kept + n;
            let used = self.on_bytes(env, &mut buf[..len])?;
            if used < len {
                self.spill_mut().input.extend_from_slice(&buf[used..len]);
            }
            self.tidy_spill();
        }
    }

    fn eof(&self) -> End {
        match self.phase {
            Phase::Closing {
                got_close: true, ..
            } => End::Clean,
            _ => Failure::ServerEof.into(),
        }
    }

    /// Handles received bytes; returns how many were consumed (the rest is kept).
    fn on_bytes(&mut self, env: &mut Env, data: &mut [u8]) -> Result<usize, End> {
        let mut used = 0;
        if let Phase::Handshake { key, scanned } = self.phase {
            let mut storage = [Header::default(); MAX_HEADERS];
            match parse_response(data, usize::from(scanned), &mut storage) {
                Ok(None) => {
                    // A head is at most MAX_HEAD_LEN (8 KiB) long, or the parser fails.
                    self.phase = Phase::Handshake {
                        key,
                        scanned: data.len() as u16,
                    };
                    return Ok(0);
                }
                Err(_) => return Err(Failure::BadHandshake.into()),
                Ok(Some((response, n))) => {
                    check_response(&response, &key).map_err(handshake_failure)?;
                    used = n;
                }
            }
            // Bytes after the head are the start of the frame stream.
            self.on_established(env)?;
        }
        Ok(used + self.on_frames(env, &mut data[used..])?)
    }

    fn on_established(&mut self, env: &mut Env) -> Result<(), End> {
        let c = &mut env.stats.counters;
        c.established += 1;
        c.open += 1;
        if let Some(n) = env.stats.per_source.get_mut(usize::from(self.source)) {
            *n += 1;
        }
        let latency = env.now_us32().wrapping_sub(self.since_us);
        env.stats.handshake_us.saturating_record(u64::from(latency));
        self.flags |= ESTABLISHED;
        if env.chat.is_some() {
            // The server seats a member before it answers 101: the join is done, and
            // what it receives from now on is checked against the room's sequence.
            self.phase = Phase::Open {
                rx: Receiver::default(),
                echo: Echo::Chat {
                    next: 0,
                    matched: 0,
                },
            };
            self.deadline_ms = NEVER;
            self.flags |= VERIFIED;
            env.stats.counters.verified += 1;
            env.stats.counters.pending -= 1;
            return Ok(());
        }
        self.phase = Phase::Open {
            rx: Receiver::default(),
            echo: Echo::Idle { seq: 0 },
        };
        self.send_echo(env)
    }

    /// Feeds frames to the receiver until it needs more bytes; returns bytes consumed.
    fn on_frames(&mut self, env: &mut Env, data: &mut [u8]) -> Result<usize, End> {
        let mut pos = 0;
        loop {
            let rx = match &mut self.phase {
                Phase::Open { rx, .. } | Phase::Closing { rx, .. } => rx,
                Phase::Connecting | Phase::Handshake { .. } => return Ok(pos),
            };
            let (n, event) = rx.poll(&env.cfg.receiver, &mut data[pos..]).map_err(|e| {
                log::debug!("server broke the protocol: {e}");
                Failure::ProtocolError
            })?;
            pos += n;
            match event {
                None if n == 0 => return Ok(pos),
                None => {}
                Some(event) => self.on_frame(env, event)?,
            }
        }
    }

    fn on_frame(&mut self, env: &mut Env, event: Event<'_>) -> Result<(), End> {
        if let Phase::Closing { got_close, .. } = &mut self.phase {
            // After our Close only the server's Close matters (§5.5.1): no pongs, and
            // an echo still in flight is no longer checked.
            if let Event::Close(_) = event {
                *got_close = true;
            }
            return Ok(());
        }
        match event {
            Event::Data(chunk) if env.chat.is_some() => Ok(self.on_chat_chunk(env, &chunk)?),
            Event::Data(chunk) => self.on_echo_chunk(env, &chunk),
            // §5.5.2: a Pong carries the Ping's payload.
            Event::Ping(body) => Ok(self.send_control(env, OpCode::Pong, body)?),
            // §5.5.3: unsolicited Pongs are allowed and ignored.
            Event::Pong(_) => Ok(()),
            Event::Close(body) => {
                // The server ended a connection we were holding: answer its Close
                // (§5.5.1, echoing the code) as a courtesy, and count the failure.
                let code = body.code.map_or(1005, |c| c.0);
                let (reply, n) = match body.code {
                    Some(c) => encode_close_payload(c, ""),
                    None => ([0; 125], 0),
                };
                let _ = self.send_control(env, OpCode::Close, &reply[..n]);
                Err(Failure::ServerClose(code).into())
            }
        }
    }

    /// Checks a piece of the echo against what was sent, byte for byte.
    fn on_echo_chunk(&mut self, env: &mut Env, chunk: &DataChunk<'_>) -> Result<(), End> {
        let size = u64::from(env.cfg.message_size);
        let Phase::Open { echo, .. } = &mut self.phase else {
            return Ok(());
        };
        let Echo::Waiting { seq, matched } = *echo else {
            return Err(Failure::UnexpectedMessage.into());
        };
        let first_of_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
        if first_of_message && (matched != 0 || chunk.opcode != payload::opcode(seq)) {
            return Err(Failure::EchoMismatch.into());
        }
        let end = u64::from(matched) + chunk.payload.len() as u64;
        if end > size || !payload::matches(self.seed, seq, u64::from(matched), chunk.payload) {
            return Err(Failure::EchoMismatch.into());
        }
        if !chunk.ends_message() {
            *echo = Echo::Waiting {
                seq,
                matched: end as u32,
            };
            return Ok(());
        }
        if end != size {
            return Err(Failure::EchoMismatch.into());
        }
        *echo = Echo::Idle {
            seq: seq.wrapping_add(1),
        };
        self.on_echo_done(env);
        Ok(())
    }

    /// Checks a piece of a chat message: the next in sequence, byte for byte, with the
    /// opcode it was sent with; a whole one is a delivery.
    fn on_chat_chunk(&mut self, env: &mut Env, chunk: &DataChunk<'_>) -> Result<(), Failure> {
        let size = u64::from(env.cfg.message_size);
        let (now_us, now_us32) = (env.now_us, env.now_us32());
        let (Phase::Open { echo, .. }, Some(room)) = (&mut self.phase, &mut env.chat) else {
            return Err(Failure::UnexpectedMessage);
        };
        let Echo::Chat { next, matched } = *echo else {
            return Err(Failure::UnexpectedMessage);
        };
        if next >= room.messages() {
            // Every message has arrived already: this one is one too many.
            return Err(Failure::ChatOutOfOrder);
        }
        let first_of_message = chunk.opcode != OpCode::Continuation && chunk.starts_frame();
        if first_of_message {
            if matched != 0 || chunk.opcode != payload::opcode(next) {
                return Err(Failure::ChatMismatch);
            }
            self.since_us = 0;
        }
        let end = u64::from(matched) + chunk.payload.len() as u64;
        if end > size {
            return Err(Failure::ChatMismatch);
        }
        chat::check(
            room.seed(),
            next,
            u64::from(matched),
            chunk.payload,
            &mut self.since_us,
        )?;
        if !chunk.ends_message() {
            *echo = Echo::Chat {
                next,
                matched: end as u32,
            };
            return Ok(());
        }
        if end != size {
            return Err(Failure::ChatMismatch);
        }
        *echo = Echo::Chat {
            next: next + 1,
            matched: 0,
        };
        room.on_delivered(next, now_us32.wrapping_sub(self.since_us), now_us);
        env.stats.counters.deliveries += 1;
        Ok(())
    }

    /// Sends chat message `seq` to the room (this connection is the sender), stamped
    /// with the time now.
    pub fn send_chat(&mut self, env: &mut Env, seq: u32) -> Next {
        let stamp = env.now_us32();
        let Some(room) = &mut env.chat else {
            return Next::Keep;
        };
        let seed = room.seed();
        room.on_sent(seq, env.now_us);
        env.stats.counters.chat_sent += 1;
        let size = env.cfg.message_size as usize;
        masked_frame(
            &mut env.out,
            &mut env.rng,
            payload::opcode(seq),
            size,
            |p| chat::fill(seed, seq, stamp, p),
        );
        let r = self.send(&env.out, env.cfg.max_spill);
        self.settle(env, r.map_err(End::from))
    }

    fn on_echo_done(&mut self, env: &mut Env) {
        let rtt = env.now_us32().wrapping_sub(self.since_us);
        env.stats.echo_rtt_us.saturating_record(u64::from(rtt));
        env.stats.counters.echoes += 1;
        let first = self.flags & VERIFIED == 0;
        if first {
            self.flags |= VERIFIED;
            env.stats.counters.verified += 1;
            env.stats.counters.pending -= 1;
        }
        let every = env.cfg.echo_every_ms;
        self.deadline_ms = match every {
            0 => NEVER,
            // The first periodic echo at a random point of the interval, so a process's
            // echoes spread evenly over it instead of all firing together.
            _ if first => {
                let offset = env.rng.below(u64::from(every)) as u32;
                env.after_ms(offset)
            }
            _ => env.after_ms(every),
        };
    }

    /// Sends the next echo: a masked Text/Binary frame whose payload follows from
    /// (seed, seq), so it needs no copy kept for checking.
    fn send_echo(&mut self, env: &mut Env) -> Result<(), End> {
        let Phase::Open { echo, .. } = &mut self.phase else {
            return Ok(());
        };
        let Echo::Idle { seq } = *echo else {
            return Ok(());
        };
        *echo = Echo::Waiting { seq, matched: 0 };
        self.since_us = env.now_us32();
        self.deadline_ms = env.after_ms(env.cfg.echo_timeout_ms);
        let seed = self.seed;
        let size = env.cfg.message_size as usize;
        let opcode = payload::opcode(seq);
        masked_frame(&mut env.out, &mut env.rng, opcode, size, |p| {
            payload::fill(seed, seq, 0, p)
        });
        Ok(self.send(&env.out, env.cfg.max_spill)?)
    }

    fn send_control(&mut self, env: &mut Env, opcode: OpCode, body: &[u8]) -> Result<(), Failure> {
        masked_frame(&mut env.out, &mut env.rng, opcode, body.len(), |p| {
            p.copy_from_slice(body)
        });
        self.send(&env.out, env.cfg.max_spill)
    }

    /// Writes `bytes` now, or keeps what the socket will not take (after any output
    /// already kept, to preserve order) for the next writable event.
    fn send(&mut self, bytes: &[u8], cap: usize) -> Result<(), Failure> {
        let mut written = 0;
        if self.spill.as_ref().is_none_or(|s| s.output.is_empty()) {
            written = write_some(&mut self.stream, bytes)?;
        }
        if written < bytes.len() {
            let spill = self.spill_mut();
            if spill.output.len() + (bytes.len() - written) > cap {
                return Err(Failure::SendStalled);
            }
            spill.output.extend_from_slice(&bytes[written..]);
        }
        Ok(())
    }

    /// Writes kept output until done or `WouldBlock`.
    fn flush(&mut self) -> Result<(), Failure> {
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        let written = write_some(&mut self.stream, &spill.output)?;
        spill.output.drain(..written);
        self.tidy_spill();
        Ok(())
    }

    fn spill_mut(&mut self) -> &mut Spill {
        self.spill.get_or_insert_with(Box::default)
    }

    /// Frees the spill once it holds nothing (released, not just cleared: idle
    /// connections must own no heap).
    fn tidy_spill(&mut self) {
        if self
            .spill
            .as_ref()
            .is_some_and(|s| s.input.is_empty() && s.output.is_empty())
        {
            self.spill = None;
        }
    }
}

/// Writes as much of `bytes` as the socket takes; returns how much.
fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> Result<usize, Failure> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            // A zero-length write on a stream socket: the peer can take nothing more.
            Ok(0) => return Err(Failure::Reset),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(&e)),
        }
    }
    Ok(written)
}

/// Builds one masked, unfragmented client frame in `out` (RFC 6455 §5.3: every client
/// frame is masked, with a fresh key per frame).
fn masked_frame(
    out: &mut Vec<u8>,
    rng: &mut Rng,
    opcode: OpCode,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let key = rng.next_u32().to_ne_bytes();
    let header = FrameHeader {
        fin: true,
        opcode,
        mask: Some(key),
        payload_len: len as u64,
    };
    let (head, n) = header.encode();
    out.clear();
    out.extend_from_slice(&head[..n]);
    out.resize(n + len, 0);
    fill(&mut out[n..]);
    apply_mask(&mut out[n..], key, 0);
}

/// The failure a handshake the server did not complete is counted as.
fn handshake_failure(why: ResponseError) -> Failure {
    match why {
        ResponseError::Refused(status) => Failure::HandshakeRejected(status),
        ResponseError::NotWebSocket => Failure::BadHandshake,
        ResponseError::BadAccept => Failure::BadAccept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::handshake::accept_key;
    use crate::protocol::message::Role;

    #[test]
    fn conn_is_small() {
        // The per-connection budget (< 128 B user space); the slab entry adds a word
        // at most. 96 today: fd 4, timers and seed 12, source and flags 3, spill 8,
        // phase 56 (of which the protocol Receiver is 40), padding.
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 96, "Conn is {size} bytes");
    }

    #[test]
    fn masked_frames_decode_as_a_server_would() {
        let mut out = Vec::new();
        let mut rng = Rng::from_seed(1);
        masked_frame(&mut out, &mut rng, OpCode::Text, 300, |p| {
            payload::fill(5, 0, 0, p)
        });
        let config = ReceiverConfig {
            role: Role::Server,
            max_message_size: 1 << 20,
        };
        let mut rx = Receiver::default();
        let (n, ev) = rx.poll(&config, &mut out).unwrap();
        assert!(ev.is_none() && n > 2);
        let total = out.len();
        let (m, ev) = rx.poll(&config, &mut out[n..]).unwrap();
        assert_eq!(n + m, total);
        let Some(Event::Data(chunk)) = ev else {
            panic!("{ev:?}");
        };
        assert!(chunk.ends_message());
        assert!(payload::matches(5, 0, 0, chunk.payload));
    }

    #[test]
    fn handshake_refusals_are_classified() {
        let key = client_key([3; 16]);
        let response = |accept: &str, upgrade: &str| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {upgrade}\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
        };
        let check = |head: String| {
            let mut storage = [Header::default(); MAX_HEADERS];
            let (resp, _) = parse_response(head.as_bytes(), 0, &mut storage)
                .unwrap()
                .unwrap();
            check_response(&resp, &key).map_err(handshake_failure)
        };
        let good = accept_key(&key);
        let good = std::str::from_utf8(&good).unwrap();
        assert_eq!(check(response(good, "websocket")), Ok(()));
        assert_eq!(
            check(response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "websocket")),
            Err(Failure::BadAccept)
        );
        assert_eq!(check(response(good, "h2c")), Err(Failure::BadHandshake));
        let refused = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_owned();
        assert_eq!(check(refused), Err(Failure::HandshakeRejected(503)));
    }
}
