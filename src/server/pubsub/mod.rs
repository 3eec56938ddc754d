//! Rooms past one process: the bus that carries chat messages between the processes
//! serving a room. With `--pubsub redis://HOST:PORT` it is Redis pub/sub (`redis`), so
//! rooms span workers and hosts; without it, `--workers N` relay to each other over
//! Unix sockets (`mesh`), so a room is whole on one host. Either way a process publishes
//! each of its members' messages once, fans it out to its own members at once, and fans
//! out what it receives by the same fair, corked path (`FanOut`). `resp` and `envelope`
//! are the sans-IO parts; `link` is the one stream's IO.

pub mod envelope;
pub mod hook;
pub mod link;
pub mod mesh;
pub mod redis;
pub mod resp;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::room_message::RoomMessage;
use crate::protocol::frame::SharedFrame;
use crate::server::env::Broadcast;
use crate::server::fan_out::FanOut;
use crate::server::rooms::Rooms;
use crate::server::stats::Stats;

/// Where the bus hands a message it received: the room's name and the message.
pub type Inbound<'a> = dyn FnMut(&str, SharedFrame) + 'a;

/// The bus's tokens count down from here; the slab's keys never come near.
const FIRST_TOKEN: usize = usize::MAX - 2;

/// How long the check at start waits for Redis.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The bus of one process, if it has one.
#[derive(Debug)]
pub enum Bus {
    /// Redis pub/sub: rooms across workers and hosts (boxed: one per process, and the
    /// larger of the two by far).
    Redis(Box<redis::Redis>),
    /// Unix sockets between the workers of one server: rooms across workers.
    Mesh(mesh::Mesh),
}

impl Bus {
    /// The bus the options ask for: Redis with `--pubsub`, the mesh for a worker of
    /// several, none for a lone process. `limit` bounds what it may queue.
    pub fn new(
        config: &crate::server::Config,
        limit: usize,
        registry: &Registry,
    ) -> io::Result<Option<Bus>> {
        let origin = random_id();
        if let Some(url) = &config.pubsub {
            let addr = resolve(url)?;
            let tokens = [Token(FIRST_TOKEN), Token(FIRST_TOKEN - 1)];
            return Ok(Some(Bus::Redis(Box::new(redis::Redis::new(
                addr, origin, limit, tokens, registry,
            )))));
        }
        match config.worker_id {
            Some(id) if config.workers > 1 => {
                let mesh = mesh::Mesh::new(id, config.workers, limit, FIRST_TOKEN, registry)?;
                Ok(Some(Bus::Mesh(mesh)))
            }
            _ => Ok(None),
        }
    }

    /// Publishes the chat messages a drive completed, each in its sender's room, before
    /// they are fanned out here.
    pub fn publish_all(
        &mut self,
        outbox: &[Broadcast],
        rooms: &Rooms,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        for (sender, message) in outbox {
            if let Some(room) = rooms.name_of(*sender) {
                // Other processes get the plain frame: each compresses for its own
                // members, if at all (see `RoomMessage::uncompressed`).
                self.publish(room, message.frame_for(None), registry, stats);
            }
        }
    }

    /// A reactor turn's share of the bus's work: (un)subscribe the rooms that came and
    /// went, reconnect when due, and queue what other processes sent for the members
    /// here, unless earlier messages still wait to be fanned out (then Redis, or the
    /// other worker, holds the rest until the next turn).
    pub fn turn(
        &mut self,
        now: Instant,
        rooms: &mut Rooms,
        fan_out: &mut FanOut,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        for (room, joined) in rooms.take_changes() {
            self.room_changed(&room, joined, registry, stats);
        }
        if self.next_wake().is_some_and(|at| now >= at) {
            self.tick(now, registry, stats);
        }
        let take = !fan_out.has_pending();
        self.pump(
            take,
            &mut |room, frame| {
                if let Some(key) = rooms.key_named(room) {
                    fan_out.push(key, RoomMessage::uncompressed(frame));
                }
            },
            registry,
            stats,
        );
    }

    /// Whether `token` is one of the bus's.
    pub fn owns(&self, token: Token) -> bool {
        match self {
            Bus::Redis(r) => r.owns(token),
            Bus::Mesh(m) => m.owns(token),
        }
    }

    /// An event on one of the bus's sockets.
    pub fn event(&mut self, token: Token, registry: &Registry, stats: &mut Stats) {
        match self {
            Bus::Redis(r) => r.event(token, registry, stats),
            Bus::Mesh(m) => m.event(token, registry, stats),
        }
    }

