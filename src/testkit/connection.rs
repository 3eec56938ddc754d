//! The `connection` fuzz target: a whole server connection, sans-IO, over memory.

use std::sync::OnceLock;

use super::frame::{receive, receive_counting, Seen};
use super::memory::{Harness, Step};
use super::Input;
use crate::protocol::handshake::{accept_key, check_request};
use crate::protocol::http::{parse_request, parse_response, Header, MAX_HEADERS};
use crate::protocol::receiver::{ReceiverConfig, Role};
use crate::server::routes::{route, Route};
use crate::server::Config;

/// The server configurations the `connection` target picks from (flags bits 0–1).
fn connection_config(pick: u8) -> Config {
    static CONFIGS: OnceLock<[Config; 4]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [
            Config::from_args(&[]),
            Config::from_args(&["--max-message-size", "100"]),
            Config::from_args(&[
                "--allowed-origin",
                "https://ok.example",
                "--protocol",
                "chat",
            ]),
            // Deadlines that a few clock steps reach.
            Config::from_args(&[
                "--handshake-timeout",
                "2",
                "--ping-interval",
                "1",
                "--idle-timeout",
                "3",
                "--send-timeout",
                "2",
                "--max-message-size",
                "1000",
            ]),
        ]
    })[usize::from(pick & 3)]
    .clone()
}

/// The status our own protocol core gives the request at the start of `input`, or
/// `None` while its head is unfinished (what the connection must answer).
fn expected_status(input: &[u8], config: &Config) -> Option<u16> {
    let mut storage = [Header::default(); MAX_HEADERS];
    match parse_request(input, 0, &mut storage) {
        Ok(None) => None,
        Err(e) => Some(e.status().0),
        Ok(Some((req, _))) => Some(match check_request(&req, &config.policy()) {
            Ok(upgrade) => match route(req.resource(), upgrade.is_some()) {
                Ok(_) => [200, 101][usize::from(upgrade.is_some())],
                Err(refusal) => refusal.status.0,
            },
            Err(e) => e.status().0,
        }),
    }
}

/// What the server must send back for what the client sent (RFC 6455 §5.5, §7):
/// every message as it came (echo, or a room of one), a Pong for each Ping with its
/// payload, a Close echoing the client's status code and reason (§5.5.1) or carrying the code of
/// the first violation (§7.4.1); nothing after that.
fn expected_replies(client: &[Seen]) -> Vec<Seen> {
    client
        .iter()
        .filter_map(|seen| match seen {
            Seen::Message(..) => Some(seen.clone()),
            Seen::Ping(p) => Some(Seen::Pong(p.clone())),
            Seen::Pong(_) => None,
            // The server echoes the code and its reason (a Close without a code has none).
            Seen::Close(code, reason) => Some(Seen::Close(*code, reason.clone())),
            // The reason names the violation (`ServerConnection::handle_read`).
            Seen::Error(e) => Some(Seen::Close(Some(e.close_code().0), e.to_string())),
        })
        .collect()
}

