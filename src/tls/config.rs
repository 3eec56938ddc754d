//! rustls' configuration from PEM files: the certificate chain and its private key.
//!
//! The crypto provider is `ring`: it builds from a clean target in seconds with the C
//! compiler every Rust toolchain here has (aws-lc-rs needs a much longer C build: it is
//! the `aws-lc` feature, for its post-quantum hybrid group, X25519MLKEM768), and
//! offers X25519, P-256 and P-384 for key exchange (the client offers X25519 first), AES-GCM and
//! ChaCha20-Poly1305. TLS 1.3 and 1.2, rustls' defaults otherwise; early data is off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ProducesTickets;
use rustls::ServerConfig;

/// Where a server's certificate chain and private key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (e.g. Let's Encrypt's `fullchain.pem`).
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (e.g. `privkey.pem`).
    pub key: PathBuf,
}

/// The server's configuration from `files`, or what is wrong with them, with session
/// tickets sealed by `tickets` (which outlive any one configuration: a certificate
/// reloaded on SIGHUP keeps the tickets already out valid).
pub fn server_config(
    files: &TlsFiles,
    tickets: Arc<dyn ProducesTickets>,
) -> Result<Arc<ServerConfig>, String> {
    let chain = load_chain(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: no private key: {e}", files.key.display()))?;
    server_config_for(chain, key, tickets).map_err(|e| format!("{}: {e}", files.cert.display()))
}

/// The server's configuration for a certificate chain and its key.
pub fn server_config_for(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    tickets: Arc<dyn ProducesTickets>,
) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    // Stateless resumption: the ticket carries the session, so resuming costs the
    // server no memory per client (RFC 8446 §4.6.1).
    config.ticketer = tickets;
    Ok(Arc::new(config))
}

/// A client's configuration that trusts the certificates in `ca` (PEM), or, with
/// `None`, any certificate at all (a self-signed one on loopback: `--insecure`).
///
/// The client offers X25519 first, as browsers do: ring's list (rustls 0.23.48) puts
/// P-384 first, and a client sends its key share for the first group only (RFC 8446
/// §4.2.8), so rustls' default would make every handshake a P-384 one, several times
/// X25519's cost at both ends.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    client_config_offering(ca, None)
}

/// [`client_config`], offering only the key exchange group named `group` if given (as
/// rustls names them: `X25519`, `secp256r1`, `secp384r1`, and with the `aws-lc` feature
/// `X25519MLKEM768`), so that a measurement knows which group it measured.
pub fn client_config_offering(
    ca: Option<&Path>,
    group: Option<&str>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::NamedGroup;
    let all = provider();
    let kx_groups: Vec<_> = match group {
        Some(name) => all
            .kx_groups
            .iter()
            .filter(|g| format!("{:?}", g.name()).eq_ignore_ascii_case(name))
            .copied()
            .collect(),
        None => [
            NamedGroup::X25519,
            NamedGroup::secp256r1,
            NamedGroup::secp384r1,
        ]
        .iter()
        .filter_map(|&name| all.kx_groups.iter().find(|g| g.name() == name).copied())
        .collect(),
    };
    if kx_groups.is_empty() {
        let known: Vec<_> = all
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        return Err(format!(
            "--tls-group {}: not in this build (it has {})",
            group.unwrap_or("X25519"),
            known.join(", ")
        ));
    }
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        kx_groups,
        ..(*all).clone()
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let config = match ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_chain(path).map_err(|e| format!("--ca {e}"))? {
                roots
                    .add(cert)
                    .map_err(|e| format!("--ca {}: {e}", path.display()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// ring's provider: X25519, P-256, P-384; AES-GCM, ChaCha20-Poly1305. rustls marks it
/// deprecated for want of post-quantum key exchange, which aws-lc-rs has (at a higher
/// handshake cost and a long C build); see the module header.
#[cfg(not(feature = "aws-lc"))]
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// aws-lc-rs' provider (the `aws-lc` feature): ring's groups and the post-quantum
/// hybrid X25519MLKEM768, which a server prefers when the client offers it.
#[cfg(feature = "aws-lc")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(chain)
}

/// A verifier that accepts any certificate but still checks the handshake's
/// signatures: for a self-signed certificate on loopback, never across a network.
mod insecure {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    pub struct AnyCertificate(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let algs = &self.0.signature_verification_algorithms;
            verify_tls12_signature(message, cert, dss, algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let algs = &self.0.signature_verification_algorithms;
            verify_tls13_signature(message, cert, dss, algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}
