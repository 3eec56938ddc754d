//! `--tls`: what every TLS connection of a load process shares: rustls' client
//! configuration and the name it checks the certificate against, the buffers a turn's
//! plaintext is gathered in and its records sealed in (empty between turns, so idle
//! connections hold none), and what the first handshake negotiated, for the report.

use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::HandshakeKind;

use crate::load::wire::{Failure, TlsSession};
use crate::tls::{Sealed, TlsError};

/// The TLS state every connection of a process shares.
#[derive(Debug)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    /// A turn's plaintext, gathered from the protocol core before it is sealed.
    pub plain: Vec<u8>,
    /// A turn's records, before they are written.
    pub sealed: Sealed,
    /// What the first handshake negotiated.
    pub session: Option<TlsSession>,
    /// Whether a TLS failure has been told on stderr (once per process).
    told: bool,
}

impl ClientTls {
    /// For connections under `config` to `host` (the target as given: its address is
    /// what the certificate must name).
    pub fn new(config: Arc<rustls::ClientConfig>, host: &str) -> ClientTls {
        let ip = host
            .rsplit_once(':')
            .map_or(host, |(ip, _)| ip)
            .trim_matches(['[', ']']);
        let name = ServerName::try_from(ip.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid name"));
        ClientTls {
            config,
            name,
            plain: Vec::new(),
            sealed: Sealed::default(),
            session: None,
            told: false,
        }
    }

    /// A new connection's rustls state.
    pub fn connect(&mut self) -> Result<UnbufferedClientConnection, Failure> {
        UnbufferedClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| self.failure(TlsError(e)))
    }

    /// Notes what a completed handshake negotiated (the first one's names) and how
    /// (full or resumed).
    pub fn note_session(&mut self, conn: &UnbufferedClientConnection) {
        if let Some(s) = &mut self.session {
            match conn.handshake_kind() {
                Some(HandshakeKind::Resumed) => s.resumed += 1,
                _ => s.full += 1,
            }
            return;
        }
        let name = |s: Option<String>| s.unwrap_or_else(|| "unknown".into());
        self.session = Some(TlsSession {
            version: name(conn.protocol_version().map(|v| format!("{v:?}"))),
            cipher_suite: name(
                conn.negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite())),
            ),
            group: name(
                conn.negotiated_key_exchange_group()
                    .map(|g| format!("{:?}", g.name())),
            ),
            full: 0,
            resumed: 0,
        });
        self.note_session(conn);
    }

    /// The failure a TLS error counts as. The first of a process is told on stderr in
    /// rustls' words (a wrong `--ca` says which certificate check failed); the rest at
    /// debug level.
    pub fn failure(&mut self, e: TlsError) -> Failure {
        if self.told {
            log::debug!("{e}");
        } else {
            self.told = true;
            eprintln!("wsreactor load: {e}");
        }
        match e.0 {
            rustls::Error::InvalidCertificate(_) => Failure::TlsCertificate,
            _ => Failure::TlsFailed,
        }
    }
}
