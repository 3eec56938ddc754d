//! Why a TLS connection failed, by the reason `/stats` counts it under. rustls queues
//! the alert that tells the peer (RFC 8446 §6.2); [`Tls`](super::Tls) sends it.

use std::fmt;

/// A TLS failure: the peer's bytes were not acceptable TLS, or the handshake failed.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsError(pub rustls::Error);

impl TlsError {
    /// The reason a failed handshake is counted under (`handshakes_total{result=...}`),
    /// `tls_` and a word for what went wrong.
    pub fn reason(&self) -> &'static str {
        use rustls::{Error, InvalidMessage, PeerIncompatible, PeerMisbehaved};
        match &self.0 {
            // Not a TLS record at all: e.g. plain HTTP sent to the TLS port.
            Error::InvalidMessage(InvalidMessage::InvalidContentType)
            | Error::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => "tls_not_tls",
            Error::InvalidMessage(_) => "tls_bad_message",
            // Clients before TLS 1.2 send no signature_algorithms (RFC 5246 §7.4.1.4.1),
            // and rustls looks for it before it looks at the version.
            Error::PeerIncompatible(PeerIncompatible::SignatureAlgorithmsExtensionRequired)
            | Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered)
            | Error::PeerIncompatible(PeerIncompatible::Tls12NotOfferedOrEnabled)
            | Error::PeerIncompatible(PeerIncompatible::SupportedVersionsExtensionRequired) => {
                "tls_version"
            }
            Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon)
            | Error::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon)
            | Error::PeerIncompatible(PeerIncompatible::NoSignatureSchemesInCommon) => {
                "tls_no_common_cipher"
            }
            Error::PeerIncompatible(_) => "tls_incompatible",
            Error::PeerMisbehaved(PeerMisbehaved::TooManyEmptyFragments) | Error::DecryptError => {
                "tls_bad_record"
            }
            Error::PeerMisbehaved(_) => "tls_misbehaved",
            // A record of the wrong type for the handshake's state (e.g. application
            // data before the ClientHello): unexpected_message.
            Error::InappropriateMessage { .. } | Error::InappropriateHandshakeMessage { .. } => {
                "tls_unexpected_message"
            }
            Error::AlertReceived(_) => "tls_alert_received",
            _ => "tls_other",
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsError {}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> TlsError {
        TlsError(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_what_went_wrong() {
        use rustls::{Error, InvalidMessage, PeerIncompatible};
        let not_tls = TlsError(Error::InvalidMessage(InvalidMessage::InvalidContentType));
        assert_eq!(not_tls.reason(), "tls_not_tls");
        let old = TlsError(Error::PeerIncompatible(
            PeerIncompatible::SupportedVersionsExtensionRequired,
        ));
        assert_eq!(old.reason(), "tls_version");
        assert_eq!(TlsError(Error::DecryptError).reason(), "tls_bad_record");
    }
}
