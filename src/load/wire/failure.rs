//! Why a load connection failed, by name: every reason a connection did not make it,
//! or stopped being live before its hold ended, with the stable snake_case name the
//! reports and scripts use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
    /// `--deflate`: the 101 did not accept permessage-deflate (the server runs without
    /// it); the run does not go on uncompressed.
    DeflateDeclined,
    /// The 101 answered with an extension, or extension parameters, that were not
    /// offered (RFC 6455 §4.1, RFC 7692 §7.1).
    BadExtension,
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
    /// `--tls`: the server's certificate was not accepted (not signed by `--ca`, or not
    /// for the target's address).
    TlsCertificate,
    /// `--tls`: the TLS handshake or a record failed otherwise (an alert from the server,
    /// a bad record).
    TlsFailed,
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
            Failure::DeflateDeclined => f.write_str("deflate_declined"),
            Failure::BadExtension => f.write_str("bad_extension"),
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
            Failure::TlsCertificate => f.write_str("tls_bad_certificate"),
            Failure::TlsFailed => f.write_str("tls_failed"),
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
            "deflate_declined" => Failure::DeflateDeclined,
            "bad_extension" => Failure::BadExtension,
            "echo_mismatch" => Failure::EchoMismatch,
            "echo_timeout" => Failure::EchoTimeout,
            "unexpected_message" => Failure::UnexpectedMessage,
            "chat_out_of_order" => Failure::ChatOutOfOrder,
            "chat_mismatch" => Failure::ChatMismatch,
            "closed_by_server" => Failure::ServerEof,
            "reset_by_server" => Failure::Reset,
            "protocol_error" => Failure::ProtocolError,
            "send_stalled" => Failure::SendStalled,
            "tls_bad_certificate" => Failure::TlsCertificate,
            "tls_failed" => Failure::TlsFailed,
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
            Failure::DeflateDeclined,
            Failure::BadExtension,
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
            Failure::TlsCertificate,
            Failure::TlsFailed,
        ] {
            assert_eq!(f.to_string().parse::<Failure>(), Ok(f), "{f}");
        }
        assert!("nonsense".parse::<Failure>().is_err());
        assert!("server_close_x".parse::<Failure>().is_err());
    }
}
