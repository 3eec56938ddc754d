//! The server's connection state machine in memory: the same [`Connection`] the
//! reactor runs, over an in-memory stream instead of a socket. Fuzzing drives a whole
//! connection with it (arbitrary input chunks, the client's reading, the clock), and
//! the timer benchmark sweeps a million idle connections with it, without a million
//! sockets.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use mio::event::Source;
use mio::{Interest, Poll, Registry, Token};
use slab::Slab;

use super::config::Config;
use super::connection::{Broadcast, Connection, Shared, Verdict};
use super::rooms::Rooms;
use super::stats::Stats;
use super::timers::Tick;
use super::transport::Transport;

/// The reactor's read buffer size (a connection reads into whatever it is lent).
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Drives per step at most: a connection asks to be driven again only while it has
/// input left, and the harness's input is finite, so this is never reached.
const MAX_DRIVES_PER_STEP: usize = 10_000;

/// An in-memory byte stream. Attached, it has a peer: input arrives in chunks (each
/// read returns at most one chunk, so chunk boundaries are read boundaries) and output
/// is kept up to the room the peer gives. Detached, it reads nothing and takes any
/// output, like an idle client that keeps up; it costs one pointer.
#[derive(Debug, Default)]
pub struct MemoryStream {
    pipe: Option<Box<Pipe>>,
}

#[derive(Debug, Default)]
struct Pipe {
    input: VecDeque<Vec<u8>>,
    eof: bool,
    written: Vec<u8>,
    /// Bytes the peer will still take before a write would block.
    room: usize,
    write_shut: bool,
}

impl MemoryStream {
    /// A stream whose peer takes `room` bytes of output before writes would block.
    pub fn attached(room: usize) -> MemoryStream {
        MemoryStream {
            pipe: Some(Box::new(Pipe {
                room,
                ..Pipe::default()
            })),
        }
    }

    fn pipe(&mut self) -> &mut Pipe {
        self.pipe.get_or_insert_with(Box::default)
    }
}

impl Read for MemoryStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let Some(chunk) = pipe.input.front_mut() else {
            return if pipe.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.drain(..n);
        if chunk.is_empty() {
            pipe.input.pop_front();
        }
        Ok(n)
    }
}

impl Write for MemoryStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(buf.len());
        };
        if pipe.write_shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(pipe.room);
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        pipe.room -= n;
        pipe.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Nothing to register: the harness calls the connection itself when something happens.
impl Source for MemoryStream {
    fn register(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn reregister(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn deregister(&mut self, _: &Registry) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for MemoryStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        if let Some(pipe) = self.pipe.as_mut() {
            pipe.write_shut = true;
        }
        Ok(())
    }
}

/// What happens next to a harnessed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// These bytes arrive from the client (one read's worth).
    Input(&'a [u8]),
    /// The client ends its sending side.
    Eof,
    /// The client reads: the stream takes this many more bytes of output.
    Read(usize),
    /// This many seconds pass, and the reactor's timer sweep visits the connection.
    Advance(Tick),
}

/// What the reactor owns and lends to connections (see `Shared`).
struct World {
    poll: Poll,
    config: Config,
    stats: Stats,
    rooms: Rooms,
    outbox: Vec<Broadcast>,
    now: Tick,
}

impl World {
    fn new(config: Config) -> io::Result<World> {
        Ok(World {
            poll: Poll::new()?,
            config,
            stats: Stats::default(),
            rooms: Rooms::default(),
            outbox: Vec::new(),
            now: 0,
        })
    }

    fn shared(&mut self) -> Shared<'_> {
        Shared {
            config: &self.config,
            stats: &mut self.stats,
            registry: self.poll.registry(),
            rooms: &mut self.rooms,
            outbox: &mut self.outbox,
            now: self.now,
            uptime_secs: u64::from(self.now),
        }
    }
}

/// One server connection driven step by step, as the reactor would drive it.
pub struct Harness {
    world: World,
    buf: Box<[u8]>,
    conn: Option<Connection<MemoryStream>>,
    /// What the connection wrote, kept when it is dropped.
    written: Vec<u8>,
}

const TOKEN: Token = Token(0);

impl Harness {
    /// A freshly accepted connection whose client takes `room` bytes of output before
    /// it stops reading (`usize::MAX`: it reads everything).
    pub fn new(config: Config, room: usize) -> io::Result<Harness> {
        let mut world = World::new(config)?;
        let conn = Connection::new(
            MemoryStream::attached(room),
            TOKEN,
            world.poll.registry(),
            0,
        )?;
        world.stats.connections += 1;
        Ok(Harness {
            world,
            buf: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
            conn: Some(conn),
            written: Vec::new(),
        })
    }

