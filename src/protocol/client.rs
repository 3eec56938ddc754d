//! The client role of a WebSocket connection, sans-IO: the opening request and the
//! check of its answer (§4.1), masked frames out (§5.3), pongs (§5.5.3), and the
//! closing handshake the client starts (§7.1.2), and permessage-deflate's offer and its
//! compressed messages out (RFC 7692, with the server's shared codec, in the client
//! role). The load generator runs it over its
//! sockets and decides what to send and what an answer means; the key, every masking
//! key and the time are its arguments, so nothing here reads a random source or clock.
//!
//! Phases: Handshake → Open → Closing (our Close sent) → the server's Close, then its
//! EOF (§7.1.1: the server closes TCP first, so TIME_WAIT stays on its side, not on the
//! client's ports).

use super::close::{encode_close_payload, CloseCode};
use super::deflate::{check_answer, Agreement, Codec, ExtensionError, Offer};
use super::error::ProtocolError;
use super::frame::{encode_frame, OpCode, RSV1};
use super::handshake::{check_response, client_request, ResponseError};
use super::http::{parse_response, Header, HttpError, MAX_HEADERS};
use super::receiver::{self, DataChunk, Receiver, ReceiverConfig, Role};
use super::transmit::Transmit;

/// What [`ClientConnection::poll`] reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The server answered 101 with the right accept value: the connection is open.
    Opened,
    /// Payload of a data frame, validated so far (UTF-8 for text).
    Data(DataChunk<'a>),
    /// The server closed a connection we held open; our Close reply, echoing its code
    /// and reason (§5.5.1), is queued.
    PeerClosed(Option<CloseCode>),
    /// The server answered the Close we sent: only its EOF is left.
    CloseAnswered,
}

/// Why a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// The answer to the request is not HTTP.
    Http(HttpError),
    /// The server did not open a WebSocket.
    Handshake(ResponseError),
    /// The server opened one without the extension offered, or answered the offer
    /// wrongly.
    Extension(ExtensionError),
    /// The server broke the frame protocol.
    Protocol(ProtocolError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The request is sent, with `offer`; waiting for the response head that answers
    /// `key`.
    Handshake { key: [u8; 24], offer: Option<Offer> },
    /// `deflate`: what was agreed, seen from this end ([`Agreement::mirrored`]).
    Open {
        rx: Receiver,
        deflate: Option<Agreement>,
    },
    /// We sent Close; waiting for the server's.
    Closing { rx: Receiver },
    /// Both Close frames are sent: whatever else arrives is discarded.
    Closed,
}

/// One client connection's protocol state: 48 bytes, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConnection {
    phase: Phase,
}

/// What a client's messages are built with, shared by every connection of a process:
/// one frame buffer, reused, and with permessage-deflate the codec (the same one a
/// server reactor shares), which compresses what is sent and inflates what arrives.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The frame being built.
    pub frame: Vec<u8>,
    /// permessage-deflate's compressor and decompressor, when it is offered.
    pub deflate: Option<Codec>,
}

impl ClientConnection {
    /// Sends the opening request for `path` on `host` with the `Sec-WebSocket-Key`
    /// `key` (see `handshake::client_key`), offering permessage-deflate if `offer`
    /// (then [`poll`](Self::poll) must be given a `config` with `deflate` set).
    pub fn start(
        host: &str,
        path: &str,
        key: [u8; 24],
        offer: Option<Offer>,
        tx: &mut impl Transmit,
    ) -> Self {
        let extensions = offer.map(Offer::value);
        tx.transmit(
            &client_request(host, path, &key, extensions.as_deref()),
            &[],
        );
        ClientConnection {
            phase: Phase::Handshake { key, offer },
        }
    }

    /// What permessage-deflate was agreed, seen from the client's end
    /// ([`Agreement::mirrored`]: what the codec's per-connection calls take for this
    /// connection), once open.
    pub fn deflate(&self) -> Option<Agreement> {
        match self.phase {
            Phase::Open { deflate, .. } => deflate,
            _ => None,
        }
    }

