//! One client connection's IO: its socket, the interest registered for it, and the
//! bytes it holds only while it must ([`Spilled`]). What the bytes mean is decided by
//! the sans-IO [`Session`] (the protocol core, routes, relay and counters), which this
//! file calls in the core's documented order (`ServerConnection`'s "Call order"); it
//! reads, writes, registers and logs, and never parses bytes itself.
//!
//! Memory (user memory per idle connection is the headline figure, within a budget of 96
//! bytes): an idle connection is this struct and nothing else. Reading pauses while
//! unsent output is above the protocol's high-water mark, so a client that does not read
//! cannot grow our memory.

use std::fmt;
use std::io;
use std::net::Shutdown;

use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::env::Env;
use super::relay::Gather;
use super::session::{Admit, Handled, Session};
use super::stats::Stats;
use super::transport::{Broken, Inbound, Outbound, Plain, Transport};
use crate::protocol::deadline::Tick;
use crate::protocol::frame::SharedFrame;
use crate::protocol::server::{Flushed, Misuse, HIGH_WATER};
use crate::protocol::transmit::Transmit;
use crate::stream::{Cork, Corked, Held, Spilled};

/// The reactor-wide read buffer every connection reads into in turn. Large enough that
/// a 64 KiB message and its header arrive in one read (the minimal echo that
/// `scripts/peers.sh` compares with uses the same size); it is one per process, so its
/// size costs connections nothing.
pub const READ_BUFFER_SIZE: usize = 256 * 1024;

/// Reads per readiness event before yielding to other connections (fairness): 1 MiB
/// per turn.
pub const READS_PER_TURN: usize = 4;

/// What the reactor lends a connection while it runs (`L`: what its transport layer
/// shares, see `Transport::Shared`).
#[derive(Debug)]
pub struct Shared<'a, L = ()> {
    /// What the connection's session borrows.
    pub env: Env<'a>,
    /// Where the socket's interest is registered.
    pub registry: &'a Registry,
    /// The output of the call in progress (the reactor's, empty between calls).
    pub cork: &'a mut Cork,
    /// What every connection holds, which the memory budget bounds.
    pub held: &'a mut Held,
    /// Whether the pool for messages in progress has room: see
    /// `ServerConnection::poll_read`.
    pub relaxed: bool,
    /// What the connections' transport layer shares.
    pub layer: &'a mut L,
}

/// What the reactor should do with the connection afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do until the next event.
    Keep,
    /// Input may be left unread (the read budget ran out, or reading just resumed
    /// after backpressure, so no readiness edge will come): drive it again next turn.
    Again,
    /// The connection is finished: close it.
    Drop,
}

/// Why a turn ended, which decides what the reactor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Nothing to do until the next readiness event (or reading is paused).
    Idle,
    /// The read budget ran out with input possibly left.
    Budget,
    /// The connection is finished.
    Done,
}

/// Why the shell drops a connection in the middle of a turn. The client sees the
/// connection end without a Close (1006, §7.1.5); the reason is logged at debug.
#[derive(Debug)]
enum Fault {
    /// The socket failed.
    Io(io::Error),
    /// The client's TLS failed; its alert has been sent.
    Tls(crate::tls::TlsError),
    /// This shell called its session out of order: a bug here, not the client's.
    Misuse(Misuse),
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

impl From<Broken> for Fault {
    fn from(e: Broken) -> Fault {
        match e {
            Broken::Io(e) => Fault::Io(e),
            Broken::Tls(e) => Fault::Tls(e),
        }
    }
}

impl From<Misuse> for Fault {
    fn from(e: Misuse) -> Fault {
        Fault::Misuse(e)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Io(e) => e.fmt(f),
            Fault::Tls(e) => e.fmt(f),
            Fault::Misuse(e) => write!(f, "call out of order: {e}"),
        }
    }
}

/// The connection's output for one call into its session: corked, and written once the
/// call is over ([`Connection::uncork`]).
struct Io<'c> {
    out: Corked<'c>,
    spill: &'c mut Spilled,
}

