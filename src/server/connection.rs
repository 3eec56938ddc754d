//! One client connection's IO: its socket, the interest registered for it, and the
//! bytes it holds only while it must ([`Spilled`]). What the bytes mean is decided by
//! the sans-IO [`Session`] (the protocol core, routes, relay and counters); this file
//! reads, writes and registers, and never parses bytes itself.
//!
//! Memory (DESIGN.md budget): an idle connection is this struct and nothing else.
//! Reading pauses while unsent output is above the protocol's high-water mark, so a
//! client that does not read cannot grow our memory.

use std::io;
use std::net::Shutdown;
use std::rc::Rc;

use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::relay::Gather;
use super::session::{Admit, Env, Session};
use super::stats::Stats;
use crate::protocol::deadline::Tick;
use crate::protocol::server::Flushed;
use crate::stream::{Link, Received, Spilled};

/// Reads per readiness event before yielding to other connections (fairness); with a
/// 64 KiB buffer that is 1 MiB per turn.
const READS_PER_TURN: usize = 16;

/// What the reactor lends a connection while it runs.
pub struct Shared<'a> {
    pub env: Env<'a>,
    pub registry: &'a Registry,
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

/// Why a turn ended, which decides what the reactor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Nothing to do until the next readiness event.
    Idle,
    /// The read budget ran out with input possibly left.
    Budget,
    /// Reading is paused because unsent output passed the high-water mark.
    Paused,
    /// The connection is finished.
    Done,
}

/// The connection's output for one call into its session.
type Io<'c> = Link<'c, TcpStream>;

impl Gather for Io<'_> {
    fn gathered(&mut self) -> &mut Vec<u8> {
        &mut self.spill().gathered
    }

    fn failed(&self) -> bool {
        Link::failed(self)
    }
}

/// Ends a call into the session: counts what went out and hands over the first error.
fn finish(io: Io, env: &mut Env) -> io::Result<()> {
    env.stats.bytes_out_total += io.finish()?;
    Ok(())
}

/// One client connection over a TCP socket.
#[derive(Debug)]
pub struct Connection {
    socket: TcpStream,
    /// The interest currently registered, so reregistration happens only on change.
    registered: Interest,
    spill: Spilled,
    session: Session,
}

impl Connection {
    /// Registers an accepted socket for reading.
    pub fn new(
        mut socket: TcpStream,
        token: Token,
        registry: &Registry,
        now: Tick,
    ) -> io::Result<Self> {
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(Connection {
            socket,
            registered: Interest::READABLE,
            spill: Spilled::default(),
            session: Session::new(now),
        })
    }

    pub fn is_websocket(&self) -> bool {
        self.session.is_open()
    }

    /// Deregisters the socket before it is dropped (and closed), and counts the drop.
    pub fn close(mut self, registry: &Registry, stats: &mut Stats) {
        // A failure here means the descriptor is already gone from the epoll set.
        let _ = registry.deregister(&mut self.socket);
        self.session.dropped(stats);
    }

    /// Asks an open connection to close with 1001 (server shutting down).
    pub fn go_away(&mut self, token: Token, sh: &mut Shared) -> Verdict {
        let was_open = self.session.is_open();
        let mut io = Io::new(&mut self.socket, &mut self.spill);
        self.session.go_away(&mut sh.env, &mut io);
        let result = finish(io, &mut sh.env).map(|()| Turn::Idle);
        self.finish_turn(token, was_open, result, sh)
    }

    /// Handles readiness (or a retry): flush, read and process, flush again. Events are
    /// only hints: every step tries the syscall and accepts `WouldBlock`, so a spurious
    /// or stale event is harmless.
    pub fn drive(&mut self, token: Token, buf: &mut [u8], sh: &mut Shared) -> Verdict {
        let was_open = self.session.is_open();
        let result = self.flush(sh).and_then(|()| self.read_turn(token, buf, sh));
        self.finish_turn(token, was_open, result, sh)
    }

