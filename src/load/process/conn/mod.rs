//! One client connection's state machine over its socket: connect → opening handshake →
//! verification echo → hold (periodic echoes, pongs for pings) → clean close. In chat
//! mode the join (the 101 on `/chat?room=…`) verifies it instead, and it holds as a room
//! member: it checks every message it receives against the room's sequence, and one
//! member, the sender, sends them.
//!
//! The protocol work is the sans-IO core's client role (`protocol::client`), and the
//! socket IO (reading behind kept input, writing or spilling) is `stream`'s, both
//! shared with the server; this folder decides what to send and what an answer means.
//! The driver owns the poll loop and calls in with readiness, deadlines and the close
//! order.
//!
//! [`Conn`]'s fields are private to this folder, which is its one `impl` home: this
//! file is the lifecycle (connect, handshake, read, close, how it ended); `echoes.rs`
//! the verification and periodic echoes; `chat_member.rs` a room member's messages and
//! the sender's; `echo_window.rs` the echo workload's messages in flight.
//!
//! Invariants:
//! - Small: an idle connection is its slab entry only (see `conn_is_small`); bytes that
//!   cannot be handled now (a partial head or frame, unsent output) live in a boxed
//!   spill that exists only while it holds some (`stream::Spilled`).
//! - One deadline per connection, meaning depends on the phase; the driver's periodic
//!   sweep compares it (no per-connection timers).
//! - Every way a connection ends goes through [`Conn::finish`] or [`Conn::abort`], which
//!   count the outcome and keep the `open`/`pending` gauges right; after a method returns
//!   [`Next::Remove`] the driver only drops it.

use std::io;

use mio::net::TcpStream;

use crate::load::process::env::{Env, NEVER};
use crate::load::process::socket::{connect_failure, io_failure};
use crate::load::wire::Failure;
use crate::protocol::client::{ClientConnection, ClientError, Event};
use crate::protocol::close::CloseCode;
use crate::protocol::handshake::{client_key, ResponseError};
use crate::stream::{Link, Received, Spilled};

mod chat_member;
mod echo_window;
mod echoes;

/// What the poll reported for one connection.
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    /// Bytes (or the EOF, or an error) may be read.
    pub readable: bool,
    /// Bytes may be written (or a pending connect has completed).
    pub writable: bool,
    /// The peer's FIN (or an error) was seen: read on to the EOF.
    pub read_closed: bool,
}

impl Readiness {
    /// A hang-up or an error is reported as readable and writable, so that the read or
    /// write that meets it ends the connection.
    pub fn of(event: &mio::event::Event) -> Readiness {
        let closed = event.is_read_closed() || event.is_error();
        Readiness {
            readable: event.is_readable() || closed,
            writable: event.is_writable() || event.is_write_closed() || event.is_error(),
            read_closed: closed,
        }
    }
}

/// What the driver does with a connection after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It goes on.
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
    /// The echo window (`echo_window.rs`): echoes `next .. sent` are in flight, and
    /// `matched` bytes of echo `next` have come back intact.
    Window { next: u32, sent: u32, matched: u32 },
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Non-blocking connect in progress.
    Connecting,
    /// Connected: the protocol core (handshake, then frames, then our closing
    /// handshake) and what this connection expects to receive next.
    Running { core: ClientConnection, echo: Echo },
}

