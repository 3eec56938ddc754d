//! The protocol layer's error: one variant per RFC 6455 violation, each knowing the
//! close code that reports it (RFC 6455 §7.4.1).

use std::fmt;

use super::close_code::CloseCode;

/// A violation by the peer that fails the WebSocket connection (RFC 6455 §7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// An RSV bit is set but no extension was negotiated that defines it (§5.2).
    ReservedBits,
    /// RSV1 (compressed) on a control frame or on a message's later frame: with
    /// permessage-deflate it belongs on a data message's first frame only (RFC 7692 §6,
    /// §6.1).
    MisplacedCompression,
    /// A compressed text message that does not inflate (RFC 7692 §6.2): reported as
    /// invalid payload, as its text cannot be valid UTF-8.
    BadCompressedText,
    /// A compressed binary message that does not inflate (RFC 7692 §6.2).
    BadCompressedBinary,
    /// Opcode 0x3–0x7 or 0xB–0xF (§5.2).
    ReservedOpCode,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    LengthTopBit,
    /// A client frame without a mask, or a server frame with one (§5.1).
    Masking,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlTooLong,
    /// A control frame without FIN (§5.5).
    FragmentedControl,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text/binary frame while a fragmented message is in progress (§5.4).
    ExpectedContinuation,
    /// A Close frame with a 1-byte body or a status code that may not be sent (§5.5.1, §7.4).
    InvalidCloseCode,
    /// A text message or close reason that is not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A message larger than the configured maximum.
    MessageTooBig,
}

impl ProtocolError {
    /// The close code this violation is reported with (§7.4.1).
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::BadCompressedText => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ProtocolError::ReservedBits => "RSV bits set without an extension",
            ProtocolError::MisplacedCompression => "RSV1 on a control or continuation frame",
            ProtocolError::BadCompressedText => "compressed text does not inflate",
            ProtocolError::BadCompressedBinary => "compressed message does not inflate",
            ProtocolError::ReservedOpCode => "reserved opcode",
            ProtocolError::LengthTopBit => "64-bit length with the top bit set",
            ProtocolError::Masking => "frame masking does not match the role",
            ProtocolError::ControlTooLong => "control frame over 125 bytes",
            ProtocolError::FragmentedControl => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "new message inside a fragmented one",
            ProtocolError::InvalidCloseCode => "invalid close frame",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::MessageTooBig => "message too big",
        };
        f.write_str(text)
    }
}

impl std::error::Error for ProtocolError {}