    /// A room got its first local member (`joined`) or lost its last.
    pub fn room_changed(
        &mut self,
        room: &str,
        joined: bool,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        match self {
            Bus::Redis(r) => r.room_changed(room, joined, registry, stats),
            Bus::Mesh(_) => {} // every worker gets every room's messages
        }
    }

    /// Sends a local member's chat message in `room` to the other processes.
    pub fn publish(
        &mut self,
        room: &str,
        frame: &SharedFrame,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        match self {
            Bus::Redis(r) => r.publish(room, frame, registry, stats),
            Bus::Mesh(m) => m.publish(room, frame, registry, stats),
        }
    }

    /// Reads and writes what is due; hands received messages to `inbound` only when
    /// `take_messages`.
    pub fn pump(
        &mut self,
        take_messages: bool,
        inbound: &mut Inbound<'_>,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        match self {
            Bus::Redis(r) => r.pump(take_messages, inbound, registry, stats),
            Bus::Mesh(m) => m.pump(take_messages, inbound, registry, stats),
        }
    }

    /// Whether there may be more to read at once (the reactor polls without sleeping).
    pub fn has_work(&self) -> bool {
        match self {
            Bus::Redis(r) => r.has_work(),
            Bus::Mesh(m) => m.has_work(),
        }
    }

    /// When [`Bus::tick`] has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        match self {
            Bus::Redis(r) => r.next_wake(),
            Bus::Mesh(m) => m.next_wake(),
        }
    }

    /// Reconnects what is due.
    pub fn tick(&mut self, now: Instant, registry: &Registry, stats: &mut Stats) {
        match self {
            Bus::Redis(r) => r.tick(now, registry, stats),
            Bus::Mesh(m) => m.tick(now, registry, stats),
        }
    }

    /// Bytes the bus holds (counted in the memory budget).
    pub fn held(&self) -> usize {
        match self {
            Bus::Redis(r) => r.held(),
            Bus::Mesh(m) => m.held(),
        }
    }
}

/// The address in `redis://HOST:PORT` (the port defaults to 6379).
pub fn resolve(url: &str) -> io::Result<SocketAddr> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--pubsub {url}: {why}"),
        )
    };
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| invalid("expected redis://HOST:PORT"))?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(invalid(
            "expected redis://HOST:PORT (no user, password or database)",
        ));
    }
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:6379")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| invalid(&e.to_string()))?
        .next()
        .ok_or_else(|| invalid("no address"))
}

/// Checks once, at start, that Redis answers a PING at `url`: a server that cannot
/// reach its bus says so and exits, rather than serving rooms cut in pieces.
pub fn probe(url: &str) -> io::Result<()> {
    let addr = resolve(url)?;
    let fail = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("--pubsub: Redis at {addr} does not answer: {e}"),
        )
    };
    let mut stream = std::net::TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(fail)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(fail)?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .map_err(fail)?;
    let mut out = Vec::new();
    resp::command(&mut out, &[b"PING"]);
    stream.write_all(&out).map_err(fail)?;
    let mut input = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).map_err(fail)?;
        if n == 0 {
            return Err(fail(io::ErrorKind::UnexpectedEof.into()));
        }
        input.extend_from_slice(&chunk[..n]);
        match resp::next_reply(&input) {
            Ok(None) => continue,
            Ok(Some((resp::Reply::Error(text), _))) => {
                let text = String::from_utf8_lossy(&input[text]).into_owned();
                return Err(fail(io::Error::other(text)));
            }
            Ok(Some(_)) => return Ok(()),
            Err(e) => return Err(fail(io::Error::other(e.0))),
        }
    }
}

/// A random id for this process, which its published messages carry.
fn random_id() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        // Unique enough among the processes of one machine.
        return u64::from(std::process::id()) << 32
            | u64::from(Instant::now().elapsed().subsec_nanos());
    }
    u64::from_ne_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_and_port() {
        assert_eq!(
            resolve("redis://127.0.0.1:7000").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(
            resolve("redis://127.0.0.1/").unwrap(),
            "127.0.0.1:6379".parse().unwrap()
        );
        assert_eq!(
            resolve("redis://[::1]:7").unwrap(),
            "[::1]:7".parse().unwrap()
        );
        for bad in [
            "127.0.0.1:7000",
            "redis://",
            "redis://u:p@h:1",
            "redis://h:1/2",
        ] {
            assert!(resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_probe_of_nothing_fails_clearly() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let e = probe(&format!("redis://127.0.0.1:{port}")).unwrap_err();
        assert!(e.to_string().contains("does not answer"), "{e}");
    }
}
