//! The server role of a WebSocket connection, sans-IO: bytes and time in, events and
//! bytes out (in the shape of quinn-proto's `Connection`). It decides everything RFC 6455
//! asks of a server: the answer to a request head (§4.2), pongs (§5.5.3), the closing
//! handshake and the fail codes (§7), the deadlines, and when output is so far behind
//! that reading must pause. Every byte a connection sends goes out through it, so it
//! alone can promise that nothing follows its Close (§5.5.1). The caller owns the
//! socket, the output queue and the application (which path leads where, what a message
//! is for).
//!
//! Files: this one holds the connection and its call order; `answer` the opening
//! handshake, `phase` the phases and their deadlines, `event` what the core reports,
//! `config` what it follows, `misuse` the error for calls out of order.

mod answer;
mod config;
mod event;
mod misuse;
mod phase;

pub use answer::Answer;
pub use config::{ServerConfig, HIGH_WATER, LOW_WATER};
pub use event::{Event, Flushed, Timeout};
pub use misuse::Misuse;

use phase::{Liveness, Phase};

use super::close::{encode_close_payload, CloseCode};
use super::deadline::{due, due_at_age, Due, Tick, Timeouts};
use super::deflate::Agreement;
use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode, SharedFrame};
use super::handshake::Refusal;
use super::receiver::{self, Receiver};
use super::transmit::Transmit;

/// One server connection's protocol state: 48 bytes, no heap (the permessage-deflate
/// agreement is two bytes of it, and no zlib stream: see `protocol::deflate`). `A` is the application's
/// own small per-connection value (the server's relay), kept here because it fits in the
/// padding beside the phase: a separate field would cost a word per connection.
///
/// It performs no IO. The caller (the shell) reads and writes the socket and keeps the
/// time; output goes to the [`Transmit`] each call is given, as (head, body) pairs, so
/// that a frame whole in the read buffer is echoed from there: its header from the
/// stack, its payload where it was unmasked. Its methods are of four kinds, as in
/// quinn-proto's `Connection`:
///
/// - getters: [`is_open`](Self::is_open),
///   [`shuts_down_when_flushed`](Self::shuts_down_when_flushed),
///   [`awaiting_head_since`](Self::awaiting_head_since), [`app`](Self::app);
/// - `handle_*`, what happened to the connection: [`handle_read`](Self::handle_read)
///   (bytes read), [`handle_answer`](Self::handle_answer) (the application's answer to
///   a request), [`handle_eof`](Self::handle_eof) (the client ended its side),
///   [`handle_flushed`](Self::handle_flushed) (output written),
///   [`handle_timeout`](Self::handle_timeout) (the clock moved);
/// - commands of the application: [`send`](Self::send),
///   [`send_shared`](Self::send_shared), [`go_away`](Self::go_away),
///   [`cut_short`](Self::cut_short);
/// - `poll_*`, what the shell is to do: [`poll_read`](Self::poll_read) (whether to read
///   now), [`poll_timeout`](Self::poll_timeout) (when `handle_timeout` is due).
///
/// An event comes back from the `handle_read` call that found it, not from a later poll:
/// a [`Event::Data`] borrows the read buffer it was unmasked in, and there is no room
/// here to queue anything.
///
/// # Call order
///
/// Each turn the shell gives this connection:
///
/// 1. Ask [`poll_read`](Self::poll_read) with the output still unsent; read the socket
///    only if it says so (reading pauses while output is backed up, and stops after the
///    client's EOF).
/// 2. Bytes read: call [`handle_read`](Self::handle_read) over all input not consumed
///    yet until it consumes nothing, and keep the rest for the next read. Answer each
///    [`Event::Request`] with [`handle_answer`](Self::handle_answer) before anything
///    else. End of input: call [`handle_eof`](Self::handle_eof), and drop the connection
///    if it says so.
/// 3. Once open, the application may [`send`](Self::send) (an echo, on
///    [`Event::Data`]), [`send_shared`](Self::send_shared) (another connection's chat
///    message) or [`go_away`](Self::go_away) (shutdown), in this turn or between turns;
///    before the head is read, it may [`cut_short`](Self::cut_short) the connection.
/// 4. Write what was transmitted, then call [`handle_flushed`](Self::handle_flushed)
///    with what is still unsent and do what its [`Flushed`] says.
/// 5. When the clock reaches [`poll_timeout`](Self::poll_timeout) (or on a periodic
///    sweep), call [`handle_timeout`](Self::handle_timeout); drop the connection if the
///    [`Timeout`] [`ends`](Timeout::ends) it, else go on as in step 4.
///
/// A call out of this order returns [`Misuse`] and does nothing else: that is a bug in
/// the shell, which drops the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConnection<A = ()> {
    /// When the current wait began (see [`Phase`] and [`Liveness`]).
    since: Tick,
    phase: Phase,
    app: A,
    /// The permessage-deflate agreement, if the handshake made one (RFC 7692 §7.1).
    deflate: Option<Agreement>,
    receiver: Receiver,
}