impl Transmit for Io<'_> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        self.out.transmit(head, body);
    }
}

impl Gather for Io<'_> {
    fn gathered(&mut self) -> &mut Vec<u8> {
        &mut self.spill.get().gathered
    }
}

/// One client connection over a TCP socket, through the transport layer `T`.
#[derive(Debug)]
pub struct Connection<T = Plain> {
    socket: TcpStream,
    /// The interest currently registered, so reregistration happens only on change.
    registered: Interest,
    /// Chat frames are queued for it and it waits for its write (see `FanOut`).
    queued: bool,
    spill: Spilled,
    session: Session,
    /// Plain: zero-sized; TLS: one pointer.
    transport: T,
}

impl<T: Transport> Connection<T> {
    /// Registers an accepted socket for reading.
    pub fn new(
        mut socket: TcpStream,
        token: Token,
        registry: &Registry,
        now: Tick,
        transport: T,
    ) -> io::Result<Self> {
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(Connection {
            socket,
            registered: Interest::READABLE,
            queued: false,
            spill: Spilled::default(),
            session: Session::new(now),
            transport,
        })
    }

    /// Whether this is an open WebSocket (past the handshake, not closing).
    pub fn is_websocket(&self) -> bool {
        self.session.is_open()
    }

    /// Whether this is a chat member (its messages go to a room).
    pub fn is_chat(&self) -> bool {
        self.session.is_chat()
    }

    /// Counts the drop and closes the socket. No `epoll_ctl(DEL)` first: closing the
    /// descriptor (never duplicated here) takes it out of the epoll set, and that saves
    /// a syscall per connection; a stale event for its token finds the slot empty or
    /// reused, which the reactor tolerates.
    pub fn close(mut self, stats: &mut Stats, held: &mut Held) {
        self.session.dropped(stats);
        self.spill.release(held);
    }

    /// Bytes this connection holds (see [`Spilled::held`]).
    pub fn held(&self) -> usize {
        self.spill.held()
    }

    /// Since when this connection has waited for its request head, if it still does.
    pub fn awaiting_head_since(&self) -> Option<Tick> {
        self.session.awaiting_head_since()
    }

    /// Gives way to a newcomer (see `Session::give_way`): the 503 gets one write; the
    /// caller then drops the connection at once, since its descriptor is what is needed.
    pub fn give_way(&mut self, token: Token, sh: &mut Shared<'_, T::Shared>) {
        debug!("connection {}: gave way to a newcomer", token.0);
        // Its half head is read now, so that the close after the 503 is a FIN.
        crate::stream::discard_unread(&mut self.socket);
        let mut io = Io {
            out: sh.cork.open(&[]),
            spill: &mut self.spill,
        };
        let given = self.session.give_way(&mut sh.env, &mut io);
        if let Err(e) = self.uncork(&[], sh) {
            debug!("connection {}: {e}", token.0);
        }
        if let Err(misuse) = given {
            debug!("connection {}: {}", token.0, Fault::Misuse(misuse));
        }
    }

    /// Asks an open connection to close with 1001 (server shutting down).
    pub fn go_away(&mut self, token: Token, sh: &mut Shared<'_, T::Shared>) -> Verdict {
        let was_open = self.session.is_open();
        let mut io = Io {
            out: sh.cork.open(&[]),
            spill: &mut self.spill,
        };
        let asked = self.session.go_away(&mut sh.env, &mut io);
        // Whatever was corked leaves now, even on a misuse: the cork is the reactor's.
        let result = self
            .uncork(&[], sh)
            .map_err(Fault::from)
            .and_then(|()| asked.map(|()| Turn::Idle).map_err(Fault::from));
        self.finish_turn(token, was_open, result, sh)
    }

