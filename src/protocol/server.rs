//! The server role of a WebSocket connection, sans-IO: bytes and time in, events and
//! bytes out (in the shape of quinn-proto and h11). It decides everything RFC 6455 asks
//! of a server: the answer to a request head (§4.2), pongs (§5.5.3), the closing
//! handshake and the fail codes (§7), the deadlines, and when output is so far behind
//! that reading must pause. The caller owns the socket, the output queue and the
//! application (which path leads where, what a message is for).
//!
//! Phases: Handshaking → (Answering →) Open → Closing → Draining, or → Flushing when the
//! client ends its side while we still owe it output. Invariant: once a Close frame or a
//! final HTTP response is queued (`Closing` and after), nothing else is ever queued.
//!
//! Output goes to the caller's [`Transmit`] as (head, body) pairs, so that a frame whole
//! in the read buffer is echoed from there: a header on the stack and the payload where
//! it was unmasked. Nothing here imports IO, clocks, randomness or logging.

use super::close::{encode_close_payload, CloseCode};
use super::deadline::{due, Due, Tick, Timeouts, Wait};
use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode};
use super::handshake::{check_request, Policy, Refusal, Upgrade};
use super::http::{parse_request, write_response, Header, Status, MAX_HEADERS};
use super::receiver::{self, DataChunk, Receiver, ReceiverConfig, Role};
use super::transmit::Transmit;

/// At this much unsent output an open connection stops reading until the client
/// catches up, so a client that does not read cannot grow our memory.
pub const HIGH_WATER: usize = 256 * 1024;

/// Reading resumes once unsent output is below this. The gap between the marks means a
/// client that reads slowly costs a pause and a resume per 192 KiB, not per frame.
pub const LOW_WATER: usize = 64 * 1024;

/// What every connection of a server follows.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig<'c> {
    pub policy: Policy<'c>,
    /// The largest message accepted, summed over its fragments (1009 above it).
    pub max_message_size: u64,
    pub timeouts: Timeouts,
}

impl ServerConfig<'_> {
    fn receiver(&self) -> ReceiverConfig {
        ReceiverConfig {
            role: Role::Server,
            max_message_size: self.max_message_size,
        }
    }
}

/// What [`ServerConnection::poll`] reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A GET the protocol accepts, for `target` (path and query); `upgrade` is set for a
    /// valid WebSocket upgrade. Answer it ([`ServerConnection::accept`], `respond` or
    /// `refuse`) before polling again.
    Request {
        target: &'a str,
        upgrade: Option<Upgrade<'a>>,
    },
    /// The head was refused and its answer queued.
    Refused(Refusal),
    /// Payload of a data frame, unmasked and (for text) valid UTF-8 so far.
    Data(DataChunk<'a>),
    /// The client sent a valid Close; ours is queued, echoing its code (§5.5.1).
    PeerClosed(Option<CloseCode>),
    /// The client broke the protocol; a Close with the error's code is queued (§7.1.7).
    Failed(ProtocolError),
}

/// A deadline that came due, and what was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// No request head in time: 408 queued.
    Handshake,
    /// Silent for the ping interval: a Ping is queued (not an ending).
    Ping,
    /// Silent for the idle timeout: Close 1001 queued.
    Idle,
    /// Paused for backpressure too long without draining: drop the connection.
    Send,
    /// The closing handshake or the last flush took too long: drop the connection.
    Close,
}

impl Timeout {
    /// Whether the connection is to be dropped now.
    pub fn ends(self) -> bool {
        matches!(self, Timeout::Send | Timeout::Close)
    }
}

/// What to do after the output was flushed (see [`ServerConnection::on_flushed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    Keep,
    /// Reading resumed after backpressure: no readiness edge will come for input that
    /// waited, so read again without waiting for one.
    Resumed,
    /// The final answer is out: shut down writing and discard input until EOF
    /// (lingering close, so unread input cannot turn our FIN into a RST).
    ShutdownWrite,
    /// Nothing more to do: drop the connection.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the HTTP request head.
    Handshaking,
    /// A request head was reported; the application has not answered yet.
    Answering,
    /// Exchanging frames.
    Open(Liveness),
    /// A final response or Close frame is queued: flush it, then shut down writing.
    Closing,
    /// Writing is shut down: discard input until the client's EOF.
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

