//! The server's side of the opening handshake (RFC 6455 §4.2): reading the request head,
//! refusing what the protocol refuses, and writing the application's answer to the rest.
//! Every answer but a 101 is final: one response per connection, then it closes.

use super::event::Event;
use super::misuse::Misuse;
use super::phase::{Liveness, Phase};
use super::{ServerConfig, ServerConnection};
use crate::protocol::deadline::Tick;
use crate::protocol::handshake::{check_request, Refusal, Upgrade};
use crate::protocol::http::{parse_request, write_response, Header, Status, MAX_HEADERS};
use crate::protocol::transmit::Transmit;

/// The application's answer to an [`Event::Request`], given with
/// [`ServerConnection::handle_answer`].
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// Open the WebSocket: 101 with the upgrade's accept value (§4.2.2 step 5).
    Accept(Upgrade<'a>),
    /// Serve a page, then close.
    Respond {
        /// The status line's code and reason.
        status: Status,
        /// Header fields beside `Content-Length` and `Connection: close`.
        headers: &'a [(&'a str, &'a str)],
        /// The body.
        body: &'a [u8],
    },
    /// An HTTP error with a one-line plain-text body, then close.
    Refuse(Refusal),
}

impl<A: Copy> ServerConnection<A> {
    /// Answers the request the last [`Event::Request`] reported. `Accept` opens the
    /// WebSocket; any other answer closes the connection once it is flushed.
    pub fn handle_answer(
        &mut self,
        answer: Answer<'_>,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> Result<(), Misuse> {
        if self.phase != Phase::Answering {
            return Err(Misuse::NoRequest);
        }
        match answer {
            Answer::Accept(upgrade) => self.accept(&upgrade, now, tx),
            Answer::Respond {
                status,
                headers,
                body,
            } => self.respond(status, headers, body, now, tx),
            Answer::Refuse(refusal) => self.refuse(refusal, now, tx),
        }
        Ok(())
    }

    /// Reads the request head from `data` (whose first `scanned` bytes an earlier call
    /// saw); a head the protocol refuses is answered here.
    pub(super) fn read_head<'a>(
        &mut self,
        data: &'a [u8],
        scanned: usize,
        config: &ServerConfig<'_>,
        now: Tick,
        tx: &mut impl Transmit,
    ) -> (usize, Option<Event<'a>>) {
        let mut headers = [Header::default(); MAX_HEADERS];
        match parse_request(data, scanned, &mut headers) {
            Ok(None) => (0, None),
            Ok(Some((request, len))) => match check_request(&request, &config.policy) {
                Ok(upgrade) => {
                    self.phase = Phase::Answering;
                    let target = request.resource();
                    (len, Some(Event::Request { target, upgrade }))
                }
                Err(e) => {
                    self.refuse(e.into(), now, tx);
                    (len, Some(Event::Refused(e.into())))
                }
            },
            // An unparsable head has no end we can trust: drop all of it.
            Err(e) => {
                self.refuse(e.into(), now, tx);
                (data.len(), Some(Event::Refused(e.into())))
            }
        }
    }

    /// Answers an upgrade with 101: the connection is open from now on. The head goes
    /// out in pieces straight from constants and the accept value, so a handshake
    /// allocates nothing.
    fn accept(&mut self, upgrade: &Upgrade<'_>, now: Tick, tx: &mut impl Transmit) {
        tx.transmit(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: ",
            &upgrade.accept,
        );
        if let Some(protocol) = upgrade.protocol {
            tx.transmit(b"\r\nSec-WebSocket-Protocol: ", protocol.as_bytes());
        }
        if let Some(agreement) = upgrade.deflate {
            tx.transmit(
                b"\r\nSec-WebSocket-Extensions: ",
                agreement.response().as_bytes(),
            );
        }
        self.deflate = upgrade.deflate;
        tx.transmit(b"\r\n\r\n", &[]);
        self.set_phase(Phase::Open(Liveness::Heard), now);
    }

    /// Answers with a page (one response per connection), then closes.
    fn respond(
        &mut self,
        status: Status,
        headers: &[(&str, &str)],
        body: &[u8],
        now: Tick,
        tx: &mut impl Transmit,
    ) {
        let mut out = Vec::new();
        write_response(&mut out, status, headers, body);
        tx.transmit(&out, &[]);
        self.set_phase(Phase::Closing, now);
    }

    /// Answers with an error status and a one-line plain-text body, then closes.
    pub(super) fn refuse(&mut self, refusal: Refusal, now: Tick, tx: &mut impl Transmit) {
        let mut out = Vec::new();
        refusal.write_response(&mut out);
        tx.transmit(&out, &[]);
        self.set_phase(Phase::Closing, now);
    }
}
