//! wss://: the transport that puts TLS (`crate::tls`, rustls' unbuffered API) between a
//! connection's socket and its session. Records are read into the first half of the
//! reactor's read buffer and their plaintext lands in its second half, where the session
//! reads it in place; a turn's corked output is gathered, sealed into as few records as
//! its length needs, and written with one write. Nothing is held per connection but
//! rustls' state and, while a record has not arrived whole, its start (in the spill).

use std::sync::Arc;

use log::{debug, error, info};
use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;

use super::transport::{Broken, Inbound, Outbound, Transport};
use crate::protocol::transmit::Transmit;
use crate::stream::{RecordsRead, Spilled};
use crate::tls::{Sealed, Tls, TlsError, TlsFiles};

/// wss://: TLS over the socket (see `crate::tls`).
#[derive(Debug)]
pub struct Secure(Tls<UnbufferedServerConnection>);

/// What every TLS connection of a reactor shares: the configuration (and the files and
/// ticket keys it was made from, for a reload), and the buffers a turn's plaintext is
/// gathered in and its records sealed in (empty between turns).
#[derive(Debug)]
pub struct SecureShared {
    config: Arc<rustls::ServerConfig>,
    files: TlsFiles,
    tickets: Arc<dyn rustls::server::ProducesTickets>,
    plain: Vec<u8>,
    sealed: Sealed,
}

impl SecureShared {
    /// For connections under the certificate in `files`, with session tickets sealed
    /// by `tickets`; what is wrong with the files otherwise.
    pub fn new(
        files: TlsFiles,
        tickets: Arc<dyn rustls::server::ProducesTickets>,
    ) -> Result<SecureShared, String> {
        Ok(SecureShared {
            config: crate::tls::server_config(&files, tickets.clone())?,
            files,
            tickets,
            plain: Vec::new(),
            sealed: Sealed::default(),
        })
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

    /// A renewed certificate (e.g. Let's Encrypt's, every 60 days) without a restart:
    /// each connection holds the configuration it was accepted under, so open ones go
    /// on, and the ticket keys stay, so tickets already out still resume.
    fn reload(shared: &mut SecureShared) {
        match crate::tls::server_config(&shared.files, shared.tickets.clone()) {
            Ok(config) => {
                shared.config = config;
                info!(
                    "SIGHUP: certificate reloaded from {}",
                    shared.files.cert.display()
                );
            }
            Err(e) => error!("SIGHUP: certificate not reloaded, the old one stays: {e}"),
        }
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
        let read = match spill.read_records(socket, buf)? {
            RecordsRead::Data(read) => read,
            RecordsRead::Eof => return Ok(Inbound::Eof),
            RecordsRead::WouldBlock => return Ok(Inbound::WouldBlock),
        };
        let opened = match self.0.open(read.records, read.plain, &mut shared.sealed) {
            Ok(opened) => opened,
            Err(e) => {
                // The alert goes out as far as the socket takes it; the caller drops.
                let _ = spill.write(socket, shared.sealed.bytes(), &[]);
                shared.sealed.clear();
                return Err(e.into());
            }
        };
        spill.keep_records(&read.records[opened.used..]);
        Ok(Inbound::Data {
            start: read.start,
            len: read.kept + opened.plain,
            kept: read.kept,
            fresh: read.fresh,
            drained: read.drained,
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
