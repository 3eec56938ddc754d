//! The server's side of a connection in memory: the real sans-IO [`Session`] driven
//! step by step as the reactor drives it, with a client whose reading and sending the
//! steps choose, and no socket or poller anywhere. Fuzzing drives a whole connection
//! with it, and the timer benchmark sweeps a million idle sessions with it.

use std::collections::VecDeque;

use slab::Slab;

use crate::protocol::deadline::Tick;
use crate::protocol::server::Flushed;
use crate::protocol::transmit::Transmit;
use crate::server::connection::{READS_PER_TURN, READ_BUFFER_SIZE};
use crate::server::env::{Broadcast, Env};
use crate::server::relay::Gather;
use crate::server::rooms::Rooms;
use crate::server::session::{Admit, Session};
use crate::server::stats::Stats;
use crate::server::Config;

/// Turns per step at most: a session asks to be driven again only while it has input
/// left, and the harness's input is finite, so this is never reached.
const MAX_TURNS_PER_STEP: usize = 10_000;

/// What happens next to a harnessed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// These bytes arrive from the client (one read's worth).
    Input(&'a [u8]),
    /// The client ends its sending side.
    Eof,
    /// The client reads: it takes this many more bytes of output.
    Read(usize),
    /// This many seconds pass, and the reactor's timer sweep visits the connection.
    Advance(Tick),
}

/// What the reactor owns and lends to sessions.
#[derive(Debug)]
struct World {
    config: Config,
    stats: Stats,
    rooms: Rooms,
    outbox: Vec<Broadcast>,
    codec: Option<crate::protocol::deflate::Codec>,
    now: Tick,
}

impl World {
    fn new(config: Config) -> World {
        World {
            config,
            stats: Stats::default(),
            rooms: Rooms::default(),
            outbox: Vec::new(),
            codec: None,
            now: 0,
        }
    }

    fn env(&mut self) -> Env<'_> {
        Env {
            config: &self.config,
            stats: &mut self.stats,
            rooms: &mut self.rooms,
            outbox: &mut self.outbox,
            codec: &mut self.codec,
            now: self.now,
            uptime_ms: u64::from(self.now) * 1000,
            view: None,
        }
    }
}

/// The client end of the pipe: what it sends, what it has read, and how much more it
/// will take; output beyond that waits, unsent, as it would in a connection's spill.
#[derive(Debug, Default)]
struct Pipe {
    input: VecDeque<Vec<u8>>,
    eof: bool,
    kept: Vec<u8>,
    gathered: Vec<u8>,
    written: Vec<u8>,
    unsent: Vec<u8>,
    /// Bytes the client will still take.
    room: usize,
    /// Bytes written in the current call.
    counted: u64,
    write_shut: bool,
}

impl Pipe {
    /// Moves unsent output to the client as far as it takes it.
    fn flush(&mut self) -> u64 {
        let n = self.unsent.len().min(self.room);
        self.room -= n;
        self.written.extend(self.unsent.drain(..n));
        n as u64
    }
}

impl Transmit for Pipe {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        assert!(!self.write_shut, "output after our FIN");
        self.unsent.extend_from_slice(head);
        self.unsent.extend_from_slice(body);
        self.counted += self.flush();
    }
}

impl Gather for Pipe {
    fn gathered(&mut self) -> &mut Vec<u8> {
        &mut self.gathered
    }
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Idle,
    Again,
    Done,
}

/// One server connection driven step by step, as the reactor would drive it.
#[derive(Debug)]
pub struct Harness {
    world: World,
    session: Option<Session>,
    pipe: Pipe,
}

/// The harnessed connection's id (its slab key in a reactor).
const ID: usize = 0;

impl Harness {
    /// A freshly accepted connection whose client takes `room` bytes of output before
    /// it stops reading (`usize::MAX`: it reads everything).
    pub fn new(config: Config, room: usize) -> Harness {
        let mut world = World::new(config);
        world.stats.connections += 1;
        Harness {
            world,
            session: Some(Session::new(0)),
            pipe: Pipe {
                room,
                ..Pipe::default()
            },
        }
    }

