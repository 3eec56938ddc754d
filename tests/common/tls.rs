//! A certificate made here (rcgen) for the TLS tests, and an independent client over it:
//! rustls' own buffered client with tungstenite on top.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use tungstenite::Message;

use super::{Server, IO_TIMEOUT};

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files; renewed
/// in place by [`Cert::renew`], and every certificate it has been is trusted.
pub struct Cert {
    pub dir: PathBuf,
    /// The current certificate.
    pub der: CertificateDer<'static>,
    trusted: Vec<CertificateDer<'static>>,
}

impl Cert {
    pub fn new() -> Cert {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wsreactor-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cert = Cert {
            dir,
            der: CertificateDer::from(Vec::new()),
            trusted: Vec::new(),
        };
        cert.renew();
        cert
    }

    /// Writes a new certificate and key over the files (as a renewal does).
    pub fn renew(&mut self) {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        std::fs::write(self.dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(self.dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        self.der = made.cert.der().clone();
        self.trusted.push(self.der.clone());
    }

    pub fn server(&self, extra: &[&str]) -> Server {
        let (cert, key) = (self.dir.join("cert.pem"), self.dir.join("key.pem"));
        let mut args = vec![
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Server::with_args(&args)
    }

    #[allow(deprecated)] // ring: see src/tls/config.rs
    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for der in &self.trusted {
            roots.add(der.clone()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    pub fn connect(&self, addr: SocketAddr, config: Arc<ClientConfig>) -> Tls {
        let tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        StreamOwned::new(ClientConnection::new(config, name).unwrap(), tcp)
    }

    pub fn wss(
        &self,
        addr: SocketAddr,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> tungstenite::WebSocket<Tls> {
        self.wss_path(addr, versions, "/echo")
    }

    pub fn wss_path(
        &self,
        addr: SocketAddr,
        versions: &[&'static rustls::SupportedProtocolVersion],
        path: &str,
    ) -> tungstenite::WebSocket<Tls> {
        let stream = self.connect(addr, self.client_config(versions));
        let (ws, resp) = tungstenite::client::client(format!("wss://localhost{path}"), stream)
            .unwrap_or_else(|e| panic!("wss handshake: {e}"));
        assert_eq!(resp.status().as_u16(), 101);
        ws
    }

    /// `GET path` over https: the status and the body.
    pub fn get(&self, addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
        let mut stream = self.connect(addr, self.client_config(rustls::DEFAULT_VERSIONS));
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut response = Vec::new();
        // The server ends the connection after a plain HTTP answer (close_notify, FIN).
        match stream.read_to_end(&mut response) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => panic!("https GET {path}: {e}"),
        }
        let text = String::from_utf8_lossy(&response);
        let status = text[9..12].parse().unwrap();
        let body = response[text.find("\r\n\r\n").unwrap() + 4..].to_vec();
        (status, body)
    }

    pub fn stats(&self, addr: SocketAddr) -> serde_json::Value {
        let (status, body) = self.get(addr, "/stats");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn echo(ws: &mut tungstenite::WebSocket<Tls>, message: Message) {
    ws.send(message.clone()).unwrap();
    assert_eq!(ws.read().unwrap(), message);
}

pub fn close(mut ws: tungstenite::WebSocket<Tls>) {
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("closing: {e}"),
        }
    }
}
