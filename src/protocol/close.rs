//! Close frame bodies (RFC 6455 §5.5.1): parsing the peer's, encoding ours. The status
//! codes they carry are [`CloseCode`]s (`close_code.rs`, re-exported here), which the
//! protocol's errors map to as well.

pub use super::close_code::CloseCode;
use super::error::ProtocolError;

/// A parsed Close frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseBody<'a> {
    /// `None` for an empty body: the peer gave no status (§7.1.5, 1005 locally).
    pub code: Option<CloseCode>,
    /// The reason, valid UTF-8 (§5.5.1); empty if none was given.
    pub reason: &'a str,
}

impl<'a> CloseBody<'a> {
    /// Parses and validates an (unmasked) Close payload (§5.5.1).
    pub fn parse(payload: &'a [u8]) -> Result<CloseBody<'a>, ProtocolError> {
        match payload {
            [] => Ok(CloseBody {
                code: None,
                reason: "",
            }),
            [_] => Err(ProtocolError::InvalidCloseCode),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode);
                }
                let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
                Ok(CloseBody {
                    code: Some(code),
                    reason,
                })
            }
        }
    }
}

/// Encodes a Close payload (code, then a reason truncated to fit a control frame).
pub fn encode_close_payload(code: CloseCode, reason: &str) -> ([u8; 125], usize) {
    let mut out = [0u8; 125];
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    let mut n = reason.len().min(123);
    while !reason.is_char_boundary(n) {
        n -= 1;
    }
    out[2..2 + n].copy_from_slice(&reason.as_bytes()[..n]);
    (out, 2 + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_bodies_parse_and_fail_with_the_right_error() {
        assert_eq!(CloseBody::parse(&[]).unwrap().code, None);
        assert_eq!(CloseBody::parse(&[3]), Err(ProtocolError::InvalidCloseCode));
        let ok = CloseBody::parse(&[0x03, 0xE8, b'b', b'y', b'e']).unwrap();
        assert_eq!((ok.code, ok.reason), (Some(CloseCode::NORMAL), "bye"));
        assert_eq!(
            CloseBody::parse(&[0x03, 0xED]),
            Err(ProtocolError::InvalidCloseCode)
        );
        assert_eq!(
            CloseBody::parse(&[0x03, 0xE8, 0xCE, 0xBA, 0xE1]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn encoded_reason_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(100);
        let (buf, n) = encode_close_payload(CloseCode::GOING_AWAY, &long);
        assert!(n <= 125);
        let body = CloseBody::parse(&buf[..n]).unwrap();
        assert_eq!(body.code, Some(CloseCode::GOING_AWAY));
        assert!(long.starts_with(body.reason) && !body.reason.is_empty());
    }
}