    /// Applies one step; does nothing once the connection is dropped.
    pub fn step(&mut self, step: Step<'_>) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut turn = Turn::Again;
        match step {
            Step::Input(bytes) => {
                if !bytes.is_empty() && !self.pipe.eof {
                    self.pipe.input.push_back(bytes.to_vec());
                }
            }
            Step::Eof => self.pipe.eof = true,
            Step::Read(n) => self.pipe.room = self.pipe.room.saturating_add(n),
            Step::Advance(secs) => {
                self.world.now = self.world.now.saturating_add(secs);
                let was_open = session.is_open();
                let timeout = session
                    .handle_timeout(&mut self.world.env(), &mut self.pipe)
                    .expect("the harness keeps the call order");
                let done = matches!(timeout, Some(t) if t.ends());
                turn = self.finish(was_open, if done { Turn::Done } else { Turn::Idle });
            }
        }
        for _ in 0..MAX_TURNS_PER_STEP {
            match turn {
                Turn::Idle => return,
                Turn::Done => return self.drop_connection(),
                Turn::Again => turn = self.drive(),
            }
        }
    }

    /// One readiness turn: flush, read and process, fan out, finish.
    fn drive(&mut self) -> Turn {
        let session = self.session.as_mut().expect("not dropped");
        let was_open = session.is_open();
        self.pipe.counted += self.pipe.flush();
        let now = self.world.now;
        let mut turn = Turn::Again;
        for _ in 0..READS_PER_TURN {
            let unsent = self.pipe.unsent.len();
            if !session.poll_read(unsent, true, &self.world.env()) {
                turn = Turn::Idle;
                break;
            }
            let Some(mut chunk) = self.pipe.input.pop_front() else {
                let eof = self.pipe.eof
                    && session
                        .handle_eof(unsent, now)
                        .expect("the harness keeps the call order");
                turn = if eof { Turn::Done } else { Turn::Idle };
                break;
            };
            let room = READ_BUFFER_SIZE - self.pipe.kept.len();
            if chunk.len() > room {
                self.pipe.input.push_front(chunk.split_off(room));
            }
            self.world.stats.bytes_in_total += chunk.len() as u64;
            let mut data = std::mem::take(&mut self.pipe.kept);
            let scanned = data.len();
            data.extend_from_slice(&chunk);
            let used = session
                .handle_read(
                    ID,
                    &mut data,
                    scanned,
                    &mut self.world.env(),
                    &mut self.pipe,
                )
                .expect("the harness keeps the call order")
                .consumed;
            self.pipe.kept = data.split_off(used);
        }
        if self.fan_out() {
            return Turn::Done;
        }
        self.finish(was_open, turn)
    }

    /// Delivers completed chat messages to the room, which here is this one member;
    /// returns whether it is to be dropped.
    fn fan_out(&mut self) -> bool {
        for (sender, frame) in std::mem::take(&mut self.world.outbox) {
            if !self.world.rooms.room_of(sender).contains(&ID) {
                continue;
            }
            let session = self.session.as_mut().expect("not dropped");
            let unsent = self.pipe.unsent.len();
            let admit = session
                .deliver(&frame, unsent, &mut self.world.stats, &mut self.pipe)
                .expect("the harness keeps the call order");
            if admit == Admit::Drop {
                return true;
            }
        }
        false
    }

    /// What the connection's `finish_turn` does.
    fn finish(&mut self, was_open: bool, turn: Turn) -> Turn {
        let session = self.session.as_mut().expect("not dropped");
        session.track(was_open, &mut self.world.stats);
        self.pipe.counted += self.pipe.flush();
        self.world.stats.bytes_out_total += std::mem::take(&mut self.pipe.counted);
        if turn == Turn::Done {
            return Turn::Done;
        }
        match session.handle_flushed(self.pipe.unsent.len(), self.world.now) {
            Flushed::Done => Turn::Done,
            Flushed::Resumed => Turn::Again,
            Flushed::ShutdownWrite => {
                self.pipe.write_shut = true;
                turn
            }
            Flushed::Keep => turn,
        }
    }

