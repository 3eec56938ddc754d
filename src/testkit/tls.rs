//! The `tls` fuzz target: the TLS record layer (`crate::tls::Tls`, server role) over
//! arbitrary bytes, delivered whole, in the fuzzer's pieces and a byte at a time, with
//! the partial record kept between reads as the reactor keeps it (`server/transport.rs`).
//!
//! Checks: no panic; a read never claims more than it was given, nor yields more
//! plaintext than the records it consumed; what is kept is less than one record; and
//! every delivery ends the same way (the same failure reason, or open with as many bytes
//! kept).

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::UnbufferedServerConnection;

use super::Input;
use crate::tls::{Sealed, Tls};

/// A throwaway self-signed P-256 certificate for localhost, for this target only.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIUaBvycpomtTdPbFu3AQ4yCTb5728wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNzIxMjU1MloYDzIxMjYxMTEz
MjEyNTUyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARCkK0oBlvJGU3bGdqUAr5UKcAVgMuZl+x/wDnl10+MJtm2FWJIWEj8
apqK1LdM5qthD8hahSy2Hia3x07UyhCio2kwZzAdBgNVHQ4EFgQUx1V4FsvV26YM
l/DSnVvapVRFQdIwHwYDVR0jBBgwFoAUx1V4FsvV26YMl/DSnVvapVRFQdIwDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
SQAwRgIhAKaMYR1n29rGwDTK20orH6xU+cm8DGMyQoBYZJWA9i6fAiEApvur2Dfa
EZ8gyYwxEHv30Viw53W6v7q8yeRuHm9eUAQ=
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3As95F6iFGMKTjpp
ZCuKRq0XNsU1Y2rTykSHeHCLnwqhRANCAARCkK0oBlvJGU3bGdqUAr5UKcAVgMuZ
l+x/wDnl10+MJtm2FWJIWEj8apqK1LdM5qthD8hahSy2Hia3x07UyhCi
-----END PRIVATE KEY-----
";

/// Most bytes of one record on the wire: a header and 2^14 + 2048 of ciphertext (RFC
/// 8446 §5.2, RFC 5246 §6.2.3).
const MAX_RECORD: usize = 5 + (1 << 14) + 2048;

fn config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let chain = vec![CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
            let tickets = crate::tls::tickets::TicketKeys::fresh(6 * 60 * 60).unwrap();
            crate::tls::config::server_config_for(chain, key, Arc::new(tickets)).unwrap()
        })
        .clone()
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Failed(&'static str),
    Closed,
    Open { kept: usize },
}

/// Feeds `payload` to a fresh server as the prefixes ending at `ends`.
fn drive(payload: &[u8], ends: &[usize]) -> End {
    let mut tls = Tls::new(UnbufferedServerConnection::new(config()).unwrap());
    let (mut kept, mut out, mut from) = (Vec::new(), Sealed::default(), 0);
    for &end in ends {
        let mut records = std::mem::take(&mut kept);
        records.extend_from_slice(&payload[from..end]);
        from = end;
        let mut plain = vec![0; records.len()];
        match tls.open(&mut records, &mut plain, &mut out) {
            Ok(opened) => {
                assert!(opened.used <= records.len(), "claimed more than given");
                assert!(
                    opened.plain <= opened.used,
                    "plaintext longer than its records"
                );
                kept = records[opened.used..].to_vec();
                assert!(kept.len() < MAX_RECORD, "kept {} bytes", kept.len());
                out.clear();
                if opened.closed {
                    return End::Closed;
                }
            }
            Err(e) => return End::Failed(e.reason()),
        }
    }
    End::Open { kept: kept.len() }
}

/// The fuzz target's body (see the module doc).
pub fn tls(data: &[u8]) {
    let input = Input::new(data);
    let [whole, pieces, bytes] = input.deliveries();
    let end = drive(input.payload, &whole);
    assert_eq!(drive(input.payload, &pieces), end, "in pieces");
    assert_eq!(drive(input.payload, &bytes), end, "byte by byte");
}

/// A server and a client past their handshake, in memory, the client trusting any
/// certificate: for benchmarks of the record layer.
pub fn connected_pair() -> (
    Tls<UnbufferedServerConnection>,
    Tls<rustls::client::UnbufferedClientConnection>,
) {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let client_config = crate::tls::client_config(None).unwrap();
    let client = rustls::client::UnbufferedClientConnection::new(client_config, name).unwrap();
    let (mut server, mut client) = (
        Tls::new(UnbufferedServerConnection::new(config()).unwrap()),
        Tls::new(client),
    );
    let (mut to_server, mut to_client) = (Sealed::default(), Sealed::default());
    client.open(&mut [], &mut [], &mut to_server).unwrap();
    while !to_server.is_empty() || !to_client.is_empty() {
        let mut records = to_server.bytes().to_vec();
        to_server.clear();
        server
            .open(&mut records, &mut [0; 1 << 16], &mut to_client)
            .unwrap();
        let mut records = to_client.bytes().to_vec();
        to_client.clear();
        client
            .open(&mut records, &mut [0; 1 << 16], &mut to_server)
            .unwrap();
    }
    (server, client)
}
