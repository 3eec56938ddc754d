//! What lies between a load connection's socket and its protocol core: nothing
//! ([`Plain`], ws://) or TLS (`secure::Secure`, wss://). [`Conn`](super::Conn) is
//! generic over it, so a plain connection carries a zero-sized field and stays at its
//! size, and a TLS one carries one pointer to rustls' state. Both read into the
//! process's shared buffer and hand the core plaintext there.

use std::fmt;
use std::io;

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
    /// Where the protocol core's output goes during one call into it.
    type Out<'c>: Transmit;

    /// Whether the layer has a handshake of its own (TLS): without one, the code that
    /// waits for it is compiled out of the read loop, which stays as it was for ws://.
    const HANDSHAKES: bool;

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

    /// Runs `f` with the connection's output: written as it comes (ws://), or gathered
    /// and then sealed and written (wss://); what the socket does not take is spilled.
    /// A write error counts as `on_io` says.
    fn output<T>(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        env: &mut Env,
        on_io: fn(&io::Error) -> Failure,
        f: impl FnOnce(&mut Env, &mut Self::Out<'_>) -> T,
    ) -> Result<T, Failure>;
}

/// ws://: bytes as they are.
#[derive(Debug, Default)]
pub struct Plain;

impl Layer for Plain {
    type Out<'c> = Link<'c, TcpStream>;
    const HANDSHAKES: bool = false;

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

    #[inline(always)]
    fn output<T>(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        env: &mut Env,
        on_io: fn(&io::Error) -> Failure,
        f: impl FnOnce(&mut Env, &mut Link<'_, TcpStream>) -> T,
    ) -> Result<T, Failure> {
        let mut link = Link::new(stream, spill);
        let r = f(env, &mut link);
        link.finish().map_err(|e| on_io(&e))?;
        Ok(r)
    }
}