impl<A: Copy> ServerConnection<A> {
    /// A connection accepted at `now`, waiting for its request head.
    pub fn new(now: Tick, app: A) -> ServerConnection<A> {
        ServerConnection {
            since: now,
            phase: Phase::Handshaking,
            app,
            deflate: None,
            receiver: Receiver::default(),
        }
    }

    /// The permessage-deflate agreement, if one was made: compressed messages may then
    /// arrive, and [`send_compressed`](Self::send_compressed) may be used.
    pub fn deflate(&self) -> Option<Agreement> {
        self.deflate
    }

    /// The application's value.
    pub fn app(&self) -> A {
        self.app
    }

    /// Replaces the application's value (when its answer to the request decides it).
    pub fn set_app(&mut self, app: A) {
        self.app = app;
    }

    /// Since when the connection has waited for its request head, while it still does:
    /// at capacity, the longest waiting gives way to a newcomer
    /// ([`cut_short`](Self::cut_short)).
    pub fn awaiting_head_since(&self) -> Option<Tick> {
        (self.phase == Phase::Handshaking).then_some(self.since)
    }

    /// Whether this is an open WebSocket: past the handshake and not closing.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Whether writing ends once the output owed is flushed: our final answer (a Close
    /// frame, §5.5.1, or an HTTP response) is queued, and
    /// [`handle_flushed`](Self::handle_flushed) will answer [`Flushed::ShutdownWrite`].
    pub fn shuts_down_when_flushed(&self) -> bool {
        self.phase == Phase::Closing
    }

