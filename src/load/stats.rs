//! What one load process measures and how it tells the parent: failure reasons,
//! counters, latency histograms, and the JSON-line messages a worker writes to stdout.
//!
//! Everything here is plain data with serde: a worker and the parent agree on these
//! types, and the parent merges them (see `report.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency a histogram holds (one hour, in microseconds); larger values are
/// recorded as this (timeouts are far shorter, so nothing real is clipped).
pub const HIST_MAX_US: u64 = 3_600_000_000;

/// Why a connection did not make it, or stopped being live before its hold ended.
///
/// Serialized as a short snake_case name (e.g. `handshake_rejected_503`) so it can be a
/// JSON object key and read by scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Failure {
    /// ECONNREFUSED: nothing listens, or the accept queue is full and the server resets.
    ConnectRefused,
    /// No connection (or the kernel's own ETIMEDOUT) within `--connect-timeout`.
    ConnectTimeout,
    /// EADDRNOTAVAIL/EADDRINUSE: the source address ran out of ephemeral ports for
    /// this destination.
    PortsExhausted,
    /// EMFILE/ENFILE: this process (or the system) is out of file descriptors.
    FdLimit,
    /// Any other errno from socket/bind/connect.
    ConnectErrno(i32),
    /// Connected, but no complete 101 response within `--connect-timeout`.
    HandshakeTimeout,
    /// The server answered the upgrade with this non-101 status.
    HandshakeRejected(u16),
    /// A 101 whose `Sec-WebSocket-Accept` does not match our key.
    BadAccept,
    /// A malformed response head, or a 101 without `Upgrade`/`Connection`.
    BadHandshake,
    /// An echo came back different from what was sent (bytes or opcode).
    EchoMismatch,
    /// An echo did not come back within `--echo-timeout`.
    EchoTimeout,
    /// A data message arrived while no echo was outstanding.
    UnexpectedMessage,
    /// Chat: a member got a message other than the next one in sequence (one was lost,
    /// reordered or duplicated, or a stranger spoke in the room).
    ChatOutOfOrder,
    /// Chat: a message's bytes or opcode differ from what the sender sent.
    ChatMismatch,
    /// The server sent a Close frame (with this code; 1005 for none) before our hold ended.
    ServerClose(u16),
    /// The server closed the TCP connection without a Close frame.
    ServerEof,
    /// ECONNRESET/EPIPE/ECONNABORTED.
    Reset,
    /// The server broke RFC 6455 (masked frame, bad opcode, bad UTF-8, ...).
    ProtocolError,
    /// The server stopped reading: our pending output passed its cap.
    SendStalled,
    /// Any other errno on an established socket.
    IoErrno(i32),
}

impl Failure {
    /// Whether this failure means an echo went wrong (these always fail the run).
    pub fn is_echo(self) -> bool {
        matches!(
            self,
            Failure::EchoMismatch
                | Failure::EchoTimeout
                | Failure::UnexpectedMessage
                | Failure::ChatOutOfOrder
                | Failure::ChatMismatch
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ConnectRefused => f.write_str("connect_refused"),
            Failure::ConnectTimeout => f.write_str("connect_timeout"),
            Failure::PortsExhausted => f.write_str("ports_exhausted"),
            Failure::FdLimit => f.write_str("fd_limit"),
            Failure::ConnectErrno(e) => write!(f, "connect_errno_{e}"),
            Failure::HandshakeTimeout => f.write_str("handshake_timeout"),
            Failure::HandshakeRejected(s) => write!(f, "handshake_rejected_{s}"),
            Failure::BadAccept => f.write_str("bad_accept"),
            Failure::BadHandshake => f.write_str("bad_handshake"),
            Failure::EchoMismatch => f.write_str("echo_mismatch"),
            Failure::EchoTimeout => f.write_str("echo_timeout"),
            Failure::UnexpectedMessage => f.write_str("unexpected_message"),
            Failure::ChatOutOfOrder => f.write_str("chat_out_of_order"),
            Failure::ChatMismatch => f.write_str("chat_mismatch"),
            Failure::ServerClose(c) => write!(f, "server_close_{c}"),
            Failure::ServerEof => f.write_str("closed_by_server"),
            Failure::Reset => f.write_str("reset_by_server"),
            Failure::ProtocolError => f.write_str("protocol_error"),
            Failure::SendStalled => f.write_str("send_stalled"),
            Failure::IoErrno(e) => write!(f, "io_errno_{e}"),
        }
    }
}

impl FromStr for Failure {
    type Err = String;