    /// Applies one step; does nothing once the connection is dropped.
    pub fn step(&mut self, step: Step) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let pipe = conn.transport_mut().pipe();
        let mut verdict = match step {
            Step::Input(bytes) => {
                if !bytes.is_empty() && !pipe.eof {
                    pipe.input.push_back(bytes.to_vec());
                }
                Verdict::Again
            }
            Step::Eof => {
                pipe.eof = true;
                Verdict::Again
            }
            Step::Read(n) => {
                pipe.room = pipe.room.saturating_add(n);
                Verdict::Again
            }
            Step::Advance(secs) => {
                self.world.now = self.world.now.saturating_add(secs);
                conn.on_tick(TOKEN, &mut self.world.shared())
            }
        };
        for _ in 0..MAX_DRIVES_PER_STEP {
            verdict = match verdict {
                Verdict::Keep => break,
                Verdict::Drop => {
                    self.drop_connection();
                    return;
                }
                Verdict::Again => {
                    let conn = self.conn.as_mut().expect("not dropped");
                    let verdict = conn.drive(TOKEN, &mut self.buf, &mut self.world.shared());
                    match (verdict, self.fan_out()) {
                        (Verdict::Drop, _) | (_, Verdict::Drop) => Verdict::Drop,
                        (Verdict::Again, _) | (_, Verdict::Again) => Verdict::Again,
                        _ => Verdict::Keep,
                    }
                }
            };
        }
    }

    /// Delivers completed chat messages to the room, which here is this one member.
    fn fan_out(&mut self) -> Verdict {
        let mut verdict = Verdict::Keep;
        for (sender, frame) in std::mem::take(&mut self.world.outbox) {
            let conn = self.conn.as_mut().expect("not dropped");
            if self.world.rooms.room_of(sender).contains(&TOKEN) && verdict != Verdict::Drop {
                verdict = match conn.deliver(TOKEN, &frame, &mut self.world.shared()) {
                    Verdict::Keep => verdict,
                    other => other,
                };
            }
        }
        verdict
    }

    /// What the reactor's `close` does.
    fn drop_connection(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        conn.deregister(self.world.poll.registry());
        self.world.rooms.leave(TOKEN);
        if conn.is_websocket() {
            self.world.stats.websockets -= 1;
            self.world.stats.closed_with(1006);
        }
        self.world.stats.connections -= 1;
        self.written = std::mem::take(&mut conn.transport_mut().pipe().written);
    }

    /// Whether the connection is still held (not dropped).
    pub fn is_alive(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether the connection is an open WebSocket (past the handshake, not closing).
    pub fn is_websocket(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_websocket())
    }

    /// Everything the connection has written so far.
    pub fn written(&mut self) -> &[u8] {
        match self.conn.as_mut() {
            Some(conn) => &conn.transport_mut().pipe().written,
            None => &self.written,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.world.stats
    }
}

/// Many idle, open WebSocket connections, for measuring the timer sweep: each is the
/// real `Connection` over a detached [`MemoryStream`], which is one pointer where a
/// socket is one descriptor, so a connection here is the size of one in the server.
pub struct Fleet {
    world: World,
    conns: Slab<Connection<MemoryStream>>,
}

impl Fleet {
    /// Opens `n` connections with a real handshake each, then detaches their streams.
    pub fn open(config: Config, n: usize, request: &[u8]) -> io::Result<Fleet> {
        let mut world = World::new(config)?;
        let mut conns = Slab::with_capacity(n);
        let mut buf = vec![0; READ_BUFFER_SIZE];
        for _ in 0..n {
            let entry = conns.vacant_entry();
            let token = Token(entry.key());
            let mut stream = MemoryStream::attached(usize::MAX);
            stream.pipe().input.push_back(request.to_vec());
            let mut conn = Connection::new(stream, token, world.poll.registry(), world.now)?;
            conn.drive(token, &mut buf, &mut world.shared());
            if !conn.is_websocket() {
                return Err(io::Error::other("the request did not open a WebSocket"));
            }
            conn.transport_mut().pipe = None;
            entry.insert(conn);
        }
        Ok(Fleet { world, conns })
    }