    /// Whether the opening handshake is done and no Close was sent.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// Whether our closing handshake has its answer, so the server's EOF is the clean
    /// end of the connection (any other EOF is not).
    pub fn close_answered(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Consumes bytes from the front of `data` (all input not consumed before, of which
    /// the first `scanned` bytes were seen by an earlier call) and returns how many,
    /// with the event they completed if any; `(0, None)` means more input is needed.
    /// `mask` masks a Pong or Close this call may send (§5.3: a fresh key per frame).
    /// Inlined into the load's read loop, where it runs once per frame (the load's
    /// generic connection left it a call of its own: 8% more instructions per echo).
    #[inline]
    pub fn poll<'a>(
        &mut self,
        data: &'a mut [u8],
        scanned: usize,
        config: &ReceiverConfig,
        mask: [u8; 4],
        tx: &mut impl Transmit,
    ) -> Result<(usize, Option<Event<'a>>), ClientError> {
        debug_assert_eq!(config.role, Role::Client);
        let (rx, closing) = match &mut self.phase {
            Phase::Handshake { key, offer } => {
                let mut storage = [Header::default(); MAX_HEADERS];
                let Some((response, n)) =
                    parse_response(data, scanned, &mut storage).map_err(ClientError::Http)?
                else {
                    return Ok((0, None));
                };
                check_response(&response, key).map_err(ClientError::Handshake)?;
                let agreed = check_answer(&response.headers, *offer);
                let deflate = agreed.map_err(ClientError::Extension)?;
                // Bytes after the head are the start of the frame stream.
                self.phase = Phase::Open {
                    rx: Receiver::default(),
                    deflate: deflate.map(Agreement::mirrored),
                };
                return Ok((n, Some(Event::Opened)));
            }
            Phase::Open { rx, .. } => (rx, false),
            Phase::Closing { rx } => (rx, true),
            Phase::Closed => return Ok((data.len(), None)),
        };
        let (n, event) = rx.poll(config, data).map_err(ClientError::Protocol)?;
        let Some(event) = event else {
            return Ok((n, None));
        };
        if closing {
            // After our Close only the server's Close matters (§5.5.1): no pongs, and
            // data still in flight is not ours to check any more.
            if let receiver::Event::Close(_) = event {
                self.phase = Phase::Closed;
                return Ok((n, Some(Event::CloseAnswered)));
            }
            return Ok((n, None));
        }
        let event = match event {
            receiver::Event::Data(chunk) => Some(Event::Data(chunk)),
            // §5.5.2: a Pong carries the Ping's payload.
            receiver::Event::Ping(body) => {
                send(OpCode::Pong, mask, body, tx);
                None
            }
            // §5.5.3: unsolicited Pongs are allowed and ignored.
            receiver::Event::Pong(_) => None,
            receiver::Event::Close(body) => {
                let (reply, len) = match body.code {
                    Some(code) => encode_close_payload(code, body.reason),
                    None => ([0; 125], 0),
                };
                send(OpCode::Close, mask, &reply[..len], tx);
                self.phase = Phase::Closed;
                Some(Event::PeerClosed(body.code))
            }
        };
        Ok((n, event))
    }

    /// Sends one whole data message of `len` bytes that `fill` writes, masked with
    /// `mask`, built in `scratch` (the caller's, reused): compressed, in a frame with
    /// RSV1 set (RFC 7692 §6), when `scratch` has a codec and deflate was agreed, with
    /// the context the codec keeps for the caller's `id` of this connection if the
    /// agreement keeps one. Nothing once closing.
    // The id goes with the scratch it names a context in; bundling the two for one
    // call would only hide that.
    #[allow(clippy::too_many_arguments)]
    pub fn send_message(
        &self,
        opcode: OpCode,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
        mask: [u8; 4],
        id: usize,
        scratch: &mut Scratch,
        tx: &mut impl Transmit,
    ) {
        if !self.is_open() {
            return;
        }
        let frame = &mut scratch.frame;
        frame.clear();
        match (&mut scratch.deflate, self.deflate()) {
            (Some(codec), Some(agreement)) => {
                frame.resize(len, 0);
                fill(frame);
                // The agreed window (15 unless the server answered
                // client_max_window_bits, §7.1.2.2), after this connection's context
                // if it keeps one.
                let compressed = codec.compress_for(id, agreement, frame);
                frame.clear();
                encode_frame(frame, true, opcode, Some(mask), compressed.len(), |p| {
                    p.copy_from_slice(compressed)
                });
                frame[0] |= RSV1;
            }
            _ => encode_frame(frame, true, opcode, Some(mask), len, fill),
        }
        tx.transmit(frame, &[]);
    }

    /// Starts the closing handshake with `code` (only while open).
    pub fn close(&mut self, code: CloseCode, mask: [u8; 4], tx: &mut impl Transmit) {
        if let Phase::Open { rx, .. } = self.phase {
            let (body, len) = encode_close_payload(code, "");
            send(OpCode::Close, mask, &body[..len], tx);
            self.phase = Phase::Closing { rx };
        }
    }
}

/// Sends a control frame (rare: pongs and the one Close).
fn send(opcode: OpCode, mask: [u8; 4], body: &[u8], tx: &mut impl Transmit) {
    let mut frame = Vec::with_capacity(14 + body.len());
    encode_frame(&mut frame, true, opcode, Some(mask), body.len(), |p| {
        p.copy_from_slice(body)
    });
    tx.transmit(&frame, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::deadline::Tick;
    use crate::protocol::deadline::Timeouts;
    use crate::protocol::handshake::{client_key, Policy};
    use crate::protocol::server::{self, ServerConfig, ServerConnection};

    const CLIENT: ReceiverConfig = ReceiverConfig {
        role: Role::Client,
        max_message_size: 1 << 20,
        deflate: false,
    };

    /// Runs `data` through a server core that echoes every whole frame; returns what
    /// it sent back.
    fn server_answers(server: &mut ServerConnection, data: &mut Vec<u8>, now: Tick) -> Vec<u8> {
        let config = ServerConfig {
            policy: Policy::default(),
            max_message_size: 1 << 20,
            timeouts: Timeouts::default(),
        };
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let (n, event) = server
                .handle_read(&mut data[pos..], 0, &config, now, &mut out)
                .unwrap();
            pos += n;
            match event {
                Some(server::Event::Request { upgrade, .. }) => {
                    let answer = server::Answer::Accept(upgrade.expect("a valid upgrade"));
                    server.handle_answer(answer, now, &mut out).unwrap()
                }
                Some(server::Event::Data(chunk)) => {
                    assert!(chunk.starts_frame() && chunk.ends_frame());
                    let payload = chunk.payload.to_vec();
                    server
                        .send(chunk.opcode, chunk.fin, &payload, &mut out)
                        .unwrap();
                }
                Some(_) => {}
                None if n == 0 => break,
                None => {}
            }
        }
        data.drain(..pos);
        out
    }

    /// The two roles of the core talk to each other in memory (quinn-proto's way):
    /// handshake, an echo, a Ping answered, and a clean closing handshake.
    #[test]
    fn a_client_and_a_server_core_complete_a_whole_conversation() {
        let mut server = ServerConnection::new(0, ());
        let mut to_server = Vec::new();
        let mut client = ClientConnection::start(
            "127.0.0.1:9",
            "/echo",
            client_key([5; 16]),
            None,
            &mut to_server,
        );
        let mut to_client = server_answers(&mut server, &mut to_server, 0);
        assert!(server.is_open());
        let (n, event) = client
            .poll(&mut to_client, 0, &CLIENT, [1; 4], &mut to_server)
            .unwrap();
        assert_eq!(event, Some(Event::Opened));
        assert_eq!(n, to_client.len());

        let mut scratch = Scratch::default();
        client.send_message(
            OpCode::Text,
            5,
            |p| p.copy_from_slice(b"hello"),
            [9, 8, 7, 6],
            0,
            &mut scratch,
            &mut to_server,
        );
        let mut to_client = server_answers(&mut server, &mut to_server, 1);
        let (header, event) = client
            .poll(&mut to_client, 0, &CLIENT, [1; 4], &mut to_server)
            .unwrap();
        assert_eq!((header, event), (2, None), "the frame header first");
        let (n, event) = client
            .poll(&mut to_client[2..], 0, &CLIENT, [1; 4], &mut to_server)
            .unwrap();
        let Some(Event::Data(chunk)) = event else {
            panic!("{event:?}");
        };
        assert_eq!((chunk.payload, chunk.ends_message()), (&b"hello"[..], true));
        assert_eq!(header + n, to_client.len());

        // A heartbeat Ping from the server is answered with a masked Pong.
        let mut ping = Vec::new();
        assert_eq!(
            server.handle_timeout(31, &Timeouts::default(), &mut ping),
            Ok(Some(server::Timeout::Ping))
        );
        let (_, event) = client
            .poll(&mut ping, 0, &CLIENT, [2; 4], &mut to_server)
            .unwrap();
        assert_eq!(event, None);
        assert_eq!(server_answers(&mut server, &mut to_server, 31), b"");

        client.close(CloseCode::NORMAL, [3; 4], &mut to_server);
        assert!(!client.is_open());
        let mut to_client = server_answers(&mut server, &mut to_server, 32);
        assert!(!server.is_open(), "the server answered our Close");
        let (_, event) = client
            .poll(&mut to_client, 0, &CLIENT, [4; 4], &mut to_server)
            .unwrap();
        assert_eq!(event, Some(Event::CloseAnswered));
        assert!(client.close_answered());
        assert!(to_server.is_empty(), "nothing after our Close");
    }

    /// permessage-deflate in the client role against the server core: the offer is
    /// agreed, a message goes out compressed (RSV1) and inflates to what was sent; a
    /// server that declines fails the handshake, as the client asked for compression.
    #[test]
    fn a_client_offers_deflate_and_compresses_what_it_sends() {
        let deflating = ReceiverConfig {
            deflate: true,
            ..CLIENT
        };
        let mut server = ServerConnection::new(0, ());
        let config = ServerConfig {
            policy: Policy {
                deflate: true,
                ..Policy::default()
            },
            max_message_size: 1 << 20,
            timeouts: Timeouts::default(),
        };
        let mut to_server = Vec::new();
        let mut client = ClientConnection::start(
            "h",
            "/",
            client_key([6; 16]),
            Some(Offer::SHARED),
            &mut to_server,
        );
        let mut to_client = Vec::new();
        let request_len = to_server.len();
        let (n, event) = server
            .handle_read(&mut to_server, 0, &config, 0, &mut to_client)
            .unwrap();
        let Some(server::Event::Request { upgrade, .. }) = event else {
            panic!("{event:?}");
        };
        assert_eq!(n, request_len);
        let answer = server::Answer::Accept(upgrade.expect("a valid upgrade"));
        server.handle_answer(answer, 0, &mut to_client).unwrap();
        let (_, event) = client
            .poll(&mut to_client, 0, &deflating, [1; 4], &mut Vec::new())
            .unwrap();
        assert_eq!(event, Some(Event::Opened));

        let mut scratch = Scratch {
            deflate: Some(Codec::default()),
            ..Scratch::default()
        };
        let text = "a compressible message, ".repeat(40);
        let mut to_server = Vec::new();
        client.send_message(
            OpCode::Text,
            text.len(),
            |p| p.copy_from_slice(text.as_bytes()),
            [9, 8, 7, 6],
            0,
            &mut scratch,
            &mut to_server,
        );
        assert_eq!(to_server[0], 0x80 | RSV1 | OpCode::Text.as_u8());
        assert!(
            to_server.len() < text.len() / 4,
            "{} bytes",
            to_server.len()
        );
        let mut pos = 0;
        let mut compressed = Vec::new();
        while pos < to_server.len() {
            let (n, event) = server
                .handle_read(&mut to_server[pos..], 0, &config, 1, &mut Vec::new())
                .unwrap();
            pos += n;
            if let Some(server::Event::Data(chunk)) = event {
                assert!(chunk.compressed);
                compressed.extend_from_slice(chunk.payload);
            }
        }
        let codec = scratch.deflate.as_mut().unwrap();
        assert_eq!(
            codec.inflate(&compressed, true, 1 << 20).unwrap(),
            text.as_bytes()
        );

        // The same offer to a server without deflate: declined, so the handshake fails.
        let mut plain = ServerConnection::new(0, ());
        let mut to_server = Vec::new();
        let mut client = ClientConnection::start(
            "h",
            "/",
            client_key([7; 16]),
            Some(Offer::SHARED),
            &mut to_server,
        );
        let mut to_client = server_answers(&mut plain, &mut to_server, 0);
        assert!(plain.is_open());
        assert_eq!(
            client.poll(&mut to_client, 0, &deflating, [1; 4], &mut Vec::new()),
            Err(ClientError::Extension(ExtensionError::Declined))
        );
    }

    #[test]
    fn a_client_connection_is_its_receiver_and_a_tag() {
        assert_eq!(std::mem::size_of::<ClientConnection>(), 48);
    }

    #[test]
    fn a_refusal_and_a_wrong_accept_fail_the_handshake() {
        let mut out = Vec::new();
        let mut client = ClientConnection::start("h", "/", client_key([1; 16]), None, &mut out);
        let mut refused = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec();
        assert_eq!(
            client.poll(&mut refused, 0, &CLIENT, [0; 4], &mut out),
            Err(ClientError::Handshake(ResponseError::Refused(503)))
        );
        let mut partial = b"HTTP/1.1 101 Switching".to_vec();
        assert_eq!(
            client.poll(&mut partial, 0, &CLIENT, [0; 4], &mut out),
            Ok((0, None))
        );
    }

    #[test]
    fn a_server_close_is_answered_with_its_code() {
        let mut server = ServerConnection::new(0, ());
        let mut to_server = Vec::new();
        let mut client =
            ClientConnection::start("h", "/", client_key([5; 16]), None, &mut to_server);
        let mut to_client = server_answers(&mut server, &mut to_server, 0);
        client
            .poll(&mut to_client, 0, &CLIENT, [1; 4], &mut to_server)
            .unwrap();
        let mut close = Vec::new();
        assert_eq!(
            server.go_away(0, &mut close),
            Ok(Some(CloseCode::GOING_AWAY))
        );
        let (_, event) = client
            .poll(&mut close, 0, &CLIENT, [1; 4], &mut to_server)
            .unwrap();
        assert_eq!(event, Some(Event::PeerClosed(Some(CloseCode::GOING_AWAY))));
        assert!(client.close_answered(), "only the server's EOF is left");
        let echoed = 2 + "server shutting down".len() as u8;
        assert_eq!(
            &to_server[..2],
            &[0x88, 0x80 | echoed],
            "a masked Close echoing the code and the reason"
        );
    }
}