    fn from_str(s: &str) -> Result<Failure, String> {
        fn number<T: FromStr>(s: &str, prefix: &str) -> Option<T> {
            s.strip_prefix(prefix).and_then(|n| n.parse().ok())
        }
        Ok(match s {
            "connect_refused" => Failure::ConnectRefused,
            "connect_timeout" => Failure::ConnectTimeout,
            "ports_exhausted" => Failure::PortsExhausted,
            "fd_limit" => Failure::FdLimit,
            "handshake_timeout" => Failure::HandshakeTimeout,
            "bad_accept" => Failure::BadAccept,
            "bad_handshake" => Failure::BadHandshake,
            "echo_mismatch" => Failure::EchoMismatch,
            "echo_timeout" => Failure::EchoTimeout,
            "unexpected_message" => Failure::UnexpectedMessage,
            "chat_out_of_order" => Failure::ChatOutOfOrder,
            "chat_mismatch" => Failure::ChatMismatch,
            "closed_by_server" => Failure::ServerEof,
            "reset_by_server" => Failure::Reset,
            "protocol_error" => Failure::ProtocolError,
            "send_stalled" => Failure::SendStalled,
            _ => {
                if let Some(e) = number(s, "connect_errno_") {
                    Failure::ConnectErrno(e)
                } else if let Some(e) = number(s, "io_errno_") {
                    Failure::IoErrno(e)
                } else if let Some(s) = number(s, "handshake_rejected_") {
                    Failure::HandshakeRejected(s)
                } else if let Some(c) = number(s, "server_close_") {
                    Failure::ServerClose(c)
                } else {
                    return Err(format!("unknown failure reason {s:?}"));
                }
            }
        })
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.to_string()
    }
}

impl TryFrom<String> for Failure {
    type Error = String;

    fn try_from(s: String) -> Result<Failure, String> {
        s.parse()
    }
}

/// Counts kept by one process (and, summed, by the parent). `open` and `pending` are
/// gauges; everything else only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Connection attempts started (a socket was created, or creating it failed).
    pub attempted: u64,
    /// Handshakes completed: 101 with the right accept value.
    pub established: u64,
    /// Connections whose first echo came back byte for byte.
    pub verified: u64,
    /// Established and not yet ended, now.
    pub open: u64,
    /// Attempted and not yet verified or ended, now.
    pub pending: u64,
    /// Closes we started and still wait on, now.
    pub closing: u64,
    /// Echoes that came back intact (the verification echo included).
    pub echoes: u64,
    /// Chat: messages the sender sent.
    pub chat_sent: u64,
    /// Chat: messages members received whole and intact (one per member per message).
    pub deliveries: u64,
    /// Closes we started that ended with the server's Close and then its EOF.
    pub closed_clean: u64,
    /// Closes we started that the server did not finish within `--close-timeout`.
    pub close_timeout: u64,
    /// Closes we started that ended in EOF without a Close frame, or in an error.
    pub close_unclean: u64,
    /// Connections dropped unfinished because the run was interrupted.
    pub aborted: u64,
    pub failures: BTreeMap<Failure, u64>,
}

impl Counters {
    pub fn fail(&mut self, why: Failure) {
        *self.failures.entry(why).or_default() += 1;
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Adds another process's counters to these.
    pub fn merge(&mut self, other: &Counters) {
        self.attempted += other.attempted;
        self.established += other.established;
        self.verified += other.verified;
        self.open += other.open;
        self.pending += other.pending;
        self.closing += other.closing;
        self.echoes += other.echoes;
        self.chat_sent += other.chat_sent;
        self.deliveries += other.deliveries;
        self.closed_clean += other.closed_clean;
        self.close_timeout += other.close_timeout;
        self.close_unclean += other.close_unclean;
        self.aborted += other.aborted;
        for (why, n) in &other.failures {
            *self.failures.entry(*why).or_default() += n;
        }
    }
}

/// A fresh latency histogram: 1 µs to [`HIST_MAX_US`], 3 significant digits. Every
/// histogram uses these bounds so that merging never fails.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid fixed bounds")
}

/// A histogram as base64 of its HdrHistogram V2 encoding (compact and portable).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into a Vec cannot fail");
    BASE64.encode(bytes)
}

pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = BASE64
        .decode(s)
        .map_err(|e| format!("histogram base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("histogram: {e:?}"))
}

/// Everything one process measured, sent once at its end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerFinal {
    pub counters: Counters,
    /// Connections open when the hold began (all of them were open at that moment).
    pub open_at_hold_start: u64,
    /// Attempts never started because the run was stopped first.
    pub not_attempted: u64,
    /// Established connections per source address index (global order of `--sources`).
    pub per_source: Vec<u64>,
    /// Connect start → 101 verified, µs ([`encode_histogram`]).
    pub handshake_us: String,
    /// Echo round trips, µs ([`encode_histogram`]).
    pub echo_rtt_us: String,
    /// Chat mode: the room's result.
    pub chat: Option<ChatFinal>,
}

