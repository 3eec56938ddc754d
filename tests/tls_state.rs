//! What one idle TLS connection costs the server in user memory: rustls' state after a
//! handshake and an echo, counted by a counting global allocator (this test binary's
//! own), the client and server driven in memory through `wsreactor::tls` (sans-IO: no
//! socket). Printed with `--nocapture`; docs/benchmarks.md has the figures and what
//! the allocations are (rustls 0.23, ring: the boxed connection 1,088 B, two AES-GCM
//! keys of 560 B, the traffic state, two emptied queues, the SNI). And the same for the
//! load generator's client connection under its own configuration (`load --tls`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use wsreactor::tls::{Sealed, Tls, TlsFiles};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Whether this thread's allocations count: only the counting test's own, so that
    /// the test harness's threads (another test starting, output being captured) do not
    /// land in a figure of a few KiB.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Counts this thread's allocations until dropped. Taken after [`COUNTING`]'s lock and
/// so dropped before it: once the next test counts, this thread's harness work (its
/// captured output, its result) no longer lands in the figure.
struct CountHere;

impl CountHere {
    fn start() -> CountHere {
        COUNTED.with(|c| c.set(true));
        CountHere
    }
}

impl Drop for CountHere {
    fn drop(&mut self) {
        COUNTED.with(|c| c.set(false));
    }
}

fn add(bytes: isize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter of
// live bytes is kept beside it (a const thread-local without a destructor: no
// allocation of its own).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Moves what `out` holds into the peer's `open`; returns the plaintext it got.
fn deliver<C: wsreactor::tls::layer::Side>(
    out: &mut Sealed,
    peer: &mut Tls<C>,
    back: &mut Sealed,
) -> Vec<u8> {
    let mut records = out.bytes().to_vec();
    out.clear();
    let mut plain = vec![0; records.len()];
    let opened = peer.open(&mut records, &mut plain, back).unwrap();
    assert_eq!(opened.used, records.len(), "whole records only");
    plain.truncate(opened.plain);
    plain
}

/// Runs the handshake between `server` and `client` in memory, then a message each way.
/// The scratch buffers are dropped after: they are the reactor's (or the load process's),
/// shared by all connections, not a connection's.
fn handshake_and_echo(
    server: &mut Tls<UnbufferedServerConnection>,
    client: &mut Tls<UnbufferedClientConnection>,
) {
    let (mut to_server, mut to_client) = (Sealed::default(), Sealed::default());
    client.open(&mut [], &mut [], &mut to_server).unwrap();
    for _ in 0..8 {
        deliver(&mut to_server, server, &mut to_client);
        deliver(&mut to_client, client, &mut to_server);
        if to_server.is_empty() && to_client.is_empty() {
            break;
        }
    }
    assert!(
        client.seal(&mut [], b"hello", &mut to_server).unwrap(),
        "handshake done"
    );
    assert_eq!(deliver(&mut to_server, server, &mut to_client), b"hello");
    assert!(server.seal(&mut [], b"hello", &mut to_client).unwrap());
    assert_eq!(deliver(&mut to_client, client, &mut to_server), b"hello");
}

/// A client that trusts `cert` and offers only `version`, without resumption.
#[allow(deprecated)] // ring: see src/tls/config.rs
fn client_config(
    cert: &rcgen::Certificate,
    version: &'static rustls::SupportedProtocolVersion,
) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.into()
}

#[test]
fn an_idle_tls_connection_holds_only_rustls_state() {
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let _count = CountHere::start();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("wsreactor-tls-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let server_config = wsreactor::tls::server_config(&files, tickets()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    for (version, name) in [
        (&rustls::version::TLS13, "TLS 1.3"),
        (&rustls::version::TLS12, "TLS 1.2"),
    ] {
        let config = client_config(&made.cert, version);
        // The server first, then the client, which is dropped before counting: what
        // is left is the server's.
        let before = live();
        let mut server = Tls::new(UnbufferedServerConnection::new(server_config.clone()).unwrap());
        let fresh = live() - before;
        let name_ = ServerName::try_from("localhost").unwrap();
        let mut client = Tls::new(UnbufferedClientConnection::new(config.clone(), name_).unwrap());
        handshake_and_echo(&mut server, &mut client);
        drop(client);
        let idle = live() - before;
        eprintln!(
            "{name}: rustls server connection: {} B inline (boxed), {fresh} B live before \
             the handshake, {idle} B live when idle after it",
            std::mem::size_of::<UnbufferedServerConnection>()
        );
        assert!(idle <= 4096, "{name}: {idle} B per idle connection");
        drop(server);
    }
}

/// The server's session-ticket keys, as a lone `serve` makes them.
fn tickets() -> std::sync::Arc<wsreactor::tls::tickets::TicketKeys> {
    std::sync::Arc::new(wsreactor::tls::tickets::TicketKeys::fresh(6 * 60 * 60).unwrap())
}

/// The live-byte counter is the whole binary's: one test counts at a time.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn an_idle_load_client_connection_holds_only_rustls_state() {
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let _count = CountHere::start();
    // The load generator's own configuration (`load --tls --insecure`, which turns
    // resumption off: every connection a client of its own).
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let chain = vec![made.cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    let server_config = wsreactor::tls::config::server_config_for(chain, key, tickets()).unwrap();
    let mut config = (*wsreactor::tls::client_config(None).unwrap()).clone();
    config.resumption = rustls::client::Resumption::disabled();
    let config = std::sync::Arc::new(config);
    let mut idle = 0;
    // The first connection initialises what a process does once; the second is
    // counted.
    for _ in 0..2 {
        let mut server = Tls::new(UnbufferedServerConnection::new(server_config.clone()).unwrap());
        let before = live();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = Tls::new(UnbufferedClientConnection::new(config.clone(), name).unwrap());
        handshake_and_echo(&mut server, &mut client);
        // The server goes: what is left is the client's.
        drop(server);
        idle = live() - before;
        eprintln!(
            "load client: {} B inline (boxed), {idle} B live when idle ({:?} handshake, \
             {:?})",
            std::mem::size_of::<UnbufferedClientConnection>(),
            client.conn().handshake_kind().unwrap(),
            client
                .conn()
                .negotiated_key_exchange_group()
                .unwrap()
                .name(),
        );
        drop(client);
    }
    assert!(idle <= 8192, "{idle} B per idle load connection");
}