/// One server connection's protocol state: 48 bytes, no heap. `A` is the
/// application's own small per-connection value (the server's relay), kept here because
/// it fits in the padding beside the phase: a separate field would cost a word per
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConnection<A = ()> {
    /// When the current wait began (see [`Phase`] and [`Liveness`]).
    since: Tick,
    phase: Phase,
    app: A,
    receiver: Receiver,
}

impl<A: Copy> ServerConnection<A> {
    /// A connection accepted at `now`, waiting for its request head.
    pub fn new(now: Tick, app: A) -> ServerConnection<A> {
        ServerConnection {
            since: now,
            phase: Phase::Handshaking,
            app,
            receiver: Receiver::default(),
        }
    }

    /// The application's value.
    pub fn app(&self) -> A {
        self.app
    }

    pub fn set_app(&mut self, app: A) {
        self.app = app;
    }

    /// Since when the connection has waited for its request head, while it still does:
    /// at capacity, the longest waiting gives way to a newcomer.
    pub fn awaiting_head_since(&self) -> Option<Tick> {
        (self.phase == Phase::Handshaking).then_some(self.since)
    }

    /// Whether this is an open WebSocket: past the handshake and not closing.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Whether writing ends once the output owed is flushed: our Close is queued
    /// (§5.5.1: nothing follows it), and [`ServerConnection::on_flushed`] will answer
    /// [`Flushed::ShutdownWrite`].
    pub fn shuts_down_when_flushed(&self) -> bool {
        self.phase == Phase::Closing
    }

    /// Whether input should be read now: not while paused for backpressure, and not
    /// once the client has ended its side.
    pub fn wants_read(&self) -> bool {
        !matches!(self.phase, Phase::Open(Liveness::Paused) | Phase::Flushing)
    }

    /// Input arrived at `now`. Any input is a sign of life, not only a Pong (§5.5.2
    /// allows a client to answer a Ping late, or with a frame of its own).
    pub fn on_input(&mut self, now: Tick) {
        if let Phase::Open(_) = self.phase {
            self.since = now;
            self.phase = Phase::Open(Liveness::Heard);
        }
    }

    /// Consumes bytes from the front of `data`, which holds all input not consumed
    /// before (of which the first `scanned` bytes were seen by an earlier call), and
    /// returns how many, with the event they completed if any. `(0, None)` means more
    /// input is needed: the caller keeps the bytes. Payload is unmasked in place.
    pub fn poll<'a>(
        &mut self,
        data: &'a mut [u8],
        scanned: usize,
        config: &ServerConfig,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> (usize, Option<Event<'a>>) {
        match self.phase {
            Phase::Handshaking => self.poll_head(data, scanned, config, now, tx),
            Phase::Open(_) => {
                let len = data.len();
                match self.receiver.poll(&config.receiver(), data) {
                    Ok((n, None)) => (n, None),
                    Ok((n, Some(event))) => (n, self.on_frame(event, now, tx)),
                    Err(e) => {
                        self.send_close(e.close_code(), &e.to_string(), now, tx);
                        // Whatever follows a violation is discarded.
                        (len, Some(Event::Failed(e)))
                    }
                }
            }
            // Nothing is read until the application answers.
            Phase::Answering => (0, None),
            // Closing or draining: whatever else arrives is discarded.
            Phase::Closing | Phase::Draining | Phase::Flushing => (data.len(), None),
        }
    }

    fn poll_head<'a>(
        &mut self,
        data: &'a [u8],
        scanned: usize,
        config: &ServerConfig,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> (usize, Option<Event<'a>>) {
        let mut headers = [Header::default(); MAX_HEADERS];
        match parse_request(data, scanned, &mut headers) {
            Ok(None) => (0, None),
            Ok(Some((request, len))) => match check_request(&request, &config.policy) {
                Ok(upgrade) => {
                    self.phase = Phase::Answering;
                    let target = request.resource();
                    (len, Some(Event::Request { target, upgrade }))
                }
                Err(e) => {
                    self.refuse(e.into(), now, tx);
                    (len, Some(Event::Refused(e.into())))
                }
            },
            // An unparsable head has no end we can trust: drop all of it.
            Err(e) => {
                self.refuse(e.into(), now, tx);
                (data.len(), Some(Event::Refused(e.into())))
            }
        }
    }