    /// Handles readiness (or a retry): flush, read and process, flush again. Events are
    /// only hints: every step tries the syscall and accepts `WouldBlock`, so a spurious
    /// or stale event is harmless.
    /// `until_eof` says the peer's FIN may be queued behind the data (the event reported
    /// the read side closed, or this is a retry): then a short read does not end the
    /// turn, since no new edge will come for an EOF that arrived before the event.
    pub fn drive(
        &mut self,
        token: Token,
        buf: &mut [u8],
        until_eof: bool,
        sh: &mut Shared<'_, T::Shared>,
    ) -> Verdict {
        debug_assert!(sh.cork.is_empty());
        let was_open = self.session.is_open();
        let result = self
            .flush(sh)
            .map_err(Fault::from)
            .and_then(|()| self.read_turn(token, buf, until_eof, sh));
        self.finish_turn(token, was_open, result, sh)
    }

    /// Queues a chat message for this member (through its session and core, into its
    /// spilled output, the bytes shared with the room), to go out with everything else
    /// queued for it in one write ([`Connection::write_queued`]). Returns `None` when it
    /// is the first frame queued since that write, which the caller must then schedule;
    /// else what to do with the member.
    pub fn deliver(
        &mut self,
        token: Token,
        frame: &SharedFrame,
        sh: &mut Shared<'_, T::Shared>,
    ) -> Option<Verdict> {
        let unsent = self.spill.unsent();
        let mut queue = self.transport.queue(&mut self.spill, sh.layer);
        let admit = self
            .session
            .deliver(frame, unsent, sh.env.stats, &mut queue);
        match admit {
            Ok(Admit::Skip) => Some(Verdict::Keep),
            Ok(Admit::Drop) => {
                debug!(
                    "connection {}: dropped: {unsent} bytes behind its chat room",
                    token.0
                );
                Some(Verdict::Drop)
            }
            Ok(Admit::Queue) => {
                if self.queued {
                    return Some(Verdict::Keep);
                }
                self.queued = true;
                None
            }
            Err(misuse) => {
                debug!("connection {}: dropped: {}", token.0, Fault::Misuse(misuse));
                Some(Verdict::Drop)
            }
        }
    }

    /// Writes the chat frames queued for this member, with one `writev`.
    pub fn write_queued(&mut self, token: Token, sh: &mut Shared<'_, T::Shared>) -> Verdict {
        self.queued = false;
        let was_open = self.session.is_open();
        self.finish_turn(token, was_open, Ok(Turn::Idle), sh)
    }

    /// Acts on a due deadline, if any.
    pub fn handle_timeout(&mut self, token: Token, sh: &mut Shared<'_, T::Shared>) -> Verdict {
        let was_open = self.session.is_open();
        let mut io = Io {
            out: sh.cork.open(&[]),
            spill: &mut self.spill,
        };
        let due = self.session.handle_timeout(&mut sh.env, &mut io);
        match due {
            Ok(None) => return Verdict::Keep,
            Ok(Some(timeout)) => debug!("connection {}: {timeout:?}", token.0),
            Err(_) => {}
        }
        let result = self.uncork(&[], sh).map_err(Fault::from).and_then(|()| {
            Ok(match due? {
                Some(timeout) if timeout.ends() => Turn::Done,
                _ => Turn::Idle,
            })
        });
        self.finish_turn(token, was_open, result, sh)
    }

