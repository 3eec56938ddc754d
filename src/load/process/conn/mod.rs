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
//! [`Conn`]'s fields are private to this folder, which is its one `impl` home. This
//! file is what a connection is (its phases and flags) and the calls the driver makes
//! into it (readiness, a passed deadline); the rest, by job:
//!
//! - `opening.rs`: the connect completing, the opening handshake, established;
//! - `input.rs`: reading the socket and acting on what the core makes of the bytes;
//! - `output.rs`: the core writing through the socket, the spill's cap, flushing;
//! - `ending.rs`: the closing handshake, an abort, and counting how it ended;
//! - `echoes.rs`: the warm-up, verification and periodic echoes;
//! - `compressed.rs`: a compressed echo, gathered whole and inflated to be checked;
//! - `chat_member.rs`: a room member's messages and the sender's;
//! - `echo_window.rs`: the echo workload's messages in flight;
//! - `layer.rs`: what lies between socket and core: nothing, or (`secure.rs`) TLS.
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

use std::os::fd::AsRawFd;

use mio::net::TcpStream;

use crate::load::process::env::{Env, NEVER};
use crate::load::wire::Failure;
use crate::protocol::client::ClientConnection;
use crate::stream::Spilled;

mod chat_member;
mod compressed;
mod echo_window;
mod echoes;
mod ending;
mod input;
mod layer;
mod opening;
mod output;
mod secure;

pub use layer::{Layer, Plain};
pub use secure::Secure;

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
    /// Connected; the layer's own handshake (TLS) is under way.
    Securing,
    /// Connected: the protocol core (handshake, then frames, then our closing
    /// handshake) and what this connection expects to receive next.
    Running { core: ClientConnection, echo: Echo },
}

const ESTABLISHED: u8 = 1;
const VERIFIED: u8 = 2;
/// We sent Close; waiting for the server's Close, then its EOF.
const CLOSING: u8 = 4;

/// One connection: its socket, its layer (zero-sized for ws://) and a few words of
/// state.
#[derive(Debug)]
pub struct Conn<L: Layer = Plain> {
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
    layer: L,
}

impl<L: Layer> Conn<L> {
    /// A connection whose connect has just been started on `stream` (already
    /// registered), over `layer`.
    pub fn new(stream: TcpStream, source: u16, layer: L, env: &mut Env) -> Conn<L> {
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
            layer,
        }
    }

    /// Whether its deadline has passed.
    pub fn is_due(&self, now_ms: u32) -> bool {
        self.deadline_ms <= now_ms
    }

    /// When this connection next needs the driver without readiness (ms since the
    /// process's epoch, or `NEVER`): the driver files it on its timer wheel whenever a
    /// call into the connection has moved it.
    pub fn deadline_ms(&self) -> u32 {
        self.deadline_ms
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
            Phase::Securing => Err(Failure::HandshakeTimeout.into()),
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

    /// Its id among the process's open connections, for the deflate codec's contexts:
    /// its socket's descriptor, which no other open connection has.
    fn id(&self) -> usize {
        self.stream.as_raw_fd() as usize
    }

    fn ready(&mut self, env: &mut Env, buf: &mut [u8], ready: Readiness) -> Result<(), End> {
        let Readiness {
            readable,
            writable,
            read_closed,
        } = ready;
        if let Phase::Connecting = self.phase {
            if !self.connect_ready(env, readable, writable)? {
                return Ok(());
            }
        }
        if writable {
            self.flush()?;
        }
        if readable {
            self.on_readable(env, buf, read_closed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::process::payload;
    use crate::load::process::rng::Rng;
    use crate::protocol::frame::{encode_frame, OpCode};
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
        // Over TLS, one pointer more: rustls' state is boxed.
        let secure = std::mem::size_of::<Conn<Secure>>();
        assert!(secure <= limit + 8, "Conn<Secure> is {secure} bytes");
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
            deflate: false,
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
}