    /// Whether to read the socket now, given `unsent` bytes of output not yet written.
    /// An open connection whose unsent output reached its mark pauses here (see
    /// [`HIGH_WATER`]; `relaxed` says the server's pool for messages in progress has
    /// room, which lets a message in progress run further behind), and reading stays
    /// paused until
    /// [`handle_flushed`](Self::handle_flushed) resumes it. No reading after the client's
    /// EOF, nor while a request waits for its answer.
    pub fn poll_read(
        &mut self,
        unsent: usize,
        relaxed: bool,
        config: &ServerConfig<'_>,
        now: Tick,
    ) -> bool {
        match self.phase {
            Phase::Open(Liveness::Paused) | Phase::Answering | Phase::Flushing => false,
            Phase::Open(_) if unsent >= config.pause_mark(self.receiver.in_message(), relaxed) => {
                self.phase = Phase::Open(Liveness::Paused);
                self.since = now;
                false
            }
            Phase::Handshaking | Phase::Open(_) | Phase::Closing | Phase::Draining => true,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do, if ever
    /// in the current phase: for a shell that keeps a timer per connection. Any
    /// `handle_*` call may move it.
    pub fn poll_timeout(&self, timeouts: &Timeouts) -> Option<Tick> {
        let age = due_at_age(self.phase.wait(), timeouts)?;
        Some(self.since.saturating_add(age))
    }

    /// Bytes were read at `now`: consumes bytes from the front of `data`, which holds all
    /// input not consumed before (of which the first `scanned` bytes were seen by an
    /// earlier call), and returns how many, with the event they completed if any.
    /// `(0, None)` means more input is needed: the caller keeps the bytes. Payload is
    /// unmasked in place; a Ping is answered and a Close echoed here.
    // Inlined into the caller's loop, so that its result (an event of some 90 bytes,
    // once per frame on the echo path) is built where the caller matches it, not copied
    // there: callgrind counts 60 instructions an echo fewer.
    #[inline]
    pub fn handle_read<'a>(
        &mut self,
        data: &'a mut [u8],
        scanned: usize,
        config: &ServerConfig<'_>,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> Result<(usize, Option<Event<'a>>), Misuse> {
        match self.phase {
            Phase::Handshaking => Ok(self.read_head(data, scanned, config, now, tx)),
            Phase::Open(Liveness::Paused) => Err(Misuse::ReadPaused),
            Phase::Open(_) => {
                // Any input is a sign of life, not only a Pong (§5.5.2 allows a client
                // to answer a Ping late, or with a frame of its own).
                self.since = now;
                self.phase = Phase::Open(Liveness::Heard);
                let len = data.len();
                // `Ok` in each arm, not around the match: the event is then built where
                // it is returned, not copied there (once per frame on the echo path).
                match self
                    .receiver
                    .poll(&config.receiver(self.deflate.is_some()), data)
                {
                    Ok((n, None)) => Ok((n, None)),
                    Ok((n, Some(event))) => Ok((n, self.on_frame(event, now, tx))),
                    Err(e) => {
                        self.send_close(e.close_code(), &e.to_string(), now, tx);
                        // Whatever follows a violation is discarded.
                        Ok((len, Some(Event::Failed(e))))
                    }
                }
            }
            Phase::Answering => Err(Misuse::AnswerOwed),
            Phase::Flushing => Err(Misuse::AfterEof),
            // Closing or draining: whatever else arrives is discarded.
            Phase::Closing | Phase::Draining => Ok((data.len(), None)),
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
                self.send_frame(OpCode::Pong, true, payload, tx);
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

    /// The client ended its side (EOF) at `now`, with `unsent` bytes of output not yet
    /// written. With nothing left to send it, we are done (returns true: drop the
    /// connection); a client that ends without a Close frame gets no Close from us
    /// (§7.1.5: it sees 1006). Otherwise what we owe is flushed first.
    pub fn handle_eof(&mut self, unsent: usize, now: Tick) -> Result<bool, Misuse> {
        match self.phase {
            Phase::Answering => return Err(Misuse::AnswerOwed),
            Phase::Open(Liveness::Paused) => return Err(Misuse::ReadPaused),
            Phase::Flushing => return Err(Misuse::AfterEof),
            _ => {}
        }
        if unsent == 0 {
            return Ok(true);
        }
        self.set_phase(Phase::Flushing, now);
        Ok(false)
    }

    /// The caller wrote what it could, and `unsent` bytes are left: resume reading
    /// below [`LOW_WATER`], and say when the final answer is out.
    pub fn handle_flushed(&mut self, unsent: usize, now: Tick) -> Flushed {
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

    /// The clock reads `now`: acts on the deadline due, if any, and says which.
    pub fn handle_timeout(
        &mut self,
        now: Tick,
        timeouts: &Timeouts,
        tx: &mut impl Transmit,
    ) -> Result<Option<Timeout>, Misuse> {
        if self.phase == Phase::Answering {
            return Err(Misuse::AnswerOwed);
        }
        let Some(due) = due(self.phase.wait(), now.saturating_sub(self.since), timeouts) else {
            return Ok(None);
        };
        let timeout = match due {
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
        Ok(Some(timeout))
    }

    /// Sends one frame of the application's (a data frame, a fragment, or a Ping/Pong)
    /// and returns whether it went out: once our Close is queued nothing follows it
    /// (§5.5.1), so a frame that races the Close is dropped (`Ok(false)`).
    pub fn send(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        tx: &mut impl Transmit,
    ) -> Result<bool, Misuse> {
        if opcode == OpCode::Close {
            return Err(Misuse::CloseFrame);
        }
        let open = self.may_send()?;
        if open {
            self.send_frame(opcode, fin, payload, tx);
        }
        Ok(open)
    }

    /// Sends one whole message compressed by permessage-deflate (RFC 7692 §6: one frame,
    /// RSV1 set); returns whether it went out, as [`send`](Self::send) does. Only on a
    /// connection that agreed to it (else [`Misuse::NotNegotiated`]).
    pub fn send_compressed(
        &mut self,
        opcode: OpCode,
        compressed: &[u8],
        tx: &mut impl Transmit,
    ) -> Result<bool, Misuse> {
        if opcode.is_control() || opcode == OpCode::Continuation || self.deflate.is_none() {
            return Err(Misuse::NotNegotiated);
        }
        let open = self.may_send()?;
        if open {
            transmit_frame(opcode, true, true, compressed, tx);
        }
        Ok(open)
    }

    /// Fails the connection for a violation the application found in a message the
    /// core passed on (a compressed message that does not inflate, or whose text is not
    /// UTF-8, or that inflates past the limit): a Close with the error's code is queued
    /// (§7.1.7) and whatever arrives after it is discarded. Returns whether it was
    /// failed now (`false`: it was closing already).
    pub fn fail(
        &mut self,
        error: ProtocolError,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> Result<bool, Misuse> {
        let open = self.may_send()?;
        if open {
            self.send_close(error.close_code(), &error.to_string(), now, tx);
        }
        Ok(open)
    }

    /// Sends a frame encoded once for many connections (a chat message), keeping its
    /// bytes shared if `tx` can ([`Transmit::transmit_shared`]); returns whether it went
    /// out, as [`send`](Self::send) does. A compressed one only on a connection that
    /// agreed to permessage-deflate (the application picks one compressed with a window
    /// the client takes).
    pub fn send_shared(
        &mut self,
        frame: &SharedFrame,
        tx: &mut impl Transmit,
    ) -> Result<bool, Misuse> {
        if frame.is_close() {
            return Err(Misuse::CloseFrame);
        }
        if frame.is_compressed() && self.deflate.is_none() {
            return Err(Misuse::NotNegotiated);
        }
        let open = self.may_send()?;
        if open {
            tx.transmit_shared(frame.bytes());
        }
        Ok(open)
    }

    /// Whether the application's frames may go out now: only while open; before the
    /// handshake that is a [`Misuse`], after our Close a race to drop.
    fn may_send(&self) -> Result<bool, Misuse> {
        match self.phase {
            Phase::Handshaking => Err(Misuse::NotOpen),
            Phase::Answering => Err(Misuse::AnswerOwed),
            Phase::Open(_) => Ok(true),
            Phase::Closing | Phase::Draining | Phase::Flushing => Ok(false),
        }
    }

    /// Starts the closing handshake with 1001 because the server is shutting down; a
    /// connection still in its handshake just closes. Returns the code sent, if any.
    pub fn go_away(
        &mut self,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> Result<Option<CloseCode>, Misuse> {
        match self.phase {
            Phase::Open(_) => {
                self.send_close(CloseCode::GOING_AWAY, "server shutting down", now, tx);
                Ok(Some(CloseCode::GOING_AWAY))
            }
            Phase::Handshaking => {
                self.set_phase(Phase::Closing, now);
                Ok(None)
            }
            Phase::Answering => Err(Misuse::AnswerOwed),
            Phase::Closing | Phase::Draining | Phase::Flushing => Ok(None),
        }
    }

    /// Ends a connection still waiting for its request head with an HTTP error, as the
    /// handshake timeout would but sooner: the server needs its place (a newcomer when
    /// every descriptor is taken). Once the head is read its answer is the
    /// application's, so then this is a [`Misuse`].
    pub fn cut_short(
        &mut self,
        refusal: Refusal,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> Result<(), Misuse> {
        if self.phase != Phase::Handshaking {
            return Err(Misuse::HeadRead);
        }
        self.refuse(refusal, now, tx);
        Ok(())
    }

    fn send_close(&mut self, code: CloseCode, reason: &str, now: Tick, tx: &mut impl Transmit) {
        let (payload, len) = encode_close_payload(code, reason);
        self.set_phase(Phase::Closing, now);
        self.send_frame(OpCode::Close, true, &payload[..len], tx);
    }

    /// Sends one unmasked, uncompressed server frame (§5.1).
    fn send_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8], tx: &mut impl Transmit) {
        transmit_frame(opcode, fin, false, payload, tx);
    }

    /// The one place the phase changes between its kinds: a new kind starts its wait now.
    fn set_phase(&mut self, phase: Phase, now: Tick) {
        if std::mem::discriminant(&phase) != std::mem::discriminant(&self.phase) {
            self.since = now;
        }
        self.phase = phase;
    }
}

/// Transmits one unmasked server frame (§5.1), its header from the stack; `rsv1` marks
/// a compressed message (RFC 7692 §6).
fn transmit_frame(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8], tx: &mut impl Transmit) {
    let header = FrameHeader {
        fin,
        rsv1,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let (head, head_len) = header.encode();
    tx.transmit(&head[..head_len], payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::encode_frame;
    use crate::protocol::handshake::{Policy, Upgrade};

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
        let (n, event) = conn
            .handle_read(&mut request, 0, &config(), 0, &mut out)
            .unwrap();
        assert_eq!(n, REQUEST.len());
        let Some(Event::Request { target, upgrade }) = event else {
            panic!("{event:?}");
        };
        assert_eq!(target, "/echo");
        conn.handle_answer(Answer::Accept(upgrade.unwrap()), 0, &mut out)
            .unwrap();
        assert!(conn.is_open());
        (conn, out)
    }

    /// Polls `data` to the end; returns the events, as text, and the output.
    fn feed(conn: &mut ServerConnection, mut data: Vec<u8>, now: Tick) -> (Vec<String>, Vec<u8>) {
        let (mut events, mut out, mut pos) = (Vec::new(), Vec::new(), 0);
        loop {
            let (n, event) = conn
                .handle_read(&mut data[pos..], 0, &config(), now, &mut out)
                .unwrap();
            pos += n;
            match event {
                Some(event) => events.push(format!("{event:?}")),
                None if n == 0 => return (events, out),
                None => {}
            }
        }
    }

    /// A connection opened with `extensions` offered, to a server that accepts
    /// permessage-deflate if `deflate`; returns it, its config and the 101 as text.
    fn open_offering(
        deflate: bool,
        extensions: &str,
    ) -> (ServerConnection, ServerConfig<'static>, String) {
        let mut config = config();
        config.policy.deflate = deflate;
        let mut conn = ServerConnection::new(0, ());
        let head = String::from_utf8(REQUEST.to_vec()).unwrap();
        let offer = format!("Sec-WebSocket-Extensions: {extensions}\r\n\r\n");
        let mut request = head
            .replacen("\r\n\r\n", &format!("\r\n{offer}"), 1)
            .into_bytes();
        let mut out = Vec::new();
        let (_, event) = conn
            .handle_read(&mut request, 0, &config, 0, &mut out)
            .unwrap();
        let Some(Event::Request { upgrade, .. }) = event else {
            panic!("{event:?}");
        };
        conn.handle_answer(Answer::Accept(upgrade.unwrap()), 0, &mut out)
            .unwrap();
        (conn, config, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_deflate_offer_is_answered_in_the_101_and_compressed_messages_then_flow() {
        let (mut conn, config, head) =
            open_offering(true, "permessage-deflate; client_max_window_bits");
        assert!(
            head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"),
            "{head}"
        );
        assert!(head.ends_with("\r\n\r\n"));
        assert!(conn.deflate().is_some());
        // A compressed message (RSV1) is passed on, marked.
        let mut frame = client_frame(
            true,
            OpCode::Text,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        );
        frame[0] |= 0x40;
        let mut out = Vec::new();
        let (header, none) = conn
            .handle_read(&mut frame, 0, &config, 1, &mut out)
            .unwrap();
        assert_eq!((header, none), (6, None));
        let (_, event) = conn
            .handle_read(&mut frame[header..], 0, &config, 1, &mut out)
            .unwrap();
        assert!(matches!(event, Some(Event::Data(chunk)) if chunk.compressed));
        // Ours go out as one frame with RSV1 set, unmasked (RFC 7692 §6).
        assert_eq!(
            conn.send_compressed(OpCode::Binary, &[0x00], &mut out),
            Ok(true)
        );
        assert_eq!(out, [0xC2, 0x01, 0x00]);
        for opcode in [OpCode::Ping, OpCode::Continuation, OpCode::Close] {
            untouched(
                &mut conn,
                &|c, out| c.send_compressed(opcode, b"", out).map(drop),
                Misuse::NotNegotiated,
            );
        }
        // A message the application finds broken fails the connection with its code.
        let mut out = Vec::new();
        assert_eq!(
            conn.fail(ProtocolError::BadCompressedText, 2, &mut out),
            Ok(true)
        );
        assert_eq!(&out[..4], [0x88, out[1], 0x03, 0xEF], "Close 1007");
        assert!(conn.shuts_down_when_flushed());
        assert_eq!(
            conn.fail(ProtocolError::BadCompressedText, 2, &mut out),
            Ok(false)
        );
        assert_eq!(conn.send_compressed(OpCode::Text, b"", &mut out), Ok(false));
    }

    #[test]
    fn without_an_agreement_there_is_no_compression() {
        for (deflate, offer) in [
            (false, "permessage-deflate"),
            (true, "permessage-deflate; bogus"),
        ] {
            let (mut conn, config, head) = open_offering(deflate, offer);
            assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
            assert_eq!(conn.deflate(), None);
            untouched(
                &mut conn,
                &|c, out| c.send_compressed(OpCode::Text, b"", out).map(drop),
                Misuse::NotNegotiated,
            );
            // §5.2: RSV1 without an extension that defines it fails the connection.
            let mut frame = client_frame(true, OpCode::Text, b"x");
            frame[0] |= 0x40;
            let mut out = Vec::new();
            let (_, event) = conn
                .handle_read(&mut frame, 0, &config, 1, &mut out)
                .unwrap();
            assert_eq!(event, Some(Event::Failed(ProtocolError::ReservedBits)));
            assert_eq!(&out[2..4], [0x03, 0xEA], "Close 1002");
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
        let (n, event) = conn
            .handle_read(&mut data, 0, &config(), 0, &mut out)
            .unwrap();
        assert_eq!(n, len);
        assert!(matches!(event, Some(Event::Refused(r)) if r.status.0 == 505));
        assert!(out.starts_with(b"HTTP/1.1 505 "));
        assert!(
            !conn.poll_read(0, false, &config(), 0)
                || conn
                    .handle_read(&mut [1][..], 0, &config(), 0, &mut out)
                    .unwrap()
                    .1
                    .is_none()
        );
        assert_eq!(conn.handle_flushed(0, 0), Flushed::ShutdownWrite);
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
        assert_eq!(conn.handle_flushed(0, 1), Flushed::ShutdownWrite);
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
        conn.send(OpCode::Binary, true, b"x", &mut late).unwrap();
        assert!(late.is_empty(), "never send after Close (§5.5.1)");
    }

    #[test]
    fn deadlines_follow_the_time_passed_in() {
        let mut conn = ServerConnection::new(0, ());
        let t = Timeouts::default();
        let mut out = Vec::new();
        assert_eq!(
            conn.handle_timeout(t.handshake - 1, &t, &mut out).unwrap(),
            None
        );
        assert_eq!(
            conn.handle_timeout(t.handshake, &t, &mut out).unwrap(),
            Some(Timeout::Handshake)
        );
        assert!(out.starts_with(b"HTTP/1.1 408 "));

        let (mut conn, _) = open();
        let mut out = Vec::new();
        assert_eq!(
            conn.handle_timeout(t.ping, &t, &mut out).unwrap(),
            Some(Timeout::Ping)
        );
        assert_eq!(out, b"\x89\x00");
        conn.handle_read(&mut [], 0, &config(), t.ping + 1, &mut out)
            .unwrap();
        assert_eq!(
            conn.handle_timeout(t.idle, &t, &mut out).unwrap(),
            None,
            "input restarts the silence"
        );
        assert_eq!(
            conn.handle_timeout(t.ping + 1 + t.idle, &t, &mut out)
                .unwrap(),
            Some(Timeout::Idle)
        );
        assert_eq!(
            conn.handle_timeout(t.ping + 1 + t.idle + t.close, &t, &mut out)
                .unwrap(),
            Some(Timeout::Close)
        );
    }

    #[test]
    fn reading_pauses_at_high_water_and_resumes_below_low_water() {
        let (mut conn, _) = open();
        assert!(conn.poll_read(HIGH_WATER - 1, false, &config(), 1));
        assert!(!conn.poll_read(HIGH_WATER, false, &config(), 1));
        assert!(!conn.poll_read(0, false, &config(), 1));
        assert_eq!(conn.handle_flushed(LOW_WATER, 2), Flushed::Keep);
        assert_eq!(conn.handle_flushed(LOW_WATER - 1, 2), Flushed::Resumed);
        assert!(conn.poll_read(0, false, &config(), 2));
        // Paused longer than the send timeout without draining: dropped.
        let t = Timeouts::default();
        assert!(!conn.poll_read(HIGH_WATER, false, &config(), 3));
        assert_eq!(
            conn.handle_timeout(3 + t.send, &t, &mut Vec::new())
                .unwrap(),
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
        assert!(conn.poll_read(HIGH_WATER, true, &config(), 1), "relaxed");
        assert!(
            !conn.poll_read(HIGH_WATER, false, &config(), 1),
            "under pressure"
        );
        let limit = config().max_message_size as usize + HIGH_WATER;
        let (mut conn, _) = open();
        feed(&mut conn, frame[..500].to_vec(), 1);
        assert!(
            !conn.poll_read(limit, true, &config(), 1),
            "bounded by the limit"
        );
    }

    #[test]
    fn an_eof_with_output_owed_flushes_it_first() {
        let (mut conn, _) = open();
        assert!(!conn.handle_eof(10, 1).unwrap());
        assert!(!conn.poll_read(10, false, &config(), 1));
        assert_eq!(conn.handle_flushed(5, 1), Flushed::Keep);
        assert_eq!(conn.handle_flushed(0, 1), Flushed::Done);
        let (mut conn, _) = open();
        assert!(conn.handle_eof(0, 1).unwrap(), "nothing owed: done at once");
    }

    #[test]
    fn shutting_down_sends_1001_once() {
        let (mut conn, _) = open();
        let mut out = Vec::new();
        assert_eq!(conn.go_away(1, &mut out), Ok(Some(CloseCode::GOING_AWAY)));
        assert!(out.starts_with(b"\x88\x16\x03\xe9server shutting down"));
        assert_eq!(conn.go_away(1, &mut out), Ok(None));
    }

    /// A call on a connection, with the output it may transmit.
    type Call<'c> = &'c dyn Fn(&mut ServerConnection, &mut Vec<u8>) -> Result<(), Misuse>;

    /// Asserts that `call` fails with `misuse` and leaves `conn` and the output as they were.
    fn untouched(conn: &mut ServerConnection, call: Call<'_>, misuse: Misuse) {
        let (before, mut out) = (*conn, Vec::new());
        assert_eq!(call(conn, &mut out), Err(misuse));
        assert_eq!(
            (*conn, out),
            (before, Vec::new()),
            "{misuse:?} did something"
        );
    }

    #[test]
    fn calls_out_of_order_are_errors_that_change_nothing() {
        let t = Timeouts::default();
        let accept = Answer::Accept(Upgrade {
            accept: [b'a'; 28],
            protocol: None,
            deflate: None,
        });
        let mut fresh = ServerConnection::new(0, ());
        untouched(
            &mut fresh,
            &|c, out| c.handle_answer(accept, 0, out),
            Misuse::NoRequest,
        );
        untouched(
            &mut fresh,
            &|c, out| c.send(OpCode::Text, true, b"x", out).map(drop),
            Misuse::NotOpen,
        );

        // A request reported and not answered yet: only the answer may come.
        let mut asked = ServerConnection::new(0, ());
        let mut request = REQUEST.to_vec();
        let (_, event) = asked
            .handle_read(&mut request, 0, &config(), 0, &mut Vec::new())
            .unwrap();
        assert!(matches!(event, Some(Event::Request { .. })));
        assert!(!asked.poll_read(0, false, &config(), 0));
        untouched(
            &mut asked,
            &|c, out| c.handle_read(&mut [1], 0, &config(), 0, out).map(drop),
            Misuse::AnswerOwed,
        );
        untouched(
            &mut asked,
            &|c, _| c.handle_eof(0, 0).map(drop),
            Misuse::AnswerOwed,
        );
        untouched(
            &mut asked,
            &|c, out| c.handle_timeout(t.handshake, &t, out).map(drop),
            Misuse::AnswerOwed,
        );
        untouched(
            &mut asked,
            &|c, out| c.go_away(0, out).map(drop),
            Misuse::AnswerOwed,
        );
        untouched(
            &mut asked,
            &|c, out| c.send(OpCode::Text, true, b"x", out).map(drop),
            Misuse::AnswerOwed,
        );
        asked.handle_answer(accept, 0, &mut Vec::new()).unwrap();
        // Answered: accepting twice is an error.
        untouched(
            &mut asked,
            &|c, out| c.handle_answer(accept, 0, out),
            Misuse::NoRequest,
        );
        untouched(
            &mut asked,
            &|c, out| c.cut_short(Refusal::GAVE_WAY, 0, out),
            Misuse::HeadRead,
        );
        untouched(
            &mut asked,
            &|c, out| c.send(OpCode::Close, true, b"", out).map(drop),
            Misuse::CloseFrame,
        );
        let close = SharedFrame::new(OpCode::Close, b"");
        untouched(
            &mut asked,
            &|c, out| c.send_shared(&close, out).map(drop),
            Misuse::CloseFrame,
        );

        // Paused: no input until reading resumes.
        assert!(!asked.poll_read(HIGH_WATER, false, &config(), 1));
        untouched(
            &mut asked,
            &|c, out| c.handle_read(&mut [1], 0, &config(), 1, out).map(drop),
            Misuse::ReadPaused,
        );
        untouched(
            &mut asked,
            &|c, _| c.handle_eof(0, 1).map(drop),
            Misuse::ReadPaused,
        );
        assert_eq!(asked.handle_flushed(0, 1), Flushed::Resumed);

        // After EOF: no more input.
        assert!(!asked.handle_eof(10, 1).unwrap());
        untouched(
            &mut asked,
            &|c, out| c.handle_read(&mut [1], 0, &config(), 1, out).map(drop),
            Misuse::AfterEof,
        );
        untouched(
            &mut asked,
            &|c, _| c.handle_eof(10, 1).map(drop),
            Misuse::AfterEof,
        );
    }

    #[test]
    fn a_connection_waiting_for_its_head_can_be_cut_short() {
        let mut conn = ServerConnection::new(0, ());
        let mut out = Vec::new();
        assert_eq!(conn.cut_short(Refusal::GAVE_WAY, 1, &mut out), Ok(()));
        assert!(out.starts_with(b"HTTP/1.1 503 "));
        assert!(conn.shuts_down_when_flushed() && conn.awaiting_head_since().is_none());
    }

    #[test]
    fn shared_frames_go_out_only_while_open() {
        let (mut conn, _) = open();
        let frame = SharedFrame::new(OpCode::Text, b"hi");
        let mut out = Vec::new();
        assert_eq!(conn.send_shared(&frame, &mut out), Ok(true));
        assert_eq!(out, b"\x81\x02hi");
        assert_eq!(conn.go_away(1, &mut out), Ok(Some(CloseCode::GOING_AWAY)));
        let mut late = Vec::new();
        assert_eq!(conn.send_shared(&frame, &mut late), Ok(false));
        assert!(late.is_empty(), "never send after Close (§5.5.1)");
    }

    #[test]
    fn the_next_deadline_is_when_a_timeout_is_due() {
        let t = Timeouts::default();
        let mut conn = ServerConnection::new(5, ());
        assert_eq!(conn.poll_timeout(&t), Some(5 + t.handshake));
        let (mut conn_open, _) = open();
        for (conn, expected) in [
            (&mut conn, Timeout::Handshake),
            (&mut conn_open, Timeout::Ping),
        ] {
            let at = conn.poll_timeout(&t).unwrap();
            let mut out = Vec::new();
            assert_eq!(conn.handle_timeout(at - 1, &t, &mut out), Ok(None));
            assert_eq!(conn.handle_timeout(at, &t, &mut out), Ok(Some(expected)));
        }
        // After the Ping, the idle timeout counts from the last input.
        assert_eq!(conn_open.poll_timeout(&t), Some(t.idle));
        let off = Timeouts {
            ping: 0,
            idle: 0,
            ..t
        };
        let (conn, _) = open();
        assert_eq!(
            conn.poll_timeout(&off),
            None,
            "an open connection with no heartbeat"
        );
    }
}
