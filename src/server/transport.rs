//! What lies between a connection's socket and its session: nothing ([`Plain`], ws://)
//! or TLS (`secure::Secure`, wss://). The reactor is generic over it, so a plain connection
//! carries no TLS field at all (a zero-sized one) and stays at its 64 bytes, and a TLS
//! connection carries one pointer to rustls' state. Both read into the reactor's shared
//! buffer and hand the session plaintext there; both write a turn's corked output with
//! one write, spilling what the socket does not take.

use std::fmt;
use std::io;
use std::rc::Rc;

use mio::net::TcpStream;

use crate::protocol::transmit::Transmit;
use crate::stream::{Cork, Received, Spilled};
use crate::tls::TlsError;

/// Why a transport could not go on.
#[derive(Debug)]
pub enum Broken {
    /// The socket failed.
    Io(io::Error),
    /// The peer's TLS failed (its alert has been sent, as far as the socket took it).
    Tls(TlsError),
}

impl From<io::Error> for Broken {
    fn from(e: io::Error) -> Broken {
        Broken::Io(e)
    }
}

impl From<TlsError> for Broken {
    fn from(e: TlsError) -> Broken {
        Broken::Tls(e)
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::Io(e) => e.fmt(f),
            Broken::Tls(e) => e.fmt(f),
        }
    }
}

/// What one read brought the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// `buf[start..start + len]` is plaintext: `kept` bytes kept from before, then new.
    Data {
        /// Where the plaintext starts in the read buffer.
        start: usize,
        /// Plaintext bytes, kept and new.
        len: usize,
        /// Of which kept from before (the session has seen them).
        kept: usize,
        /// Bytes read from the socket.
        fresh: usize,
        /// The read did not fill the room it had: the socket is drained.
        drained: bool,
        /// The peer will send nothing more after this (TLS close_notify).
        closed: bool,
    },
    /// The peer ended its sending side.
    Eof,
    /// Nothing to read now.
    WouldBlock,
}

/// The layer between socket and session, for every connection of a reactor.
pub trait Transport: Sized + fmt::Debug {
    /// What the reactor keeps for all of its connections of this kind.
    type Shared: fmt::Debug;
    /// Where a member's chat frames go between turns (see [`Transport::queue`]).
    type Queue<'a>: Transmit
    where
        Self: 'a;

    /// The layer for a newly accepted connection.
    fn accept(shared: &Self::Shared) -> Result<Self, Broken>;

    /// SIGHUP: re-reads whatever the layer loaded from files, for the connections
    /// accepted from now on; open ones keep what they have. A failure is logged and
    /// changes nothing.
    fn reload(shared: &mut Self::Shared);

    /// Reads once from `socket` into `buf`, behind what `spill` kept.
    fn read(
        &mut self,
        socket: &mut TcpStream,
        spill: &mut Spilled,
        buf: &mut [u8],
        shared: &mut Self::Shared,
    ) -> Result<Inbound, Broken>;

    /// Writes what `cork` holds (opened over `input`), and anything the layer itself
    /// must send, in one write after what `spill` holds; returns the bytes written.
    fn write(
        &mut self,
        out: Outbound<'_>,
        socket: &mut TcpStream,
        spill: &mut Spilled,
        shared: &mut Self::Shared,
    ) -> Result<usize, Broken>;

    /// Output queued into `spill` for a later write (a member's chat frames).
    fn queue<'a>(
        &'a mut self,
        spill: &'a mut Spilled,
        shared: &'a mut Self::Shared,
    ) -> Self::Queue<'a>;
}

/// A turn's output, as [`Transport::write`] takes it.
#[derive(Debug)]
pub struct Outbound<'a> {
    /// What the turn corked.
    pub cork: &'a mut Cork,
    /// The buffer the cork was opened over.
    pub input: &'a [u8],
    /// The caller shuts down writing once this is out.
    pub fin_follows: bool,
}

/// ws://: bytes as they are.
#[derive(Debug, Default)]
pub struct Plain;

/// A member's chat frames into the spill, as they are.
#[derive(Debug)]
pub struct Queued<'a>(&'a mut Spilled);

impl Transmit for Queued<'_> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        self.0.transmit(head, body);
    }

    fn transmit_shared(&mut self, frame: &Rc<[u8]>) {
        self.0.transmit_shared(frame);
    }
}

impl Transport for Plain {
    type Shared = ();
    type Queue<'a> = Queued<'a>;

    fn accept(_: &()) -> Result<Plain, Broken> {
        Ok(Plain)
    }

    fn reload(_: &mut ()) {
        log::info!("SIGHUP: nothing to reload (no --tls-cert)");
    }

    fn read(
        &mut self,
        socket: &mut TcpStream,
        spill: &mut Spilled,
        buf: &mut [u8],
        _: &mut (),
    ) -> Result<Inbound, Broken> {
        Ok(match spill.read(socket, buf)? {
            Received::Data { len, fresh } => Inbound::Data {
                start: 0,
                len,
                kept: len - fresh,
                fresh,
                drained: len < buf.len(),
                closed: false,
            },
            Received::Eof => Inbound::Eof,
            Received::WouldBlock => Inbound::WouldBlock,
        })
    }

    fn write(
        &mut self,
        out: Outbound<'_>,
        socket: &mut TcpStream,
        spill: &mut Spilled,
        _: &mut (),
    ) -> Result<usize, Broken> {
        Ok(out.cork.flush(out.input, socket, spill, out.fin_follows)?)
    }

    fn queue<'a>(&'a mut self, spill: &'a mut Spilled, _: &'a mut ()) -> Queued<'a> {
        Queued(spill)
    }
}