    fn on_frame<'a>(
        &mut self,
        event: receiver::Event<'a>,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> Option<Event<'a>> {
        match event {
            receiver::Event::Data(chunk) => Some(Event::Data(chunk)),
            // §5.5.2/§5.5.3: a Pong carries the Ping's payload.
            receiver::Event::Ping(payload) => {
                self.send(OpCode::Pong, true, payload, tx);
                None
            }
            receiver::Event::Pong(_) => None,
            // §5.5.1: answer with a Close, echoing the status code (none if none) and
            // its reason, as clients expect (Python websockets, Node ws and
            // tungstenite servers echo both).
            receiver::Event::Close(body) => {
                match body.code {
                    Some(code) => self.send_close(code, body.reason, now, tx),
                    None => {
                        self.set_phase(Phase::Closing, now);
                        self.send_frame(OpCode::Close, true, &[], tx);
                    }
                }
                Some(Event::PeerClosed(body.code))
            }
        }
    }

    /// Answers a reported upgrade with 101: the connection is open from now on. The
    /// head goes out in pieces straight from constants and the accept value, so a
    /// handshake allocates nothing.
    pub fn accept(&mut self, upgrade: &Upgrade, now: Tick, tx: &mut impl Transmit) {
        debug_assert_eq!(self.phase, Phase::Answering);
        tx.transmit(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: ",
            &upgrade.accept,
        );
        if let Some(protocol) = upgrade.protocol {
            tx.transmit(b"\r\nSec-WebSocket-Protocol: ", protocol.as_bytes());
        }
        tx.transmit(b"\r\n\r\n", &[]);
        self.set_phase(Phase::Open(Liveness::Heard), now);
    }

    /// Answers a reported request with a page (one response per connection), then
    /// closes.
    pub fn respond(
        &mut self,
        status: Status,
        headers: &[(&str, &str)],
        body: &[u8],
        now: Tick,
        tx: &mut impl Transmit,
    ) {
        let mut out = Vec::new();
        write_response(&mut out, status, headers, body);
        tx.transmit(&out, &[]);
        self.set_phase(Phase::Closing, now);
    }

    /// Answers with an error status and a one-line plain-text body, then closes.
    pub fn refuse(&mut self, refusal: Refusal, now: Tick, tx: &mut impl Transmit) {
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
        headers.extend_from_slice(refusal.headers);
        let (status, reason) = (refusal.status, refusal.reason);
        let body = format!("{} {}: {reason}\n", status.0, status.1);
        self.respond(status, &headers, body.as_bytes(), now, tx);
    }

    /// Sends one data frame (or a Ping/Pong) unless the connection is no longer open:
    /// never send after Close (§5.5.1), so a frame that races it is dropped.
    pub fn send(&mut self, opcode: OpCode, fin: bool, payload: &[u8], tx: &mut impl Transmit) {
        if self.is_open() {
            self.send_frame(opcode, fin, payload, tx);
        }
    }

    /// Starts the closing handshake with 1001 because the server is shutting down; a
    /// connection still in its handshake just closes. Returns the code sent, if any.
    pub fn go_away(&mut self, now: Tick, tx: &mut impl Transmit) -> Option<CloseCode> {
        match self.phase {
            Phase::Open(_) => {
                self.send_close(CloseCode::GOING_AWAY, "server shutting down", now, tx);
                Some(CloseCode::GOING_AWAY)
            }
            Phase::Handshaking | Phase::Answering => {
                self.set_phase(Phase::Closing, now);
                None
            }
            _ => None,
        }
    }

