//! Close status codes (RFC 6455 §7.4): what a Close frame carries, and what each of the
//! protocol's errors is reported with. A file of its own so that the errors (which map to
//! a code) and the Close bodies (whose parsing fails with an error) both depend on it
//! rather than on each other.

/// A close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled (§7.4.1).
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: an endpoint is going away, e.g. a server shutting down (§7.4.1).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol (§7.4.1).
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1007: a message's data does not match its type, e.g. text that is not UTF-8
    /// (§7.4.1, §8.1).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy (§7.4.1).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process (§7.4.1).
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// Never on the wire (§7.4.1): stands for a Close frame without a status code.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// Never on the wire (§7.4.1): stands for a connection that ended without a Close.
    pub const ABNORMAL: CloseCode = CloseCode(1006);

    /// Whether a peer may put this code on the wire (§7.4.1, §7.4.2, IANA registry):
    /// 1004–1006 and 1015 are reserved for local use, 1016–2999 are unassigned, 0–999
    /// and 5000+ are not used; 3000–4999 belong to libraries and applications.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes_follow_rfc_and_iana() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(CloseCode(ok).is_sendable(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(bad).is_sendable(), "{bad}");
        }
    }
}