/// What a chat run measured (the message counts are in [`Counters`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatFinal {
    /// Members when the sender began.
    pub members: u64,
    /// Members that received every message.
    pub members_complete: u64,
    /// Messages the sender was to send.
    pub messages: u64,
    /// First message sent → last delivery, seconds.
    pub secs: f64,
    /// Send → whole message received by a member, µs, one per delivery
    /// ([`encode_histogram`]).
    pub delivery_us: String,
}

/// One line a worker writes to its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMsg {
    /// Periodic counters.
    Progress { counters: Counters },
    /// Every attempt of this worker has settled; it waits for `go` to start the hold.
    Ramped { counters: Counters },
    /// The worker's last line.
    Final(Box<WorkerFinal>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_round_trip() {
        for f in [
            Failure::ConnectRefused,
            Failure::ConnectTimeout,
            Failure::PortsExhausted,
            Failure::FdLimit,
            Failure::ConnectErrno(101),
            Failure::HandshakeTimeout,
            Failure::HandshakeRejected(503),
            Failure::BadAccept,
            Failure::BadHandshake,
            Failure::EchoMismatch,
            Failure::EchoTimeout,
            Failure::UnexpectedMessage,
            Failure::ChatOutOfOrder,
            Failure::ChatMismatch,
            Failure::ServerClose(1001),
            Failure::ServerEof,
            Failure::Reset,
            Failure::ProtocolError,
            Failure::SendStalled,
            Failure::IoErrno(5),
        ] {
            assert_eq!(f.to_string().parse::<Failure>(), Ok(f), "{f}");
        }
        assert!("nonsense".parse::<Failure>().is_err());
        assert!("server_close_x".parse::<Failure>().is_err());
    }

    #[test]
    fn counters_merge_and_serialize_with_named_reasons() {
        let mut a = Counters {
            attempted: 3,
            established: 2,
            verified: 2,
            ..Counters::default()
        };
        a.fail(Failure::ConnectRefused);
        let mut b = Counters {
            attempted: 5,
            open: 4,
            ..Counters::default()
        };
        b.fail(Failure::ConnectRefused);
        b.fail(Failure::HandshakeRejected(503));
        a.merge(&b);
        assert_eq!((a.attempted, a.established, a.open), (8, 2, 4));
        assert_eq!(a.failed(), 3);
        assert_eq!(a.failures[&Failure::ConnectRefused], 2);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains(r#""handshake_rejected_503":1"#), "{json}");
        assert_eq!(serde_json::from_str::<Counters>(&json).unwrap(), a);
    }

    #[test]
    fn histograms_survive_the_wire_and_merge() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=1000u64 {
            a.record(v).unwrap();
            b.record(v * 1000).unwrap();
        }
        b.saturating_record(u64::MAX);
        let a2 = decode_histogram(&encode_histogram(&a)).unwrap();
        let b2 = decode_histogram(&encode_histogram(&b)).unwrap();
        assert_eq!((a2.len(), a2.max()), (a.len(), a.max()));
        let mut merged = new_histogram();
        merged.add(&a2).unwrap();
        merged.add(&b2).unwrap();
        assert_eq!(merged.len(), 2001);
        assert_eq!(merged.min(), 1);
        assert!(merged.max() >= HIST_MAX_US - HIST_MAX_US / 1000);
        // The median of 1..1000 ∪ 1000..1e6 sits at the join.
        let p50 = merged.value_at_quantile(0.5);
        assert!((990..=1010).contains(&p50), "{p50}");
        assert!(decode_histogram("not base64!").is_err());
    }

    #[test]
    fn worker_messages_are_tagged_json_lines() {
        let msg = WorkerMsg::Progress {
            counters: Counters::default(),
        };
        let line = serde_json::to_string(&msg).unwrap();
        assert!(line.starts_with(r#"{"type":"progress""#), "{line}");
        assert!(!line.contains('\n'));
        let back: WorkerMsg = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, WorkerMsg::Progress { .. }));
        let fin = WorkerMsg::Final(Box::new(WorkerFinal {
            counters: Counters::default(),
            open_at_hold_start: 7,
            not_attempted: 0,
            per_source: vec![1, 2],
            handshake_us: encode_histogram(&new_histogram()),
            echo_rtt_us: encode_histogram(&new_histogram()),
            chat: None,
        }));
        let line = serde_json::to_string(&fin).unwrap();
        let WorkerMsg::Final(f) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}");
        };
        assert_eq!(
            (f.open_at_hold_start, f.per_source.clone()),
            (7, vec![1, 2])
        );
    }
}
