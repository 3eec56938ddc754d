//! Rooms whole across `--workers N` without Redis: every worker relays its members' chat
//! messages to every other worker over Unix stream sockets, and each fans out to its own
//! members what it receives. Chosen over handing a connection to its room's worker
//! (SCM_RIGHTS) because it keeps the kernel's SO_REUSEPORT spread and lets a room grow
//! past one process's descriptors; the price is one copy of each message per other
//! worker, over a local socket (measured in docs/benchmarks.md).
//!
//! Worker `w` listens on the abstract Unix address `wsreactor.PPID.w` (PPID: the
//! supervisor's pid, so servers on one host never meet; abstract, so nothing is left in
//! the file system), and connects to every other worker's address for what it sends: a
//! stream per ordered pair, so each worker's messages reach each other worker in the
//! order they were sent. A worker that is not up yet, or restarted, is connected to
//! again with a short backoff; the supervisor says "listening on" only once every
//! worker's streams are up, so a room is whole from the first client on. Each
//! record: length (4 bytes, big-endian, of what follows), the room's name's length (2
//! bytes) and name, then the message's envelope (`envelope.rs`).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::envelope;
use super::link::Link;
use super::Inbound;
use crate::protocol::frame::SharedFrame;
use crate::server::stats::Stats;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// A local connect costs microseconds: a worker that is not up yet (they start
/// together) or restarting is tried again soon.
const BACKOFF_MAX: Duration = Duration::from_millis(250);
/// Incoming streams at most (workers restart, each time connecting anew).
const MAX_INCOMING: usize = 1024;

/// A stream to one other worker, and when to try again when it has none.
#[derive(Debug)]
struct Peer {
    id: u32,
    link: Link<UnixStream>,
    retry: Option<Instant>,
    backoff: Duration,
}

/// One worker's streams to and from the others.
#[derive(Debug)]
pub struct Mesh {
    listener: UnixListener,
    first_token: usize,
    workers: u32,
    supervisor: u32,
    peers: Vec<Peer>,
    incoming: Slab<Link<UnixStream>>,
    /// Most bytes queued for one peer; past it messages to it are dropped (counted).
    limit: usize,
    scratch: Vec<u8>,
}

fn address(supervisor: u32, worker: u32) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(format!("wsreactor.{supervisor}.{worker}"))
}

impl Mesh {
    /// Worker `id` of `workers`: listens now, connects to the others as they come up.
    pub fn new(
        id: u32,
        workers: u32,
        limit: usize,
        first_token: usize,
        registry: &Registry,
    ) -> io::Result<Mesh> {
        // SAFETY: getppid has no preconditions.
        let supervisor = unsafe { libc::getppid() } as u32;
        let mut listener = UnixListener::bind_addr(&address(supervisor, id)?)?;
        registry.register(&mut listener, Token(first_token), Interest::READABLE)?;
        let peers = (0..workers)
            .filter(|&w| w != id)
            .map(|w| Peer {
                id: w,
                link: Link::new(Token(first_token - 1 - w as usize)),
                retry: Some(Instant::now()),
                backoff: BACKOFF_MIN,
            })
            .collect();
        Ok(Mesh {
            listener,
            first_token,
            workers,
            supervisor,
            peers,
            incoming: Slab::new(),
            limit: limit / (workers.max(2) as usize - 1),
            scratch: Vec::new(),
        })
    }

    fn incoming_base(&self) -> usize {
        self.first_token - 1 - self.workers as usize
    }

    /// Whether `token` is one of the mesh's.
    pub fn owns(&self, token: Token) -> bool {
        (self.incoming_base() - MAX_INCOMING..=self.first_token).contains(&token.0)
    }

    /// An event on the listener, a peer's stream, or an incoming stream.
    pub fn event(&mut self, token: Token, registry: &Registry, stats: &mut Stats) {
        if token.0 == self.first_token {
            return self.accept(registry);
        }
        if token.0 > self.incoming_base() {
            let id = (self.first_token - 1 - token.0) as u32;
            if let Some(i) = self.peers.iter().position(|p| p.id == id) {
                // A peer never writes back: anything readable is its end of stream (it
                // exited), noticed now rather than by the next message's failed write.
                let link = &mut self.peers[i].link;
                let result = (link.ready(|_| Ok(true)))
                    .and_then(|_| link.flush())
                    .and_then(|_| link.read().map(drop));
                if let Err(e) = result {
                    self.lost_peer(i, e, registry, stats);
                }
            }
            return;
        }
        if let Some(link) = self.incoming.get_mut(self.incoming_base() - token.0) {
            let _ = link.ready(|_| Ok(true));
        }
    }

