//! What lies between a load connection's socket and its protocol core: nothing
//! ([`Plain`], ws://) or TLS (`secure::Secure`, wss://). [`Conn`](super::Conn) is
//! generic over it, so a plain connection carries a zero-sized field and stays at its
//! size, and a TLS one carries one pointer to rustls' state. Both read into the
//! process's shared buffer and hand the core plaintext there.

use std::fmt;
use std::io::Write;

use mio::net::TcpStream;

use crate::load::process::env::Env;
use crate::load::process::socket::io_failure;
use crate::load::wire::Failure;
use crate::protocol::transmit::Transmit;
use crate::stream::{Link, Received, Spilled};

/// What one read brought the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// `buf[start..start + len]` is plaintext: `kept` bytes kept from before, then new.
    Data {
        /// Where the plaintext starts in the read buffer.
        start: usize,
        /// Plaintext bytes, kept and new.
        len: usize,
        /// Of which kept from before (the core has seen them).
        kept: usize,
        /// The read did not fill the room it had: the socket is drained.
        drained: bool,
    },
    /// The peer ended its sending side.
    Eof,
    /// Nothing to read now.
    WouldBlock,
}

/// The layer between a load connection's socket and its protocol core.
pub trait Layer: Sized + fmt::Debug {
    /// Whether the core's output is gathered and sealed ([`Layer::send`]) rather than
    /// written as it comes.
    const SEALS: bool;

    /// The layer of a connection whose connect is starting.
    fn new(env: &mut Env) -> Result<Self, Failure>;

    /// Starts the layer's own handshake once the connect completed; returns whether the
    /// WebSocket handshake may start now (else [`Layer::ready`] says when).
    fn start(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        env: &mut Env,
    ) -> Result<bool, Failure>;

    /// Whether the layer's own handshake is done.
    fn ready(&self) -> bool;

    /// Reads once from `stream` into `buf`, behind what `spill` kept.
    fn read(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        buf: &mut [u8],
        env: &mut Env,
    ) -> Result<Inbound, Failure>;

    /// Seals `plain` (the core's output of one call) and writes it, spilling what the
    /// socket does not take. Only when [`Layer::SEALS`].
    fn send(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        env: &mut Env,
        plain: &[u8],
    ) -> Result<(), Failure>;
}

/// ws://: bytes as they are.
#[derive(Debug, Default)]
pub struct Plain;

impl Layer for Plain {
    const SEALS: bool = false;

    fn new(_: &mut Env) -> Result<Plain, Failure> {
        Ok(Plain)
    }

    fn start(&mut self, _: &mut TcpStream, _: &mut Spilled, _: &mut Env) -> Result<bool, Failure> {
        Ok(true)
    }

    fn ready(&self) -> bool {
        true
    }

    fn read(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        buf: &mut [u8],
        _: &mut Env,
    ) -> Result<Inbound, Failure> {
        Ok(match spill.read(stream, buf).map_err(|e| io_failure(&e))? {
            Received::Data { len, fresh } => Inbound::Data {
                start: 0,
                len,
                kept: len - fresh,
                drained: len < buf.len(),
            },
            Received::Eof => Inbound::Eof,
            Received::WouldBlock => Inbound::WouldBlock,
        })
    }

    fn send(
        &mut self,
        _: &mut TcpStream,
        _: &mut Spilled,
        _: &mut Env,
        _: &[u8],
    ) -> Result<(), Failure> {
        Ok(())
    }
}

/// The core's output for one call: written through the link as it comes (ws://), or
/// gathered for the layer to seal (wss://).
#[derive(Debug)]
pub struct Out<'c, S> {
    link: Link<'c, S>,
    gather: Option<&'c mut Vec<u8>>,
}

impl<'c, S: Write> Out<'c, S> {
    /// Output through `link`, or into `gather` if given.
    pub fn new(link: Link<'c, S>, gather: Option<&'c mut Vec<u8>>) -> Out<'c, S> {
        Out { link, gather }
    }

    /// The link's outcome (see [`Link::finish`]).
    pub fn finish(self) -> std::io::Result<u64> {
        self.link.finish()
    }
}

impl<S: Write> Transmit for Out<'_, S> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        match &mut self.gather {
            Some(plain) => {
                plain.extend_from_slice(head);
                plain.extend_from_slice(body);
            }
            None => self.link.transmit(head, body),
        }
    }
}
