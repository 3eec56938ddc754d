//! What lies between a connection's socket and its session: nothing ([`Plain`], ws://)
//! or TLS ([`Secure`], wss://). The reactor is generic over it, so a plain connection
//! carries no TLS field at all (a zero-sized one) and stays at its 64 bytes, and a TLS
//! connection carries one pointer to rustls' state. Both read into the reactor's shared
//! buffer and hand the session plaintext there; both write a turn's corked output with
//! one write, spilling what the socket does not take.

use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

use log::debug;
use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;

use crate::protocol::transmit::Transmit;
use crate::stream::{Cork, Received, Spilled};
use crate::tls::{Sealed, Tls, TlsError};

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

/// wss://: TLS over the socket (see `crate::tls`).
#[derive(Debug)]
pub struct Secure(Tls<UnbufferedServerConnection>);

/// What every TLS connection of a reactor shares: the configuration, and the buffers a
/// turn's plaintext is gathered in and its records sealed in (empty between turns).
#[derive(Debug)]
pub struct SecureShared {
    config: Arc<rustls::ServerConfig>,
    plain: Vec<u8>,
    sealed: Sealed,
}

impl SecureShared {
    /// For connections under `config`.
    pub fn new(config: Arc<rustls::ServerConfig>) -> SecureShared {
        SecureShared {
            config,
            plain: Vec::new(),
            sealed: Sealed::default(),
        }
    }
}

impl Secure {
    /// Seals `shared.plain` (if any), then a close_notify if `fin_follows`, and writes
    /// the records; what the socket does not take is spilled.
    fn send(
        &mut self,
        socket: &mut TcpStream,
        spill: &mut Spilled,
        shared: &mut SecureShared,
        fin_follows: bool,
    ) -> Result<usize, Broken> {
        let mut sealed = Ok(true);
        if !shared.plain.is_empty() {
            sealed = self
                .0
                .seal(spill.records(), &shared.plain, &mut shared.sealed);
            shared.plain.clear();
        }
        if fin_follows && sealed.is_ok() {
            sealed = self.0.close_notify(spill.records(), &mut shared.sealed);
        }
        // Whatever was sealed leaves, an alert after a failure too.
        let written = spill.write(socket, shared.sealed.bytes(), &[]);
        shared.sealed.clear();
        if !sealed? {
            debug!("output before the TLS handshake was done: dropped");
        }
        Ok(written?)
    }
}

impl Transport for Secure {
    type Shared = SecureShared;
    type Queue<'a> = Sealing<'a>;

    fn accept(shared: &SecureShared) -> Result<Secure, Broken> {
        let conn = UnbufferedServerConnection::new(shared.config.clone()).map_err(TlsError)?;
        Ok(Secure(Tls::new(conn)))
    }

    /// The read buffer's first half takes the records, its second half their plaintext
    /// (decrypted records are never longer than they were), so the session reads the
    /// plaintext in place in the reactor's buffer, as it does over plain TCP.
    fn read(
        &mut self,
        socket: &mut TcpStream,
        spill: &mut Spilled,
        buf: &mut [u8],
        shared: &mut SecureShared,
    ) -> Result<Inbound, Broken> {
        let half = buf.len() / 2;
        let (records, plain) = buf.split_at_mut(half);
        let (kept_plain, kept_records) = spill.kept();
        // Room for records whose plaintext fits behind the kept plaintext.
        let room = half - kept_plain;
        let fresh = loop {
            match socket.read(&mut records[kept_records..room]) {
                Ok(0) => return Ok(Inbound::Eof),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Inbound::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        };
        spill.restore(plain, records);
        let end = kept_records + fresh;
        let opened = self.0.open(
            &mut records[..end],
            &mut plain[kept_plain..],
            &mut shared.sealed,
        );
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // The alert goes out as far as the socket takes it; the caller drops.
                let _ = spill.write(socket, shared.sealed.bytes(), &[]);
                shared.sealed.clear();
                return Err(e.into());
            }
        };
        spill.keep_records(&records[opened.used..end]);
        Ok(Inbound::Data {
            start: half,
            len: kept_plain + opened.plain,
            kept: kept_plain,
            fresh,
            drained: end < room,
            closed: opened.closed,
        })
    }

    fn write(
        &mut self,
        out: Outbound<'_>,
        socket: &mut TcpStream,
        spill: &mut Spilled,
        shared: &mut SecureShared,
    ) -> Result<usize, Broken> {
        out.cork.gather(out.input, &mut shared.plain);
        // Handshake records from the read (if any) are in `shared.sealed` already.
        self.send(socket, spill, shared, out.fin_follows)
    }

    fn queue<'a>(
        &'a mut self,
        spill: &'a mut Spilled,
        shared: &'a mut SecureShared,
    ) -> Sealing<'a> {
        Sealing {
            tls: self,
            spill,
            shared,
        }
    }
}

/// A member's chat frames, each sealed into the spill as it comes: the frame is encoded
/// once for the room and encrypted per member.
#[derive(Debug)]
pub struct Sealing<'a> {
    tls: &'a mut Secure,
    spill: &'a mut Spilled,
    shared: &'a mut SecureShared,
}

impl Transmit for Sealing<'_> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        let SecureShared { plain, sealed, .. } = &mut *self.shared;
        plain.extend_from_slice(head);
        plain.extend_from_slice(body);
        let result = self.tls.0.seal(self.spill.records(), plain, sealed);
        plain.clear();
        if let Err(e) = result {
            debug!("a chat frame not sealed: {e}");
        }
        self.spill.get().output.push_copy(sealed.bytes());
        sealed.clear();
    }
}