    fn accept(&mut self, registry: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.incoming.len() >= MAX_INCOMING {
                        continue; // dropped: a worker restarting in a loop
                    }
                    let base = self.incoming_base();
                    let entry = self.incoming.vacant_entry();
                    let mut link = Link::new(Token(base - entry.key()));
                    if link.attach(stream, true, registry).is_ok() {
                        entry.insert(link);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    debug!("mesh: accept: {e}");
                    return;
                }
            }
        }
    }

    fn lost_peer(&mut self, i: usize, e: io::Error, registry: &Registry, stats: &mut Stats) {
        let peer = &mut self.peers[i];
        debug!("mesh: lost worker {}: {e}", peer.id);
        if peer.link.queued() > 0 {
            stats.pubsub_unpublished_total += 1;
        }
        peer.link.detach(registry);
        peer.retry = Some(Instant::now() + peer.backoff);
        peer.backoff = (peer.backoff * 2).min(BACKOFF_MAX);
        stats.pubsub_up = 0;
    }

    /// Sends a local member's message in `room` to every other worker.
    pub fn publish(
        &mut self,
        room: &str,
        frame: &SharedFrame,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        let Ok(room_len) = u16::try_from(room.len()) else {
            return;
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(&[0; 4]);
        self.scratch.extend_from_slice(&room_len.to_be_bytes());
        self.scratch.extend_from_slice(room.as_bytes());
        if !envelope::seal(0, frame, &mut self.scratch) {
            return;
        }
        let len = (self.scratch.len() - 4) as u32;
        self.scratch[..4].copy_from_slice(&len.to_be_bytes());
        stats.pubsub_published_total += 1;
        for i in 0..self.peers.len() {
            let peer = &mut self.peers[i];
            if !peer.link.is_connected() || peer.link.queued() >= self.limit {
                stats.pubsub_unpublished_total += 1;
                continue;
            }
            peer.link.output().extend_from_slice(&self.scratch);
            if let Err(e) = peer.link.flush() {
                self.lost_peer(i, e, registry, stats);
            }
        }
        stats.pubsub_queued_bytes = self.peers.iter().map(|p| p.link.queued() as u64).sum();
    }

    /// Reads what other workers sent, when `take_messages`; drops closed streams.
    pub fn pump(
        &mut self,
        take_messages: bool,
        inbound: &mut Inbound<'_>,
        registry: &Registry,
        stats: &mut Stats,
    ) {
        if !take_messages {
            return;
        }
        let mut closed = Vec::new();
        for (key, link) in self.incoming.iter_mut() {
            if !link.may_read() {
                continue;
            }
            let result = link.read().and_then(|_| {
                let used = records(&link.input, |room, published| {
                    stats.pubsub_received_total += 1;
                    inbound(room, envelope::open(published).frame());
                })?;
                link.consume(used);
                Ok(())
            });
            if let Err(e) = result {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    warn!("mesh: dropping a stream from another worker: {e}");
                }
                closed.push(key);
            }
        }
        for key in closed {
            self.incoming.remove(key).detach(registry);
        }
    }

    /// Whether an incoming stream may have more to read at once.
    pub fn has_work(&self) -> bool {
        self.incoming.iter().any(|(_, link)| link.may_read())
    }

    /// When the next peer is due to be connected to.
    pub fn next_wake(&self) -> Option<Instant> {
        self.peers.iter().filter_map(|p| p.retry).min()
    }

    /// Connects to the peers that are due.
    pub fn tick(&mut self, now: Instant, registry: &Registry, stats: &mut Stats) {
        for i in 0..self.peers.len() {
            let peer = &mut self.peers[i];
            if peer.retry.is_none_or(|at| now < at) {
                continue;
            }
            peer.retry = None;
            let attached = address(self.supervisor, peer.id)
                .and_then(|addr| UnixStream::connect_addr(&addr))
                .and_then(|stream| peer.link.attach(stream, true, registry));
            match attached {
                Ok(()) => peer.backoff = BACKOFF_MIN,
                Err(e) => self.lost_peer(i, e, registry, stats),
            }
        }
        let up = self.peers.iter().all(|p| p.link.is_connected());
        stats.pubsub_up = u64::from(up);
    }

    /// Bytes the mesh holds: what waits to be sent or read.
    pub fn held(&self) -> usize {
        let out: usize = self.peers.iter().map(|p| p.link.queued()).sum();
        let input: usize = self.incoming.iter().map(|(_, l)| l.input.len()).sum();
        out + input
    }
}

/// Hands each whole record at the front of `input` to `each`; returns the bytes used.
/// A record that cannot be one of ours is an error (the stream is dropped).
fn records(input: &[u8], mut each: impl FnMut(&str, &[u8])) -> io::Result<usize> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut used = 0;
    loop {
        let rest = &input[used..];
        let Some(len) = rest.get(..4) else {
            return Ok(used);
        };
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let Some(record) = rest.get(4..4 + len) else {
            return Ok(used);
        };
        let room_len = record.get(..2).ok_or_else(|| bad("short record"))?;
        let room_len = u16::from_be_bytes(room_len.try_into().expect("2 bytes")) as usize;
        let room = record
            .get(2..2 + room_len)
            .ok_or_else(|| bad("short record"))?;
        let room = std::str::from_utf8(room).map_err(|_| bad("room name not UTF-8"))?;
        each(room, &record[2 + room_len..]);
        used += 4 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::OpCode;

    fn record(room: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0; 4];
        out.extend_from_slice(&(room.len() as u16).to_be_bytes());
        out.extend_from_slice(room.as_bytes());
        envelope::seal(0, &SharedFrame::new(OpCode::Text, payload), &mut out);
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out
    }

    #[test]
    fn records_are_read_whole_in_any_split() {
        let mut wire = record("a", b"one");
        wire.extend(record("bee", b"two"));
        let first = record("a", b"one").len();
        for cut in 0..=wire.len() {
            let mut got = Vec::new();
            let used = records(&wire[..cut], |room, p| {
                got.push((room.to_owned(), envelope::open(p).payload.to_vec()))
            })
            .unwrap();
            let want = if cut == wire.len() {
                2
            } else {
                usize::from(cut >= first)
            };
            assert_eq!(got.len(), want, "cut {cut}");
            assert_eq!(used, [0, first, wire.len()][want]);
        }
    }

    #[test]
    fn a_record_that_lies_about_its_room_is_refused() {
        let wire = [0, 0, 0, 3, 0, 9, b'x'];
        assert!(records(&wire, |_, _| {}).is_err());
        let wire = [0, 0, 0, 3, 0, 1, 0xff];
        assert!(records(&wire, |_, _| {}).is_err());
    }
}