    /// Acts on a deadline due at `now`, if any.
    pub fn on_tick(
        &mut self,
        now: Tick,
        timeouts: &Timeouts,
        tx: &mut impl Transmit,
    ) -> Option<Timeout> {
        let wait = match self.phase {
            Phase::Handshaking | Phase::Answering => Wait::Handshake,
            Phase::Open(Liveness::Heard) => Wait::Idle { pinged: false },
            Phase::Open(Liveness::Pinged) => Wait::Idle { pinged: true },
            Phase::Open(Liveness::Paused) => Wait::Paused,
            Phase::Closing | Phase::Draining | Phase::Flushing => Wait::Close,
        };
        let timeout = match due(wait, now.saturating_sub(self.since), timeouts)? {
            Due::HandshakeTimeout => {
                self.refuse(Refusal::TIMEOUT, now, tx);
                Timeout::Handshake
            }
            Due::Ping => {
                // The silence goes on counting from the last input.
                self.phase = Phase::Open(Liveness::Pinged);
                self.send_frame(OpCode::Ping, true, &[], tx);
                Timeout::Ping
            }
            Due::IdleTimeout => {
                self.send_close(CloseCode::GOING_AWAY, "idle timeout", now, tx);
                Timeout::Idle
            }
            Due::SendTimeout => Timeout::Send,
            Due::CloseTimeout => Timeout::Close,
        };
        Some(timeout)
    }

    /// Pauses reading from an open connection whose unsent output reached its mark;
    /// returns whether reading is paused. The mark is [`HIGH_WATER`], except in the
    /// middle of a message while the server's pool for them has room (`relaxed`): then it is
    /// the message size limit, since a client may write a whole message before it reads
    /// the echo (Autobahn's client does), and pausing it then would deadlock both ends.
    /// Once the pool is taken every connection pauses at [`HIGH_WATER`].
    pub fn pause_if_backed_up(
        &mut self,
        unsent: usize,
        relaxed: bool,
        config: &ServerConfig,
        now: Tick,
    ) -> bool {
        let mark = if relaxed && self.receiver.in_message() {
            let limit = usize::try_from(config.max_message_size).unwrap_or(usize::MAX);
            limit.saturating_add(HIGH_WATER)
        } else {
            HIGH_WATER
        };
        match self.phase {
            Phase::Open(Liveness::Paused) => true,
            Phase::Open(_) if unsent >= mark => {
                self.phase = Phase::Open(Liveness::Paused);
                self.since = now;
                true
            }
            _ => false,
        }
    }

    /// The client ended its side (EOF). With nothing left to send it, we are done
    /// (returns true); a client that ends without a Close frame gets no Close from us
    /// (§7.1.5: it sees 1006). Otherwise what we owe is flushed first.
    pub fn on_eof(&mut self, unsent: usize, now: Tick) -> bool {
        if unsent == 0 {
            return true;
        }
        self.set_phase(Phase::Flushing, now);
        false
    }

    /// After the caller flushed what it could, with `unsent` bytes left: resume reading
    /// below [`LOW_WATER`], and say when the final answer is out.
    pub fn on_flushed(&mut self, unsent: usize, now: Tick) -> Flushed {
        if self.phase == Phase::Open(Liveness::Paused) && unsent < LOW_WATER {
            // Silence counts anew: input could not be heard while paused.
            self.phase = Phase::Open(Liveness::Heard);
            self.since = now;
            return Flushed::Resumed;
        }
        match self.phase {
            Phase::Flushing if unsent == 0 => Flushed::Done,
            Phase::Closing if unsent == 0 => {
                self.set_phase(Phase::Draining, now);
                Flushed::ShutdownWrite
            }
            _ => Flushed::Keep,
        }
    }

    fn send_close(&mut self, code: CloseCode, reason: &str, now: Tick, tx: &mut impl Transmit) {
        let (payload, len) = encode_close_payload(code, reason);
        self.set_phase(Phase::Closing, now);
        self.send_frame(OpCode::Close, true, &payload[..len], tx);
    }