    /// Reads until the socket is drained, the turn's budget, or backpressure, and
    /// answers each read with one write.
    fn read_turn(
        &mut self,
        token: Token,
        buf: &mut [u8],
        until_eof: bool,
        sh: &mut Shared<'_, T::Shared>,
    ) -> Result<Turn, Fault> {
        let now = sh.env.now;
        for _ in 0..READS_PER_TURN {
            let unsent = self.spill.unsent();
            if !self.session.poll_read(unsent, sh.relaxed, &sh.env) {
                return Ok(Turn::Idle);
            }
            let inbound = self
                .transport
                .read(&mut self.socket, &mut self.spill, buf, sh.layer)?;
            match inbound {
                // EOF: the client is done sending.
                Inbound::Eof => {
                    let done = self.session.handle_eof(self.spill.unsent(), now)?;
                    return Ok(if done { Turn::Done } else { Turn::Idle });
                }
                Inbound::WouldBlock => return Ok(Turn::Idle),
                Inbound::Data {
                    start,
                    len,
                    kept,
                    fresh,
                    drained,
                    closed,
                } => {
                    sh.env.stats.bytes_in_total += fresh as u64;
                    let data = &mut buf[start..start + len];
                    let mut io = Io {
                        out: sh.cork.open(data),
                        spill: &mut self.spill,
                    };
                    // Bytes that carried no new plaintext (a TLS handshake, a partial
                    // record) give the session nothing to look at.
                    let handled = (len > kept).then(|| {
                        self.session
                            .handle_read(token.0, data, kept, &mut sh.env, &mut io)
                    });
                    // Whatever was corked leaves now, even on a misuse: the cork is the
                    // reactor's, and must be empty for the next connection.
                    self.uncork(data, sh)?;
                    let used = match handled {
                        Some(handled) => {
                            let Handled { consumed, ending } = handled?;
                            if let Some(ending) = ending {
                                debug!("connection {}: {ending}", token.0);
                            }
                            consumed
                        }
                        None => 0,
                    };
                    // Only what cannot be consumed yet is copied out, and released once
                    // it is: a partial head, frame header or control frame.
                    self.spill.keep(&data[used..]);
                    if closed {
                        let done = self.session.handle_eof(self.spill.unsent(), now)?;
                        return Ok(if done { Turn::Done } else { Turn::Idle });
                    }
                    // A read that did not fill the buffer drained the socket: under
                    // edge-triggered epoll, bytes arriving later raise a new edge, so a
                    // read now would only collect EAGAIN.
                    if drained && !until_eof {
                        return Ok(Turn::Idle);
                    }
                }
            }
        }
        Ok(Turn::Budget)
    }

    /// Writes what the last call corked (`input` is the buffer it was opened over).
    fn uncork(&mut self, input: &[u8], sh: &mut Shared<'_, T::Shared>) -> Result<(), Broken> {
        let out = Outbound {
            cork: sh.cork,
            input,
            fin_follows: self.session.shuts_down_when_flushed(),
        };
        let written = self
            .transport
            .write(out, &mut self.socket, &mut self.spill, sh.layer)?;
        sh.env.stats.bytes_out_total += written as u64;
        Ok(())
    }

