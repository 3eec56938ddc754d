//! One connection's TLS records, sans-IO, over rustls' unbuffered API: ciphertext in,
//! plaintext out into the caller's buffer ([`Tls::open`]); plaintext in, records out into
//! the caller's buffer ([`Tls::seal`]). The caller owns every buffer, so an idle
//! connection holds rustls' state and nothing else; a partial record is the caller's
//! to keep (at most one record: 16 KiB and its overhead, RFC 8446 §5.2).
//!
//! What rustls wants sent on its own (handshake messages, session tickets, alerts) is
//! appended to the same [`Sealed`] buffer as the sealed plaintext, in order, so that a
//! turn's bytes leave in one write.

use std::fmt;

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

use super::error::TlsError;

/// TLS 1.3's overhead per record (header, content type, AEAD tag; RFC 8446 §5.2),
/// rounded up for TLS 1.2's explicit nonce: the first guess at the room sealing needs.
const RECORD_OVERHEAD: usize = 64;

/// Most plaintext per record (RFC 8446 §5.1).
const MAX_FRAGMENT: usize = 16 * 1024;

/// A rustls connection in the unbuffered API, either role.
pub trait Side {
    /// The role's connection data.
    type Data;
    /// `process_tls_records`, which rustls implements per role.
    fn process<'c, 'i>(&'c mut self, records: &'i mut [u8])
        -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Side for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        records: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(records)
    }
}

impl Side for UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        records: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(records)
    }
}

/// Records to send: one buffer that grows to the largest turn and is reused, shared by
/// every connection a reactor drives (empty between turns).
#[derive(Debug, Default)]
pub struct Sealed {
    buf: Vec<u8>,
    len: usize,
}

impl Sealed {
    /// The records, in order.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the records (sent, or spilled by the caller).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Room for at least `need` more bytes, zeroed once and reused after.
    fn room(&mut self, need: usize) -> &mut [u8] {
        if self.buf.len() < self.len + need {
            self.buf.resize(self.len + need, 0);
        }
        &mut self.buf[self.len..]
    }

    /// Appends what `write` puts into the room it is given, growing the room when
    /// `write` says how much it needs (`Err(Some(n))`).
    fn append(
        &mut self,
        guess: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
    ) -> Result<(), TlsError> {
        let mut need = guess;
        for _ in 0..2 {
            match write(self.room(need)) {
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(Some(required)) => need = required,
                Err(None) => break,
            }
        }
        Err(TlsError(rustls::Error::General(
            "cannot seal a record".into(),
        )))
    }
}

/// What [`Tls::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Plaintext bytes written to the front of the plaintext buffer.
    pub plain: usize,
    /// Record bytes consumed; the rest is a partial record for the caller to keep and
    /// hand back in front of the next bytes.
    pub used: usize,
    /// The peer sent close_notify: no more data will come (RFC 8446 §6.1).
    pub closed: bool,
}

/// One connection's TLS state, boxed: one pointer where the connection keeps it.
pub struct Tls<C>(Box<C>);

impl<C> fmt::Debug for Tls<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls")
    }
}

impl<C: Side> Tls<C> {
    /// Wraps a rustls connection.
    pub fn new(conn: C) -> Tls<C> {
        Tls(Box::new(conn))
    }