    /// Sets the clock to `now` and visits every connection as the reactor's sweep does;
    /// returns how many asked to be dropped or driven again (counted, not acted on: the
    /// benchmark sweeps at times when no deadline is due, as in most of a server's
    /// sweeps).
    pub fn sweep(&mut self, now: Tick) -> usize {
        self.world.now = now;
        let mut sh = self.world.shared();
        let mut due = 0;
        for (i, conn) in self.conns.iter_mut() {
            if conn.on_tick(Token(i), &mut sh) != Verdict::Keep {
                due += 1;
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub fn stats(&self) -> &Stats {
        &self.world.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{apply_mask, FrameHeader, OpCode};

    const REQUEST: &[u8] = b"GET /chat?room=r HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mask = [9, 8, 7, 6];
        let header = FrameHeader {
            fin,
            opcode,
            mask: Some(mask),
            payload_len: payload.len() as u64,
        };
        let (h, n) = header.encode();
        let mut frame = h[..n].to_vec();
        let start = frame.len();
        frame.extend_from_slice(payload);
        apply_mask(&mut frame[start..], mask, 0);
        frame
    }

    fn after_head(written: &[u8]) -> &[u8] {
        let end = written.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        &written[end..]
    }

    #[test]
    fn a_chat_member_alone_gets_its_fragmented_message_back_whole() {
        let mut h = Harness::new(Config::from_args(&[]), usize::MAX).unwrap();
        h.step(Step::Input(&REQUEST[..10]));
        h.step(Step::Input(&REQUEST[10..]));
        assert!(h.is_websocket());
        h.step(Step::Input(&client_frame(false, OpCode::Text, b"hel")));
        h.step(Step::Input(&client_frame(
            true,
            OpCode::Continuation,
            b"lo",
        )));
        assert_eq!(
            after_head(h.written()),
            b"\x81\x05hello",
            "one whole text frame"
        );
        assert_eq!(h.stats().messages_out_total, 1);
        h.step(Step::Input(&client_frame(
            true,
            OpCode::Close,
            &[0x03, 0xE8],
        )));
        h.step(Step::Eof);
        assert!(!h.is_alive());
        assert!(h.written().ends_with(&[0x88, 0x02, 0x03, 0xE8]));
        assert_eq!(h.stats().closes_by_code[&1000], 1);
    }

    #[test]
    fn a_paused_client_that_does_not_drain_is_dropped_at_the_send_timeout() {
        let config = Config::from_args(&["--send-timeout", "3"]);
        let mut h = Harness::new(config, 1024).unwrap();
        h.step(Step::Input(&REQUEST.replace("/chat?room=r", "/echo")));
        let frame = client_frame(true, OpCode::Binary, &[7; 60 * 1024]);
        for _ in 0..10 {
            h.step(Step::Input(&frame));
        }
        assert!(h.is_websocket());
        let paused_at = h.stats().bytes_in_total;
        h.step(Step::Input(&frame));
        assert_eq!(h.stats().bytes_in_total, paused_at, "reading is paused");
        // Draining below the low-water mark resumes reading and restarts the clock.
        h.step(Step::Advance(2));
        h.step(Step::Read(1 << 20));
        assert!(h.stats().bytes_in_total > paused_at, "reading resumed");
        for _ in 0..20 {
            h.step(Step::Input(&frame));
        }
        h.step(Step::Advance(2));
        assert!(h.is_alive(), "paused again at 2 s");
        // A trickle of output taken is not draining.
        h.step(Step::Read(100));
        h.step(Step::Advance(1));
        assert!(!h.is_alive(), "3 s paused without draining");
        assert_eq!(h.stats().closes_by_code[&1006], 1);
        assert_eq!(h.stats().timeouts_total, 1);
    }

    #[test]
    fn a_fleet_sweep_finds_nothing_due_until_the_ping_interval() {
        let config = Config::from_args(&["--ping-interval", "30"]);
        let request = REQUEST.replace("/chat?room=r", "/");
        let mut fleet = Fleet::open(config, 100, &request).unwrap();
        assert_eq!(fleet.len(), 100);
        assert_eq!(fleet.stats().websockets, 100);
        assert_eq!(fleet.sweep(29), 0);
        let before = fleet.stats().bytes_out_total;
        fleet.sweep(30);
        assert_eq!(
            fleet.stats().bytes_out_total - before,
            200,
            "a 2-byte Ping each"
        );
    }

    trait Replace {
        fn replace(&self, from: &str, to: &str) -> Vec<u8>;
    }

    impl Replace for [u8] {
        fn replace(&self, from: &str, to: &str) -> Vec<u8> {
            String::from_utf8_lossy(self).replace(from, to).into_bytes()
        }
    }
}