    /// Ends a turn: keep the gauge in step, flush, let the core resume reading or
    /// finish closing, release idle buffers, keep the registered interest in step with
    /// pending output, and tell the reactor whether to come back without waiting for
    /// an event.
    fn finish_turn(
        &mut self,
        token: Token,
        was_open: bool,
        result: Result<Turn, Fault>,
        sh: &mut Shared<'_, T::Shared>,
    ) -> Verdict {
        self.session.track(was_open, sh.env.stats);
        let result = result.and_then(|turn| {
            if turn == Turn::Done {
                return Ok(Verdict::Drop);
            }
            self.flush(sh)?;
            let flushed = self.session.handle_flushed(self.spill.unsent(), sh.env.now);
            match flushed {
                Flushed::Done => return Ok(Verdict::Drop),
                Flushed::ShutdownWrite => self.socket.shutdown(Shutdown::Write)?,
                Flushed::Keep | Flushed::Resumed => {}
            }
            // Output beyond the high-water mark draws on the pool for messages in
            // progress, except a chat member's: a room's backlog is its own, bounded by
            // the slow-member limit, and must not take the echo's allowance.
            let pool_mark = (!self.session.is_chat()).then_some(HIGH_WATER);
            self.spill.settle(sh.held, pool_mark);
            let want = if self.spill.unsent() == 0 {
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
            Ok(if turn == Turn::Budget || flushed == Flushed::Resumed {
                Verdict::Again
            } else {
                Verdict::Keep
            })
        });
        match result {
            Ok(verdict) => verdict,
            Err(e) => {
                if let Fault::Tls(e) = &e {
                    sh.env.stats.handshake_failed(e.reason());
                }
                debug!("connection {}: dropped: {e}", token.0);
                Verdict::Drop
            }
        }
    }

    /// Writes spilled output until done or `WouldBlock`.
    fn flush(&mut self, sh: &mut Shared<'_, T::Shared>) -> io::Result<()> {
        sh.env.stats.bytes_out_total += self.spill.flush(&mut self.socket)? as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{encode_frame, OpCode};
    use crate::protocol::receiver::{Event, Receiver, ReceiverConfig, Role};
    use crate::server::config::Config;
    use crate::server::rooms::Rooms;
    use crate::server::stats::Stats;
    use std::time::{Duration, Instant};

    use mio::Poll;

    #[test]
    fn an_idle_connection_fits_the_memory_budget() {
        // At most 96 bytes of user memory per idle connection (the budget). An idle
        // connection is exactly its slab slot: this struct plus the slab's entry tag.
        // Growing it is a decision to take on purpose, with a new RSS measurement.
        assert_eq!(
            std::mem::size_of::<crate::protocol::receiver::Receiver>(),
            40
        );
        // mio's TcpStream carries an 8-byte selector id in debug builds only (and the
        // debug layout cannot fold the registered interest into the core's padding).
        let expected = if cfg!(debug_assertions) { 80 } else { 64 };
        assert_eq!(std::mem::size_of::<Connection>(), expected);
        // Over TLS, one pointer more: rustls' state, boxed (its size is measured in
        // docs/benchmarks.md).
        assert_eq!(
            std::mem::size_of::<Connection<super::super::secure::Secure>>(),
            expected + 8
        );
        assert_eq!(
            std::mem::size_of::<Session>(),
            48,
            "the relay fits the padding"
        );
        assert!(
            std::mem::size_of::<Spilled>() == 8,
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
            encode_frame(&mut sent, true, opcode, Some(key), body.len(), |p| {
                p.copy_from_slice(body)
            });
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
        let mut conn: Connection =
            Connection::new(socket, token, poll.registry(), 0, Plain).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut cork = Cork::default();
        let mut held = Held::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut sh = Shared {
                env: Env {
                    config: &config,
                    stats: &mut stats,
                    rooms: &mut rooms,
                    outbox: &mut outbox,
                    now: 0,
                    uptime_ms: 0,
                    view: None,
                },
                registry: poll.registry(),
                cork: &mut cork,
                held: &mut held,
                relaxed: true,
                layer: &mut (),
            };
            if conn.drive(token, &mut buf, true, &mut sh) == Verdict::Drop {
                break;
            }
            assert!(Instant::now() < deadline, "the connection never finished");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(conn);
        let received = reader.join().unwrap();
        let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(received.starts_with(b"HTTP/1.1 101 "));
        let mut frames = received[head_end..].to_vec();
        // The echo streams back as fragments of one message; decode them as a client.
        let config = ReceiverConfig {
            role: Role::Client,
            max_message_size: u64::MAX,
        };
        let (mut rx, mut pos, mut echoed, mut close) = (Receiver::default(), 0, Vec::new(), None);
        while pos < frames.len() {
            let (n, event) = rx.poll(&config, &mut frames[pos..]).unwrap();
            assert!(n > 0, "a partial frame at the end");
            pos += n;
            match event {
                Some(Event::Data(chunk)) => {
                    assert!(close.is_none(), "data after the Close");
                    assert_eq!(chunk.message, OpCode::Binary);
                    echoed.extend_from_slice(chunk.payload);
                }
                Some(Event::Close(body)) => close = Some(body.code.unwrap().0),
                None => {}
                Some(other) => panic!("{other:?}"),
            }
        }
        assert!(echoed == payload, "the echo, whole");
        assert_eq!(close, Some(1000), "Close 1000 reply");
        assert_eq!(pos, frames.len(), "nothing after the Close");
    }
}
