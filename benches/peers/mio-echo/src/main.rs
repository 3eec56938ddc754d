//! The minimal WebSocket echo `scripts/peers.sh` measures every server against: what
//! the kernel's work costs with next to nothing on top. One mio loop on one thread;
//! one loop-wide 256 KiB read buffer; per connection only its socket, a frame's
//! remaining length and mask, and bytes it could not handle yet.
//!
//! On each readable event it reads until a short read (a short read means the socket is
//! drained: edge-triggered epoll raises a new edge for later data), unmasks each frame's
//! payload in place in the read buffer and answers everything that read brought with one
//! `writev`: the reply headers, and the payloads straight from the read buffer. Frames
//! are streamed through, never gathered: a frame's header goes out as soon as it is
//! parsed and its payload as it arrives, so a 64 KiB message costs no copy in user space
//! (small payloads are copied beside their header, to keep the `writev` short).
//!
//! It validates nothing (no UTF-8, no opcode or fragmentation rules, no limits): a
//! yardstick, not a server. Pings get pongs, pongs are dropped, a Close is echoed and
//! then the server closes the connection.
//!
//! `peer-mio-echo [--listen 127.0.0.1:PORT]` (default port 0: any free one); it prints
//! `listening on ADDR` on stderr and refuses any address outside 127.0.0.0/8.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sha1::{Digest, Sha1};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
/// Larger than a 64 KiB message with its header, so that one arrives in one read.
const READ_BUF: usize = 256 * 1024;
/// Payloads up to this size are copied beside their header; larger ones are sent from
/// the read buffer (this keeps a read of many small frames to a few iovecs).
const COPY_BELOW: usize = 512;
/// A request head longer than this ends the connection.
const MAX_HEAD: usize = 8 * 1024;
/// iovecs per `writev` (the kernel takes 1024; a read yields far fewer segments).
const MAX_IOV: usize = 512;

#[derive(Clone, Copy)]
enum Phase {
    Handshake,
    /// Between frames (`remaining == 0`) or inside one: `remaining` payload bytes to
    /// come, unmasked with `mask` from `mask_pos`; `echo`: whether they are sent back.
    Frames {
        remaining: u64,
        mask: [u8; 4],
        mask_pos: u8,
        echo: bool,
        /// The frame is a Close: once its echo is out, the connection ends.
        close: bool,
    },
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    /// Input not handled yet: a partial request head or frame header.
    kept: Vec<u8>,
    /// Output the socket did not take.
    pending: Vec<u8>,
    /// A Close was echoed: close once `pending` is empty.
    done: bool,
}

/// One read's replies: header bytes (and small payloads) in `arena`, large payloads as
/// ranges of the read buffer, in order.
#[derive(Default)]
struct Replies {
    arena: Vec<u8>,
    /// (from arena?, start, end)
    segments: Vec<(bool, usize, usize)>,
}

impl Replies {
    fn clear(&mut self) {
        self.arena.clear();
        self.segments.clear();
    }

    fn push_arena(&mut self, bytes: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        match self.segments.last_mut() {
            Some((true, _, end)) if *end == start => *end = self.arena.len(),
            _ => self.segments.push((true, start, self.arena.len())),
        }
    }

    fn push_buf(&mut self, start: usize, end: usize) {
        self.segments.push((false, start, end));
    }
}

/// XORs `data` with `mask` starting at mask byte `pos`, a word at a time.
fn unmask(data: &mut [u8], mask: [u8; 4], pos: usize) {
    let key: [u8; 4] = std::array::from_fn(|i| mask[(pos + i) % 4]);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

fn accept_reply(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let key = text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim())
    })?;
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = BASE64.encode(sha.finalize());
    Some(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes(),
    )
}