    /// What the reactor's `close` does.
    fn drop_connection(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        self.world.rooms.leave(ID);
        session.dropped(&mut self.world.stats);
    }

    /// Whether the connection is still held (not dropped).
    pub fn is_alive(&self) -> bool {
        self.session.is_some()
    }

    /// Whether the connection is an open WebSocket (past the handshake, not closing).
    pub fn is_websocket(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_open)
    }

    /// Everything the client has been sent so far.
    pub fn written(&self) -> &[u8] {
        &self.pipe.written
    }

    /// The counters, as the reactor would keep them.
    pub fn stats(&self) -> &Stats {
        &self.world.stats
    }
}

/// Output a fleet session sends while idle (a heartbeat Ping): counted, then dropped.
#[derive(Debug, Default)]
struct Discard(u64);

impl Transmit for Discard {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        self.0 += (head.len() + body.len()) as u64;
    }
}

impl Gather for Discard {
    fn gathered(&mut self) -> &mut Vec<u8> {
        unreachable!("an idle session receives nothing")
    }
}

/// Many idle, open WebSocket sessions, for measuring the timer sweep: each is the real
/// server [`Session`], which is what the reactor's sweep visits in every connection.
#[derive(Debug)]
pub struct Fleet {
    world: World,
    sessions: Slab<Session>,
}

impl Fleet {
    /// Opens `n` sessions with a real handshake each.
    pub fn open(config: Config, n: usize, request: &[u8]) -> Result<Fleet, String> {
        let mut world = World::new(config);
        let mut sessions = Slab::with_capacity(n);
        let mut data = request.to_vec();
        for _ in 0..n {
            let entry = sessions.vacant_entry();
            let id = entry.key();
            let mut session = Session::new(world.now);
            let mut out = Discard::default();
            data.copy_from_slice(request);
            session
                .handle_read(id, &mut data, 0, &mut world.env(), &mut out)
                .map_err(|e| e.to_string())?;
            session.track(false, &mut world.stats);
            if !session.is_open() {
                return Err("the request did not open a WebSocket".into());
            }
            entry.insert(session);
        }
        Ok(Fleet { world, sessions })
    }

    /// Sets the clock to `now` and visits every session as the reactor's sweep does;
    /// returns how many had a deadline due (counted, not acted on further: the
    /// benchmark sweeps at times when none is, as in most of a server's sweeps).
    pub fn sweep(&mut self, now: Tick) -> usize {
        self.world.now = now;
        let mut env = self.world.env();
        let mut out = Discard::default();
        let mut due = 0;
        for (_, session) in self.sessions.iter_mut() {
            if session
                .handle_timeout(&mut env, &mut out)
                .is_ok_and(|due| due.is_some())
            {
                due += 1;
            }
        }
        self.world.stats.bytes_out_total += out.0;
        due
    }

    /// How many sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The counters, as the reactor would keep them.
    pub fn stats(&self) -> &Stats {
        &self.world.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{encode_frame, OpCode};

    const REQUEST: &[u8] = b"GET /chat?room=r HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_frame(
            &mut frame,
            fin,
            opcode,
            Some([9, 8, 7, 6]),
            payload.len(),
            |p| p.copy_from_slice(payload),
        );
        frame
    }

    fn after_head(written: &[u8]) -> &[u8] {
        let end = written.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        &written[end..]
    }

    #[test]
    fn a_chat_member_alone_gets_its_fragmented_message_back_whole() {
        let mut h = Harness::new(Config::from_args(&[]), usize::MAX);
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
        let mut h = Harness::new(config, 1024);
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