    /// Sends one unmasked server frame (§5.1).
    fn send_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8], tx: &mut impl Transmit) {
        let header = FrameHeader {
            fin,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let (head, head_len) = header.encode();
        tx.transmit(&head[..head_len], payload);
    }

    /// The one place the phase changes between its kinds: a new kind starts its wait now.
    fn set_phase(&mut self, phase: Phase, now: Tick) {
        if std::mem::discriminant(&phase) != std::mem::discriminant(&self.phase) {
            self.since = now;
        }
        self.phase = phase;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::encode_frame;

    const REQUEST: &[u8] = b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn config() -> ServerConfig<'static> {
        ServerConfig {
            policy: Policy::default(),
            max_message_size: 1 << 20,
            timeouts: Timeouts::default(),
        }
    }

    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            fin,
            opcode,
            Some([1, 2, 3, 4]),
            payload.len(),
            |p| p.copy_from_slice(payload),
        );
        out
    }

    /// An open connection, and the 101 it sent.
    fn open() -> (ServerConnection, Vec<u8>) {
        let mut conn = ServerConnection::new(0, ());
        let mut out = Vec::new();
        let mut request = REQUEST.to_vec();
        let (n, event) = conn.poll(&mut request, 0, &config(), 0, &mut out);
        assert_eq!(n, REQUEST.len());
        let Some(Event::Request { target, upgrade }) = event else {
            panic!("{event:?}");
        };
        assert_eq!(target, "/echo");
        conn.accept(&upgrade.unwrap(), 0, &mut out);
        assert!(conn.is_open());
        (conn, out)
    }

    /// Polls `data` to the end; returns the events, as text, and the output.
    fn feed(conn: &mut ServerConnection, mut data: Vec<u8>, now: Tick) -> (Vec<String>, Vec<u8>) {
        let (mut events, mut out, mut pos) = (Vec::new(), Vec::new(), 0);
        loop {
            let (n, event) = conn.poll(&mut data[pos..], 0, &config(), now, &mut out);
            pos += n;
            match event {
                Some(event) => events.push(format!("{event:?}")),
                None if n == 0 => return (events, out),
                None => {}
            }
        }
    }

    #[test]
    fn the_handshake_is_answered_with_the_rfc_accept_key() {
        let (_, out) = open();
        let head = String::from_utf8(out).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[test]
    fn a_bad_head_is_refused_and_nothing_after_it_is_read() {
        let mut conn = ServerConnection::new(0, ());
        let mut out = Vec::new();
        let mut data = b"GET / HTTP/2.0\r\n\r\nmore".to_vec();
        let len = data.len();
        let (n, event) = conn.poll(&mut data, 0, &config(), 0, &mut out);
        assert_eq!(n, len);
        assert!(matches!(event, Some(Event::Refused(r)) if r.status.0 == 505));
        assert!(out.starts_with(b"HTTP/1.1 505 "));
        assert!(
            !conn.wants_read()
                || conn
                    .poll(&mut [1][..], 0, &config(), 0, &mut out)
                    .1
                    .is_none()
        );
        assert_eq!(conn.on_flushed(0, 0), Flushed::ShutdownWrite);
    }

    #[test]
    fn pings_are_answered_and_a_close_is_echoed_with_its_reason() {
        let (mut conn, _) = open();
        assert!(!conn.shuts_down_when_flushed());
        let mut data = client_frame(true, OpCode::Ping, b"hi");
        data.extend(client_frame(true, OpCode::Close, b"\x03\xe8bye"));
        data.extend(client_frame(true, OpCode::Text, b"after close"));
        let (events, out) = feed(&mut conn, data, 1);
        assert_eq!(events, ["PeerClosed(Some(CloseCode(1000)))"]);
        assert_eq!(
            out, b"\x8a\x02hi\x88\x05\x03\xe8bye",
            "Pong, then Close echoing all"
        );
        assert!(!conn.is_open());
        // The shell may hold the Close for the FIN that follows it.
        assert!(conn.shuts_down_when_flushed());
        assert_eq!(conn.on_flushed(0, 1), Flushed::ShutdownWrite);
    }

    #[test]
    fn a_violation_closes_with_its_code_and_nothing_more_is_sent() {
        let (mut conn, _) = open();
        let mut data = client_frame(true, OpCode::Text, b"\xff");
        data.extend(client_frame(true, OpCode::Ping, b"late"));
        let (events, out) = feed(&mut conn, data, 1);
        // §8.1: fail fast, at the first invalid byte, before any of it is delivered.
        assert_eq!(events, ["Failed(InvalidUtf8)"]);
        let reason = usize::from(out[1]) - 2;
        assert_eq!((out[0], &out[2..4]), (0x88, &b"\x03\xef"[..]), "Close 1007");
        assert_eq!(out.len(), 4 + reason, "no Pong after the Close");
        let mut late = Vec::new();
        conn.send(OpCode::Binary, true, b"x", &mut late);
        assert!(late.is_empty(), "never send after Close (§5.5.1)");
    }

    #[test]
    fn deadlines_follow_the_time_passed_in() {
        let mut conn = ServerConnection::new(0, ());
        let t = Timeouts::default();
        let mut out = Vec::new();
        assert_eq!(conn.on_tick(t.handshake - 1, &t, &mut out), None);
        assert_eq!(
            conn.on_tick(t.handshake, &t, &mut out),
            Some(Timeout::Handshake)
        );
        assert!(out.starts_with(b"HTTP/1.1 408 "));

        let (mut conn, _) = open();
        let mut out = Vec::new();
        assert_eq!(conn.on_tick(t.ping, &t, &mut out), Some(Timeout::Ping));
        assert_eq!(out, b"\x89\x00");
        conn.on_input(t.ping + 1);
        assert_eq!(
            conn.on_tick(t.idle, &t, &mut out),
            None,
            "input restarts the silence"
        );
        assert_eq!(
            conn.on_tick(t.ping + 1 + t.idle, &t, &mut out),
            Some(Timeout::Idle)
        );
        assert_eq!(
            conn.on_tick(t.ping + 1 + t.idle + t.close, &t, &mut out),
            Some(Timeout::Close)
        );
    }

    #[test]
    fn reading_pauses_at_high_water_and_resumes_below_low_water() {
        let (mut conn, _) = open();
        assert!(!conn.pause_if_backed_up(HIGH_WATER - 1, false, &config(), 1));
        assert!(conn.pause_if_backed_up(HIGH_WATER, false, &config(), 1));
        assert!(!conn.wants_read());
        assert_eq!(conn.on_flushed(LOW_WATER, 2), Flushed::Keep);
        assert_eq!(conn.on_flushed(LOW_WATER - 1, 2), Flushed::Resumed);
        assert!(conn.wants_read());
        // Paused longer than the send timeout without draining: dropped.
        let t = Timeouts::default();
        assert!(conn.pause_if_backed_up(HIGH_WATER, false, &config(), 3));
        assert_eq!(
            conn.on_tick(3 + t.send, &t, &mut Vec::new()),
            Some(Timeout::Send)
        );
    }

    #[test]
    fn in_the_middle_of_a_message_reading_goes_on_while_memory_is_plentiful() {
        let (mut conn, _) = open();
        // Half a frame: the message is in progress.
        let frame = client_frame(true, OpCode::Binary, &[7; 1000]);
        let (events, _) = feed(&mut conn, frame[..500].to_vec(), 1);
        assert_eq!(events.len(), 1);
        assert!(
            !conn.pause_if_backed_up(HIGH_WATER, true, &config(), 1),
            "relaxed"
        );
        assert!(
            conn.pause_if_backed_up(HIGH_WATER, false, &config(), 1),
            "under pressure"
        );
        let limit = config().max_message_size as usize + HIGH_WATER;
        let (mut conn, _) = open();
        feed(&mut conn, frame[..500].to_vec(), 1);
        assert!(
            conn.pause_if_backed_up(limit, true, &config(), 1),
            "bounded by the limit"
        );
    }

    #[test]
    fn an_eof_with_output_owed_flushes_it_first() {
        let (mut conn, _) = open();
        assert!(!conn.on_eof(10, 1));
        assert!(!conn.wants_read());
        assert_eq!(conn.on_flushed(5, 1), Flushed::Keep);
        assert_eq!(conn.on_flushed(0, 1), Flushed::Done);
        let (mut conn, _) = open();
        assert!(conn.on_eof(0, 1), "nothing owed: done at once");
    }

    #[test]
    fn shutting_down_sends_1001_once() {
        let (mut conn, _) = open();
        let mut out = Vec::new();
        assert_eq!(conn.go_away(1, &mut out), Some(CloseCode::GOING_AWAY));
        assert!(out.starts_with(b"\x88\x16\x03\xe9server shutting down"));
        assert_eq!(conn.go_away(1, &mut out), None);
    }
}