impl Conn {
    /// Handles `buf[..len]` (kept input first); returns false if the connection is to
    /// end now.
    fn on_input(&mut self, buf: &mut [u8], len: usize, out: &mut Replies) -> bool {
        let mut pos = 0;
        while pos < len && !self.done {
            match &mut self.phase {
                Phase::Handshake => {
                    let data = &buf[pos..len];
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if data.len() > MAX_HEAD {
                            return false;
                        }
                        self.kept.extend_from_slice(data);
                        return true;
                    };
                    let Some(reply) = accept_reply(&data[..end]) else {
                        return false;
                    };
                    out.push_arena(&reply);
                    pos += end + 4;
                    self.phase = Phase::Frames {
                        remaining: 0,
                        mask: [0; 4],
                        mask_pos: 0,
                        echo: false,
                        close: false,
                    };
                }
                Phase::Frames {
                    remaining,
                    mask,
                    mask_pos,
                    echo,
                    close,
                } if *remaining > 0 => {
                    let take = (*remaining).min((len - pos) as u64) as usize;
                    let payload = &mut buf[pos..pos + take];
                    if *echo {
                        unmask(payload, *mask, usize::from(*mask_pos));
                        if take < COPY_BELOW {
                            out.push_arena(payload);
                        } else {
                            out.push_buf(pos, pos + take);
                        }
                    }
                    *remaining -= take as u64;
                    *mask_pos = ((usize::from(*mask_pos) + take) % 4) as u8;
                    pos += take;
                    if *remaining == 0 && *close {
                        self.done = true;
                    }
                }
                Phase::Frames { .. } => {
                    let data = &buf[pos..len];
                    let Some((header, used)) = parse_header(data) else {
                        self.kept.extend_from_slice(data);
                        return true;
                    };
                    pos += used;
                    let opcode = header.b0 & 0x0F;
                    let (echo, close, b0) = match opcode {
                        0x8 => (true, true, header.b0),
                        0x9 => (true, false, (header.b0 & 0xF0) | 0xA),
                        0xA => (false, false, 0),
                        _ => (true, false, header.b0),
                    };
                    if echo {
                        let mut h = [0u8; 10];
                        let n = encode_header(&mut h, b0, header.len);
                        out.push_arena(&h[..n]);
                    }
                    self.phase = Phase::Frames {
                        remaining: header.len,
                        mask: header.mask,
                        mask_pos: 0,
                        echo,
                        close,
                    };
                    if header.len == 0 && close {
                        self.done = true;
                    }
                }
            }
        }
        true
    }

    /// Writes `out` (payload ranges from `buf`) with one `writev`, keeping what the socket
    /// does not take; with output already pending, it queues behind it.
    fn send(&mut self, buf: &[u8], out: &Replies) -> io::Result<()> {
        if out.segments.is_empty() {
            return Ok(());
        }
        let slice = |&(arena, s, e): &(bool, usize, usize)| -> &[u8] {
            if arena {
                &out.arena[s..e]
            } else {
                &buf[s..e]
            }
        };
        let mut written = 0;
        if self.pending.is_empty() {
            // At most a few hundred segments (see COPY_BELOW): one stack array.
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = out.segments.len().min(MAX_IOV);
            for (slot, seg) in iov.iter_mut().zip(&out.segments) {
                *slot = IoSlice::new(slice(seg));
            }
            written = match self.stream.write_vectored(&iov[..n]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
        }
        for seg in &out.segments {
            let s = slice(seg);
            let skip = written.min(s.len());
            written -= skip;
            self.pending.extend_from_slice(&s[skip..]);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.pending = Vec::new();
        Ok(())
    }
}

struct Header {
    b0: u8,
    len: u64,
    mask: [u8; 4],
}

/// A client frame header (always masked), if `data` holds all of it.
fn parse_header(data: &[u8]) -> Option<(Header, usize)> {
    let (&b0, rest) = data.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    let (len, ext) = match b1 & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
        n => (u64::from(n), 0),
    };
    let mask: [u8; 4] = if b1 & 0x80 != 0 {
        rest.get(ext..ext + 4)?.try_into().ok()?
    } else {
        [0; 4]
    };
    let used = 2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 };
    Some((Header { b0, len, mask }, used))
}

/// An unmasked server header; returns its length.
fn encode_header(h: &mut [u8; 10], b0: u8, len: u64) -> usize {
    h[0] = b0;
    if len < 126 {
        h[1] = len as u8;
        2
    } else if len <= 0xFFFF {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&len.to_be_bytes());
        10
    }
}

fn listen_addr() -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = match args.as_slice() {
        [] => "127.0.0.1:0".parse().unwrap(),
        [flag, a] if flag == "--listen" => a.parse().expect("--listen ADDR:PORT"),
        _ => panic!("usage: peer-mio-echo [--listen 127.0.0.1:PORT]"),
    };
    assert!(addr.ip().is_loopback(), "loopback addresses only: {addr}");
    addr
}

fn main() -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut listener = TcpListener::bind(listen_addr())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("listening on {}", listener.local_addr()?);
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; READ_BUF].into_boxed_slice();
    let mut out = Replies::default();
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let key = conns.vacant_key();
                            poll.registry().register(
                                &mut stream,
                                Token(key),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.insert(Conn {
                                stream,
                                phase: Phase::Handshake,
                                kept: Vec::new(),
                                pending: Vec::new(),
                                done: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // EMFILE and friends: try again on the next event.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let alive = serve(
                conn,
                &mut buf,
                &mut out,
                event.is_readable(),
                event.is_writable(),
            );
            if !alive {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

/// Handles one event; returns whether the connection lives on.
fn serve(
    conn: &mut Conn,
    buf: &mut [u8],
    out: &mut Replies,
    readable: bool,
    writable: bool,
) -> bool {
    if writable && conn.flush().is_err() {
        return false;
    }
    if readable {
        loop {
            let kept = conn.kept.len();
            let room = buf.len() - kept;
            match conn.stream.read(&mut buf[kept..]) {
                Ok(0) => return false,
                Ok(n) => {
                    buf[..kept].copy_from_slice(&conn.kept);
                    conn.kept = Vec::new();
                    out.clear();
                    if !conn.on_input(buf, kept + n, out) {
                        return false;
                    }
                    if conn.send(buf, out).is_err() {
                        return false;
                    }
                    if n < room || conn.done {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
    !(conn.done && conn.pending.is_empty())
}