const ESTABLISHED: u8 = 1;
const VERIFIED: u8 = 2;
/// We sent Close; waiting for the server's Close, then its EOF.
const CLOSING: u8 = 4;

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
    spill: Spilled,
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
            spill: Spilled::default(),
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
            Phase::Running {
                core,
                echo: Echo::Idle { .. } | Echo::Chat { .. },
            } if core.is_open()
        )
    }

    /// Handles readiness reported by the poll.
    pub fn on_ready(&mut self, env: &mut Env, buf: &mut [u8], ready: Readiness) -> Next {
        let r = self.ready(env, buf, ready);
        self.settle(env, r)
    }

    /// Handles a passed deadline: a timeout, or the next periodic echo.
    pub fn on_deadline(&mut self, env: &mut Env) -> Next {
        let r = match self.phase {
            Phase::Connecting => Err(Failure::ConnectTimeout.into()),
            _ if self.flags & CLOSING != 0 => Err(End::CloseTimeout),
            _ if self.flags & ESTABLISHED == 0 => Err(Failure::HandshakeTimeout.into()),
            Phase::Running {
                echo: Echo::Waiting { .. } | Echo::Window { .. },
                ..
            } => Err(Failure::EchoTimeout.into()),
            Phase::Running {
                echo: Echo::Chat { .. },
                ..
            } => {
                self.deadline_ms = NEVER;
                Ok(())
            }
            Phase::Running {
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
        };
        self.settle(env, r)
    }

    /// Starts the closing handshake (Close 1000); only when [`Conn::can_close`].
    pub fn begin_close(&mut self, env: &mut Env) -> Next {
        if !self.can_close() {
            return Next::Keep;
        }
        let r = self.close_now(env);
        self.settle(env, r.map_err(End::from))
    }

    /// Sends Close 1000 and waits for the server's Close, then its EOF.
    fn close_now(&mut self, env: &mut Env) -> Result<(), Failure> {
        self.flags |= CLOSING;
        self.deadline_ms = env.after_ms(env.cfg.close_timeout_ms);
        env.stats.counters.closing += 1;
        let mask = env.rng.next_u32().to_ne_bytes();
        self.with_core(env, |core, _, link| {
            core.close(CloseCode::NORMAL, mask, link)
        })
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
        let closing = self.flags & CLOSING != 0;
        let c = &mut env.stats.counters;
        match end {
            End::Clean => c.closed_clean += 1,
            End::CloseTimeout => c.close_timeout += 1,
            End::Fail(why) if closing => {
                log::debug!("unclean close: {why}");
                c.close_unclean += 1;
            }
            End::Fail(why) => {
                c.fail(why);
                if self.flags & ESTABLISHED == 0 {
                    env.ramp_cap.observe_failure();
                }
            }
        }
        self.release(env);
        Next::Remove
    }

    fn release(&mut self, env: &mut Env) {
        if let (
            Phase::Running {
                echo: Echo::Chat { next, .. },
                ..
            },
            Some(room),
        ) = (self.phase, &mut env.chat)
        {
            if self.flags & CLOSING == 0 {
                room.on_member_lost(next);
            }
        }
        let c = &mut env.stats.counters;
        if self.flags & ESTABLISHED != 0 {
            c.open -= 1;
        }
        if self.flags & VERIFIED == 0 {
            c.pending -= 1;
        }
        if self.flags & CLOSING != 0 {
            c.closing -= 1;
        }
    }

    fn ready(&mut self, env: &mut Env, buf: &mut [u8], ready: Readiness) -> Result<(), End> {
        let Readiness {
            readable,
            writable,
            read_closed,
        } = ready;
        if let Phase::Connecting = self.phase {
            // Writable alone is the connect completing: a failed connect also reports an
            // error and a hang-up, which the driver passes on as readable. Only then, or
            // on a wake-up without writable, are the two syscalls of the check needed (a
            // million connections save two million). Were the socket still connecting,
            // the request would wait in the spill for the next writable edge.
            if (readable || !writable) && !self.connected()? {
                return Ok(());
            }
            let key = client_key(env.rng.nonce());
            let mut link = Link::new(&mut self.stream, &mut self.spill);
            let core = ClientConnection::start(&env.cfg.host, &env.cfg.path, key, &mut link);
            link.finish().map_err(|e| connect_failure(&e))?;
            self.phase = Phase::Running {
                core,
                echo: Echo::Idle { seq: 0 },
            };
        }
        if writable {
            self.flush()?;
        }
        if readable {
            self.on_readable(env, buf, read_closed)?;
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

    /// Reads into the shared buffer behind any kept input until the socket is drained.
    /// A read that does not fill the buffer has drained it: under edge-triggered epoll,
    /// bytes arriving later raise a new edge, so reading on would only collect EAGAIN
    /// (one wasted syscall per echo; the server's rule too). The exception is an event
    /// that reported the peer's FIN (`read_closed`): an EOF that arrived before the read
    /// raises no later edge, so then it reads on to the EOF. After a full read it reads
    /// on: bytes left unread could fill our receive buffer, and then the server could
    /// send nothing that raises an edge.
    fn on_readable(&mut self, env: &mut Env, buf: &mut [u8], read_closed: bool) -> Result<(), End> {
        loop {
            match self.spill.read(&mut self.stream, buf) {
                Ok(Received::Data { len, fresh }) => {
                    let drained = len < buf.len();
                    let data = &mut buf[..len];
                    let used = self.on_bytes(env, data, len - fresh);
                    self.flush_cork(env, used.is_ok())?;
                    let used = used?;
                    self.spill.keep(&data[used..]);
                    self.spill.tidy();
                    if drained && !read_closed {
                        return Ok(());
                    }
                }
                Ok(Received::Eof) => return Err(self.eof()),
                Ok(Received::WouldBlock) => return Ok(()),
                Err(e) => return Err(io_failure(&e).into()),
            }
        }
    }

    fn eof(&self) -> End {
        match self.phase {
            Phase::Running { core, .. } if core.close_answered() => End::Clean,
            _ => Failure::ServerEof.into(),
        }
    }

    /// Runs `f` on the protocol core with this connection's output, then checks the
    /// output: a write error or a spill past its cap fails the connection.
    fn with_core<T>(
        &mut self,
        env: &mut Env,
        f: impl FnOnce(&mut ClientConnection, &mut Env, &mut Link<'_, TcpStream>) -> T,
    ) -> Result<T, Failure> {
        let Phase::Running { core, .. } = &mut self.phase else {
            unreachable!("only a running connection has a core");
        };
        let mut link = Link::new(&mut self.stream, &mut self.spill);
        let out = f(core, env, &mut link);
        link.finish().map_err(|e| io_failure(&e))?;
        if self.spill.unsent() > env.cfg.max_spill {
            return Err(Failure::SendStalled);
        }
        Ok(out)
    }

    /// Handles received bytes (of which the first `scanned` were seen before); returns
    /// how many were consumed (the rest is kept).
    fn on_bytes(&mut self, env: &mut Env, data: &mut [u8], scanned: usize) -> Result<usize, End> {
        let mut pos = 0;
        loop {
            let mask = env.rng.next_u32().to_ne_bytes();
            let scanned = if pos == 0 { scanned } else { 0 };
            let rest = &mut data[pos..];
            let (n, event) = self
                .with_core(env, |core, env, link| {
                    core.poll(rest, scanned, &env.cfg.receiver, mask, link)
                })?
                .map_err(|e| End::from(client_failure(e)))?;
            pos += n;
            match event {
                None if n == 0 => return Ok(pos),
                None => {}
                Some(Event::Opened) => self.on_established(env)?,
                Some(Event::Data(chunk)) if env.chat.is_some() => {
                    self.on_chat_chunk(env, &chunk)?
                }
                Some(Event::Data(chunk)) => self.on_echo_chunk(env, &chunk)?,
                // The server ended a connection we were holding: our Close answer (a
                // courtesy) is queued; count the failure.
                Some(Event::PeerClosed(code)) => {
                    let code = code.map_or(CloseCode::NO_STATUS.0, |c| c.0);
                    return Err(Failure::ServerClose(code).into());
                }
                // Our closing handshake: the server's EOF comes next.
                Some(Event::CloseAnswered) => {}
            }
        }
    }

    fn on_established(&mut self, env: &mut Env) -> Result<(), End> {
        let c = &mut env.stats.counters;
        c.established += 1;
        c.open += 1;
        if let Some(n) = env.stats.per_source.get_mut(usize::from(self.source)) {
            *n += 1;
        }
        let latency = env.now_us32().wrapping_sub(self.since_us);
        env.stats.record_handshake(u64::from(latency));
        if let Some(w) = &mut env.workload {
            w.on_handshake(latency);
        }
        env.ramp_cap.observe(u64::from(latency));
        self.flags |= ESTABLISHED;
        let Phase::Running { echo, .. } = &mut self.phase else {
            unreachable!("opened by its core");
        };
        if env.chat.is_some() {
            // The server seats a member before it answers 101: the join is done, and
            // what it receives from now on is checked against the room's sequence.
            *echo = Echo::Chat {
                next: 0,
                matched: 0,
            };
            self.deadline_ms = NEVER;
            self.flags |= VERIFIED;
            env.stats.counters.verified += 1;
            env.stats.counters.pending -= 1;
            return Ok(());
        }
        *echo = Echo::Idle { seq: 0 };
        self.send_echo(env)
    }

    /// Writes spilled output until done or `WouldBlock`.
    fn flush(&mut self) -> Result<(), Failure> {
        self.spill
            .flush(&mut self.stream)
            .map_err(|e| io_failure(&e))?;
        self.spill.tidy();
        Ok(())
    }
}

/// The failure a broken response or frame stream is counted as.
fn client_failure(e: ClientError) -> Failure {
    match e {
        ClientError::Http(_) => Failure::BadHandshake,
        ClientError::Handshake(why) => handshake_failure(why),
        ClientError::Protocol(e) => {
            log::debug!("server broke the protocol: {e}");
            Failure::ProtocolError
        }
    }
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
    use crate::load::process::payload;
    use crate::load::process::rng::Rng;
    use crate::protocol::frame::{encode_frame, OpCode};
    use crate::protocol::handshake::{accept_key, check_response};
    use crate::protocol::http::{parse_response, Header, MAX_HEADERS};
    use crate::protocol::receiver::ReceiverConfig;
    use crate::protocol::receiver::{Event, Receiver, Role};

    #[test]
    fn conn_is_small() {
        // The per-connection budget (< 128 B user space); the slab entry adds a word
        // at most. 96 today: fd 4, timers and seed 12, source and flags 3, spill 8,
        // phase 64 (the protocol core 48, of which its Receiver is 40; the echo 12).
        // mio's TcpStream carries an 8-byte selector id in debug builds only.
        let limit = if cfg!(debug_assertions) { 104 } else { 96 };
        let size = std::mem::size_of::<Conn>();
        assert!(size <= limit, "Conn is {size} bytes");
    }

    #[test]
    fn masked_frames_decode_as_a_server_would() {
        let mut out = Vec::new();
        let mut rng = Rng::from_seed(1);
        let mask = Some(rng.next_u32().to_ne_bytes());
        encode_frame(&mut out, true, OpCode::Text, mask, 300, |p| {
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
        let key = client_key(Rng::from_seed(3).nonce());
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