    /// Processes the records in `records` (a partial record kept from before, then new
    /// bytes): their plaintext goes to the front of `plain` (which must be at least as
    /// long as `records`: plaintext is never longer than its record), and whatever rustls
    /// must send in answer is appended to `out`. On an error, the alert that tells the
    /// peer is in `out` too.
    pub fn open(
        &mut self,
        records: &mut [u8],
        plain: &mut [u8],
        out: &mut Sealed,
    ) -> Result<Opened, TlsError> {
        let mut opened = Opened {
            plain: 0,
            used: 0,
            closed: false,
        };
        loop {
            let status = self.0.process(&mut records[opened.used..]);
            let discard = status.discard;
            let mut state = match status.state {
                Ok(state) => state,
                Err(e) => {
                    // rustls must see the bytes it has not discarded again, in place:
                    // it may have joined a handshake message across records in them.
                    self.alert(&mut records[opened.used + discard..], out);
                    return Err(e.into());
                }
            };
            let mut done = false;
            match &mut state {
                ConnectionState::ReadTraffic(traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record?;
                        let end = opened.plain + record.payload.len();
                        let Some(dest) = plain.get_mut(opened.plain..end) else {
                            return Err(TlsError(rustls::Error::General(
                                "plaintext longer than its records".into(),
                            )));
                        };
                        dest.copy_from_slice(record.payload);
                        opened.plain = end;
                    }
                }
                ConnectionState::EncodeTlsData(encode) => {
                    out.append(MAX_FRAGMENT, |room| encode.encode(room).map_err(needs))?
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    opened.closed = true;
                    done = true;
                }
                ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => done = true,
                // Early data is off (rustls' default): nothing else is expected.
                _ => {}
            }
            // The records are sent by the caller, with this turn's other output.
            if let ConnectionState::TransmitTlsData(transmit) = state {
                transmit.done();
            }
            opened.used += discard;
            if done {
                return Ok(opened);
            }
        }
    }

    /// Seals `plain` into records (as few as its length needs) appended to `out`.
    /// `kept` is the partial record the caller keeps (rustls must see it in front of
    /// any later bytes). Returns false if the connection cannot send application data
    /// (its handshake is not done, or it is closed): the plaintext is then dropped.
    pub fn seal(
        &mut self,
        kept: &mut [u8],
        plain: &[u8],
        out: &mut Sealed,
    ) -> Result<bool, TlsError> {
        let guess = plain.len() + RECORD_OVERHEAD * (plain.len() / MAX_FRAGMENT + 1);
        self.write_traffic(kept, out, |traffic, out| {
            out.append(guess, |room| {
                traffic.encrypt(plain, room).map_err(too_small)
            })
        })
    }

    /// Appends a close_notify alert (RFC 8446 §6.1) to `out`, if the connection can
    /// still send one: before the FIN that ends our sending side.
    pub fn close_notify(&mut self, kept: &mut [u8], out: &mut Sealed) -> Result<bool, TlsError> {
        let sent = self.write_traffic(kept, out, |traffic, out| {
            out.append(RECORD_OVERHEAD, |room| {
                traffic.queue_close_notify(room).map_err(too_small)
            })
        })?;
        // rustls may queue the alert rather than seal it at once.
        self.drain_queued(kept, out);
        Ok(sent)
    }

    /// Runs `write` once the connection may send application data, after whatever rustls
    /// has queued to send first.
    fn write_traffic(
        &mut self,
        kept: &mut [u8],
        out: &mut Sealed,
        write: impl FnOnce(
            &mut rustls::unbuffered::WriteTraffic<'_, C::Data>,
            &mut Sealed,
        ) -> Result<(), TlsError>,
    ) -> Result<bool, TlsError> {
        loop {
            let status = self.0.process(kept);
            let discard = status.discard;
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    out.append(MAX_FRAGMENT, |room| encode.encode(room).map_err(needs))?
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    write(&mut traffic, out)?;
                    return Ok(true);
                }
                Ok(_) => return Ok(false),
                Err(e) => {
                    self.alert(&mut kept[discard..], out);
                    return Err(e.into());
                }
            }
        }
    }

    /// Encodes what rustls has queued to send (a close_notify it did not seal at once).
    /// `records` are the bytes rustls has not discarded yet, as it must see them on
    /// every call (it panics on a shorter buffer than it has processed).
    fn drain_queued(&mut self, records: &mut [u8], out: &mut Sealed) {
        // An alert is one record; the bound only guards against a loop.
        for _ in 0..4 {
            let status = self.0.process(records);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    if out
                        .append(MAX_FRAGMENT, |room| encode.encode(room).map_err(needs))
                        .is_err()
                    {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// After an error, encodes the alert rustls queued to tell the peer why (RFC 8446
    /// §6.2), if it queued one. One call only: rustls hands queued records out before it
    /// looks at input again, and looking at the bad input again would fail it twice.
    /// `records` as for [`Tls::drain_queued`].
    fn alert(&mut self, records: &mut [u8], out: &mut Sealed) {
        let status = self.0.process(records);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            let _ = out.append(MAX_FRAGMENT, |room| encode.encode(room).map_err(needs));
        }
    }

    /// The rustls connection, to ask it about the handshake's outcome.
    pub fn conn(&self) -> &C {
        &self.0
    }
}

fn needs(e: EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(size) => Some(size.required_size),
        EncodeError::AlreadyEncoded => None,
    }
}

fn too_small(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(size) => Some(size.required_size),
        _ => None,
    }
}
