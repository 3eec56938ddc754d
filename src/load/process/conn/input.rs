//! A load connection's input: reading the socket (through its layer) behind any kept
//! input, feeding the
//! bytes to the protocol core, and acting on each event it reports (established, a
//! piece of a message, the server's Close); and what a broken response or frame stream
//! counts as.

use super::layer::{Inbound, Layer};
use super::{Conn, End, Phase};
use crate::load::process::env::Env;
use crate::load::wire::Failure;
use crate::protocol::client::{ClientError, Event};
use crate::protocol::close::CloseCode;
use crate::protocol::deflate::ExtensionError;
use crate::protocol::handshake::ResponseError;

impl<L: Layer> Conn<L> {
    /// Reads into the shared buffer behind any kept input until the socket is drained.
    /// A read that does not fill the buffer has drained it: under edge-triggered epoll,
    /// bytes arriving later raise a new edge, so reading on would only collect EAGAIN
    /// (one wasted syscall per echo; the server's rule too). The exception is an event
    /// that reported the peer's FIN (`read_closed`): an EOF that arrived before the read
    /// raises no later edge, so then it reads on to the EOF. After a full read it reads
    /// on: bytes left unread could fill our receive buffer, and then the server could
    /// send nothing that raises an edge.
    pub(super) fn on_readable(
        &mut self,
        env: &mut Env,
        buf: &mut [u8],
        read_closed: bool,
    ) -> Result<(), End> {
        loop {
            let read = self
                .layer
                .read(&mut self.stream, &mut self.spill, buf, env)?;
            match read {
                Inbound::Data {
                    start,
                    len,
                    kept,
                    drained,
                } => {
                    if L::HANDSHAKES && matches!(self.phase, Phase::Securing) {
                        if !self.layer.ready() {
                            if drained && !read_closed {
                                return Ok(());
                            }
                            continue;
                        }
                        self.secured(env)?;
                    }
                    let data = &mut buf[start..start + len];
                    let used = self.on_bytes(env, data, kept);
                    self.flush_cork(env, used.is_ok())?;
                    let used = used?;
                    self.spill.keep(&data[used..]);
                    self.spill.tidy();
                    if drained && !read_closed {
                        return Ok(());
                    }
                }
                Inbound::Eof => return Err(self.eof()),
                Inbound::WouldBlock => return Ok(()),
            }
        }
    }

    /// Handles received bytes (of which the first `scanned` were seen before); returns
    /// how many were consumed (the rest is kept).
    fn on_bytes(&mut self, env: &mut Env, data: &mut [u8], scanned: usize) -> Result<usize, End> {
        let mut pos = 0;
        loop {
            let mask = env.rng.next_u32().to_ne_bytes();
            let scanned = if pos == 0 { scanned } else { 0 };
            let rest = &mut data[pos..];
            let (n, event) = self
                .with_core(env, |core, env, link| {
                    core.poll(rest, scanned, &env.cfg.receiver, mask, link)
                })?
                .map_err(|e| End::from(client_failure(e)))?;
            pos += n;
            match event {
                None if n == 0 => return Ok(pos),
                None => {}
                Some(Event::Opened) => self.on_established(env)?,
                Some(Event::Data(chunk)) if env.chat.is_some() => {
                    self.on_chat_chunk(env, &chunk)?
                }
                Some(Event::Data(chunk)) => self.on_echo_chunk(env, &chunk)?,
                // The server ended a connection we were holding: our Close answer (a
                // courtesy) is queued; count the failure.
                Some(Event::PeerClosed(code)) => {
                    let code = code.map_or(CloseCode::NO_STATUS.0, |c| c.0);
                    return Err(Failure::ServerClose(code).into());
                }
                // Our closing handshake: the server's EOF comes next.
                Some(Event::CloseAnswered) => {}
            }
        }
    }
}

/// The failure a broken response or frame stream is counted as.
fn client_failure(e: ClientError) -> Failure {
    match e {
        ClientError::Http(_) => Failure::BadHandshake,
        ClientError::Handshake(why) => handshake_failure(why),
        ClientError::Extension(ExtensionError::Declined) => Failure::DeflateDeclined,
        ClientError::Extension(ExtensionError::Invalid) => Failure::BadExtension,
        ClientError::Protocol(e) => {
            log::debug!("server broke the protocol: {e}");
            Failure::ProtocolError
        }
    }
}

/// The failure a handshake the server did not complete is counted as.
fn handshake_failure(why: ResponseError) -> Failure {
    match why {
        ResponseError::Refused(status) => Failure::HandshakeRejected(status),
        ResponseError::NotWebSocket => Failure::BadHandshake,
        ResponseError::BadAccept => Failure::BadAccept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::process::rng::Rng;
    use crate::protocol::handshake::{accept_key, check_response, client_key};
    use crate::protocol::http::{parse_response, Header, MAX_HEADERS};

    #[test]
    fn handshake_refusals_are_classified() {
        let key = client_key(Rng::from_seed(3).nonce());
        let response = |accept: &str, upgrade: &str| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {upgrade}\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
        };
        let check = |head: String| {
            let mut storage = [Header::default(); MAX_HEADERS];
            let (resp, _) = parse_response(head.as_bytes(), 0, &mut storage)
                .unwrap()
                .unwrap();
            check_response(&resp, &key).map_err(handshake_failure)
        };
        let good = accept_key(&key);
        let good = std::str::from_utf8(&good).unwrap();
        assert_eq!(check(response(good, "websocket")), Ok(()));
        assert_eq!(
            check(response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "websocket")),
            Err(Failure::BadAccept)
        );
        assert_eq!(check(response(good, "h2c")), Err(Failure::BadHandshake));
        let refused = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_owned();
        assert_eq!(check(refused), Err(Failure::HandshakeRejected(503)));
    }
}
