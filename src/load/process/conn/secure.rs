//! wss:// for the load generator: the client role of the same TLS layer the server
//! uses (`crate::tls`, rustls' unbuffered API). Records are read into the first half of
//! the process's read buffer and their plaintext lands in its second half, where the
//! protocol core reads it in place; a call's output is gathered, sealed into as few
//! records as its length needs and written with one write. A connection holds rustls'
//! state behind one pointer and, while a record has not arrived whole, its start (in
//! the spill): no buffer of its own.

use std::io;

use mio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;

use super::layer::{Inbound, Layer};
use crate::load::process::env::Env;
use crate::load::process::socket::io_failure;
use crate::load::process::tls::ClientTls;
use crate::load::wire::Failure;
use crate::protocol::transmit::Transmit;
use crate::stream::{RecordsRead, Spilled};
use crate::tls::{Sealed, Tls, TlsError};

/// wss://: TLS over the socket.
#[derive(Debug)]
pub struct Secure(Tls<UnbufferedClientConnection>);

fn shared(env: &mut Env) -> &mut ClientTls {
    env.tls.as_mut().expect("a --tls run has its TLS settings")
}

/// Writes what was sealed (handshake records, alerts, data) and forgets it.
fn write_sealed(
    stream: &mut TcpStream,
    spill: &mut Spilled,
    sealed: &mut Sealed,
) -> Result<(), Failure> {
    if sealed.is_empty() {
        return Ok(());
    }
    let written = spill.write(stream, sealed.bytes(), &[]);
    sealed.clear();
    written.map(|_| ()).map_err(|e| io_failure(&e))
}

impl Secure {
    /// Counts a TLS failure; the alert rustls queued goes out as far as the socket
    /// takes it.
    fn fail(
        stream: &mut TcpStream,
        spill: &mut Spilled,
        tls: &mut ClientTls,
        e: TlsError,
    ) -> Failure {
        let _ = write_sealed(stream, spill, &mut tls.sealed);
        tls.failure(e)
    }

    /// Seals `plain` and writes the records.
    fn send(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        tls: &mut ClientTls,
        plain: &[u8],
    ) -> Result<(), Failure> {
        if plain.is_empty() {
            return Ok(());
        }
        match self.0.seal(spill.records(), plain, &mut tls.sealed) {
            Ok(true) => {}
            Ok(false) => log::debug!("output before the TLS handshake was done: dropped"),
            Err(e) => return Err(Secure::fail(stream, spill, tls, e)),
        }
        write_sealed(stream, spill, &mut tls.sealed)
    }
}

impl Layer for Secure {
    type Out<'c> = Gather<'c>;
    const HANDSHAKES: bool = true;

    fn new(env: &mut Env) -> Result<Secure, Failure> {
        Ok(Secure(Tls::new(shared(env).connect()?)))
    }

    /// Sends the ClientHello; the WebSocket handshake waits for the TLS one.
    fn start(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        env: &mut Env,
    ) -> Result<bool, Failure> {
        let tls = shared(env);
        if let Err(e) = self.0.open(&mut [], &mut [], &mut tls.sealed) {
            return Err(Secure::fail(stream, spill, tls, e));
        }
        write_sealed(stream, spill, &mut tls.sealed)?;
        Ok(false)
    }

    fn ready(&self) -> bool {
        !self.0.conn().is_handshaking()
    }

    fn read(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        buf: &mut [u8],
        env: &mut Env,
    ) -> Result<Inbound, Failure> {
        let read = match spill.read_records(stream, buf) {
            Ok(RecordsRead::Data(read)) => read,
            Ok(RecordsRead::Eof) => return Ok(Inbound::Eof),
            Ok(RecordsRead::WouldBlock) => return Ok(Inbound::WouldBlock),
            Err(e) => return Err(io_failure(&e)),
        };
        let tls = shared(env);
        let handshaking = self.0.conn().is_handshaking();
        let opened = self.0.open(read.records, read.plain, &mut tls.sealed);
        let opened = opened.map_err(|e| Secure::fail(stream, spill, tls, e))?;
        spill.keep_records(&read.records[opened.used..]);
        if handshaking && !self.0.conn().is_handshaking() {
            tls.note_session(self.0.conn());
        }
        // The handshake's answers (the client's Finished) leave now.
        write_sealed(stream, spill, &mut tls.sealed)?;
        Ok(Inbound::Data {
            start: read.start,
            len: read.kept + opened.plain,
            kept: read.kept,
            drained: read.drained,
        })
    }

    /// Gathers the core's output in the process's plaintext buffer (lent for the call:
    /// it stays allocated), then seals it into as few records as its length needs and
    /// writes them.
    fn output<T>(
        &mut self,
        stream: &mut TcpStream,
        spill: &mut Spilled,
        env: &mut Env,
        _: fn(&io::Error) -> Failure,
        f: impl FnOnce(&mut Env, &mut Gather<'_>) -> T,
    ) -> Result<T, Failure> {
        let mut plain = std::mem::take(&mut shared(env).plain);
        let r = f(env, &mut Gather(&mut plain));
        let sent = self.send(stream, spill, shared(env), &plain);
        plain.clear();
        shared(env).plain = plain;
        sent.map(|_| r)
    }
}

/// The protocol core's output of one call, gathered to be sealed.
#[derive(Debug)]
pub struct Gather<'c>(&'c mut Vec<u8>);

impl Transmit for Gather<'_> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        self.0.extend_from_slice(head);
        self.0.extend_from_slice(body);
    }
}