/// `connection`: the server's real `Connection` over the in-memory harness, with the
/// payload arriving in the pieces the steps choose. Flags: bits 0–1 pick the
/// configuration; bit 2 makes the client read slowly (64 bytes after each piece, the
/// rest at the end); bit 3 advances the clock a second after each piece; bit 4 ends
/// the client's side (EOF) after the last piece.
///
/// What the connection wrote must be one valid response head (the one our protocol
/// core decides for the request, with the right `Sec-WebSocket-Accept` for a 101) and,
/// after a 101, unmasked frames that a client decodes without error, nothing after a
/// Close. Without the clock, the frames must be exactly the replies
/// `expected_replies` derives from the client's frames. The gauges must match the
/// connection's state after every step.
pub fn connection(data: &[u8]) {
    let input = Input::new(data);
    let config = connection_config(input.flags);
    let (slow, clock, eof) = (
        input.flags & 4 != 0,
        input.flags & 8 != 0,
        input.flags & 16 != 0,
    );
    let max_message_size = config.max_message_size;
    let expected = expected_status(input.payload, &config);
    let mut h = Harness::new(config, if slow { 0 } else { usize::MAX });
    let check_gauges = |h: &Harness| {
        let stats = h.stats();
        assert_eq!(stats.connections, u64::from(h.is_alive()));
        assert_eq!(stats.websockets, u64::from(h.is_websocket()));
    };
    for piece in input.chunks() {
        h.step(Step::Input(piece));
        check_gauges(&h);
        if slow {
            h.step(Step::Read(64));
            check_gauges(&h);
        }
        if clock {
            h.step(Step::Advance(1));
            check_gauges(&h);
        }
    }
    if eof {
        h.step(Step::Eof);
        check_gauges(&h);
    }
    if slow {
        h.step(Step::Read(usize::MAX));
        check_gauges(&h);
    }
    // After the client's EOF nothing keeps a connection: it is dropped once the
    // output owed is written (and the client has read it all by now).
    if eof {
        assert!(!h.is_alive(), "held after EOF");
    }
    let bytes_out = h.stats().bytes_out_total;
    // A client that reads slowly while the clock runs can be dropped by a deadline
    // (send or close timeout) with output unsent: then what it got may stop anywhere.
    let cut_short = slow && clock && !h.is_alive() && h.stats().timeouts_total > 0;
    let written = h.written().to_vec();
    assert_eq!(
        bytes_out,
        written.len() as u64,
        "bytes_out_total counts what was written"
    );

    // The response head.
    let mut storage = [Header::default(); MAX_HEADERS];
    let Some((resp, head_len)) = parse_response(&written, 0, &mut storage)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&written)))
    else {
        // Nothing (or not yet a whole head) written: only while the request is unfinished.
        if cut_short {
            return;
        }
        assert!(
            written.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&written)
        );
        assert_eq!(expected, None, "a finished request gets an answer");
        return;
    };
    match expected {
        Some(status) => assert!(
            resp.status == status || (clock && resp.status == 408),
            "answered {} for {status}",
            resp.status
        ),
        None => assert!(
            clock && resp.status == 408,
            "answered {} early",
            resp.status
        ),
    }
    let after = &written[head_len..];
    if resp.status != 101 {
        // One response, then the connection closes (the server answers one request per
        // connection).
        assert!(resp.headers.has_token("connection", "close"));
        let length = resp.headers.get("content-length").expect("Content-Length");
        let length: usize = std::str::from_utf8(length).unwrap().parse().unwrap();
        assert!(length == after.len() || (cut_short && length > after.len()));
        assert!(!h.is_websocket());
        return;
    }
    // §4.2.2 step 5.4: the accept answers this request's key.
    let mut req_storage = [Header::default(); MAX_HEADERS];
    let (req, req_len) = parse_request(input.payload, 0, &mut req_storage)
        .expect("upgraded")
        .expect("complete");
    let key = req.headers.get("sec-websocket-key").expect("upgraded");
    assert_eq!(
        resp.headers.get("sec-websocket-accept"),
        Some(&accept_key(key)[..])
    );

    // The frames after it, as a client decodes them.
    let client_role = ReceiverConfig {
        role: Role::Client,
        max_message_size: u64::MAX,
        deflate: false,
    };
    let (replies, used) = receive_counting(&client_role, after, &[after.len()]);
    assert!(
        !replies.iter().any(|r| matches!(r, Seen::Error(_))),
        "the server sent an invalid frame: {replies:?}"
    );
    if matches!(replies.last(), Some(Seen::Close(..))) || !cut_short {
        assert_eq!(
            used,
            after.len(),
            "a partial frame, or bytes after Close: {replies:?}"
        );
    }
    if matches!(replies.last(), Some(Seen::Close(..))) {
        assert!(!h.is_websocket(), "§5.5.1: closing after sending Close");
    }
    if clock {
        return;
    }
    let server_role = ReceiverConfig {
        role: Role::Server,
        max_message_size,
        deflate: false,
    };
    let frames = &input.payload[req_len..];
    let sent = receive(&server_role, frames, &[frames.len()]);
    let expected = expected_replies(&sent);
    let chat = matches!(route(req.resource(), true), Ok(Route::Chat(_)));
    if !chat {
        assert_eq!(replies, expected, "client sent {sent:?}");
        return;
    }
    // A chat message reaches its room, this member included, when the reactor fans out
    // at the end of the read turn that completed it: a Pong, sent at once, may overtake
    // it, and a Close sent in that same turn comes first, after which nothing is sent
    // (§5.5.1). So: Pongs and the Close exactly; messages in order, the last ones missing
    // only before that Close.
    let is_message = |r: &&Seen| matches!(r, Seen::Message(..));
    let messages: Vec<&Seen> = replies.iter().filter(is_message).collect();
    let expected_messages: Vec<&Seen> = expected.iter().filter(is_message).collect();
    assert_eq!(
        replies
            .iter()
            .filter(|r| !is_message(r))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .filter(|r| !is_message(r))
            .collect::<Vec<_>>(),
        "client sent {sent:?}"
    );
    assert!(
        expected_messages.starts_with(&messages),
        "client sent {sent:?}, got {replies:?}"
    );
    if messages.len() < expected_messages.len() {
        assert!(
            matches!(replies.last(), Some(Seen::Close(..))),
            "{replies:?}"
        );
    }
}