    /// Queues a chat message for this member (the reactor's fan-out).
    pub fn deliver(&mut self, token: Token, frame: &Rc<[u8]>, sh: &mut Shared) -> Verdict {
        match self
            .session
            .admits(token, self.spill.unsent(), sh.env.stats)
        {
            Admit::Skip => Verdict::Keep,
            Admit::Drop => Verdict::Drop,
            Admit::Queue => {
                let result = self.spill.write_shared(&mut self.socket, frame).map(|n| {
                    sh.env.stats.bytes_out_total += n as u64;
                    Turn::Idle
                });
                self.finish_turn(token, true, result, sh)
            }
        }
    }

    /// Acts on a due deadline, if any.
    pub fn on_tick(&mut self, token: Token, sh: &mut Shared) -> Verdict {
        let was_open = self.session.is_open();
        let mut io = Io::new(&mut self.socket, &mut self.spill);
        let Some(timeout) = self.session.on_tick(token, &mut sh.env, &mut io) else {
            return Verdict::Keep;
        };
        let ends = timeout.ends();
        let result = finish(io, &mut sh.env).map(|()| if ends { Turn::Done } else { Turn::Idle });
        self.finish_turn(token, was_open, result, sh)
    }

    /// Reads until `WouldBlock`, the turn's budget, or backpressure.
    fn read_turn(&mut self, token: Token, buf: &mut [u8], sh: &mut Shared) -> io::Result<Turn> {
        let now = sh.env.now;
        for _ in 0..READS_PER_TURN {
            if self
                .session
                .core()
                .pause_if_backed_up(self.spill.unsent(), now)
            {
                return Ok(Turn::Paused);
            }
            if !self.session.core().wants_read() {
                return Ok(Turn::Idle);
            }
            match self.spill.read(&mut self.socket, buf)? {
                // EOF: the client is done sending.
                Received::Eof if self.session.core().on_eof(self.spill.unsent(), now) => {
                    return Ok(Turn::Done)
                }
                Received::Eof | Received::WouldBlock => return Ok(Turn::Idle),
                Received::Data { len, fresh } => {
                    sh.env.stats.bytes_in_total += fresh as u64;
                    self.session.core().on_input(now);
                    let data = &mut buf[..len];
                    let mut io = Io::new(&mut self.socket, &mut self.spill);
                    let used = self
                        .session
                        .process(token, data, len - fresh, &mut sh.env, &mut io);
                    finish(io, &mut sh.env)?;
                    // Only what cannot be consumed yet is copied out, and released once
                    // it is: a partial head, frame header or control frame.
                    self.spill.keep(&data[used..]);
                }
            }
        }
        Ok(Turn::Budget)
    }

    /// Ends a turn: keep the gauge in step, flush, let the core resume reading or
    /// finish closing, release idle buffers, keep the registered interest in step with
    /// pending output, and tell the reactor whether to come back without waiting for
    /// an event.
    fn finish_turn(
        &mut self,
        token: Token,
        was_open: bool,
        result: io::Result<Turn>,
        sh: &mut Shared,
    ) -> Verdict {
        self.session.track(was_open, sh.env.stats);
        let result = result.and_then(|turn| {
            if turn == Turn::Done {
                return Ok(Verdict::Drop);
            }
            self.flush(sh)?;
            let flushed = self
                .session
                .core()
                .on_flushed(self.spill.unsent(), sh.env.now);
            match flushed {
                Flushed::Done => return Ok(Verdict::Drop),
                Flushed::ShutdownWrite => self.socket.shutdown(Shutdown::Write)?,
                Flushed::Keep | Flushed::Resumed => {}
            }
            self.spill.tidy();
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
                debug!("connection {}: dropped: {e}", token.0);
                Verdict::Drop
            }
        }
    }

    /// Writes spilled output until done or `WouldBlock`.
    fn flush(&mut self, sh: &mut Shared) -> io::Result<()> {
        sh.env.stats.bytes_out_total += self.spill.flush(&mut self.socket)? as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{encode_frame, FrameHeader, OpCode};
    use crate::server::config::Config;
    use crate::server::rooms::Rooms;
    use crate::server::stats::Stats;
    use std::time::{Duration, Instant};

    use mio::Poll;

    #[test]
    fn an_idle_connection_fits_the_memory_budget() {
        // DESIGN.md: at most 96 bytes of user memory per idle connection. An idle
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
        let mut conn: Connection = Connection::new(socket, token, poll.registry(), 0).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
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
