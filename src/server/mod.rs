//! The server: a thin IO shell over the sans-IO protocol core. `reactor` (the event
//! loop, the slab), `accept` (the listener, the spare descriptor), `head_queue` (who
//! gives way when descriptors run out), `budget` and `trim` (memory), `warnings`,
//! `connection` (one socket's IO), `transport` (plain or TLS between socket and session; `secure` is TLS's), `routes` (where a request
//! leads), `relay` (echo and chat), `rooms`, `stats`, `clock`, `config`, `workers`;
//! `view` (the whole server's counters), `feed` (their way from the supervisor to the
//! workers), `observe` (/stats, /metrics, /dashboard), `prometheus` (the text format);
//! `pubsub` (rooms past one process: Redis, or the workers' mesh).

pub mod accept;
pub mod budget;
pub mod clock;
pub mod config;
pub mod connection;
pub mod env;
pub mod fan_out;
pub mod feed;
pub mod head_queue;
pub mod observe;
pub mod prometheus;
pub mod pubsub;
pub mod reactor;
pub mod relay;
pub mod room_message;
pub mod rooms;
pub mod routes;
pub mod secure;
pub mod session;
pub mod stats;
pub mod transport;
pub mod trim;
pub mod view;
pub mod warnings;
pub mod workers;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use log::{info, warn};
use socket2::{Domain, Protocol, Socket, Type};

use crate::tls::tickets::TicketKeys;

pub use config::Config;

/// The accept queue asked for; the kernel caps it at net.core.somaxconn.
const BACKLOG: i32 = 4096;

/// Binds a listening socket. `reuse_port` lets several worker processes share the port
/// (SO_REUSEPORT: the kernel spreads new connections over them).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting must not wait out TIME_WAIT on the old listener's connections.
    socket.set_reuse_address(true)?;
    // Echo replies are small and latency-bound: Nagle must not hold them. Linux gives
    // every accepted socket the listener's TCP_NODELAY, which saves a setsockopt per
    // connection (checked by a test).
    socket.set_nodelay(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// `wsreactor serve`: one reactor in this process, or a supervisor of `--workers N`.
pub fn serve(config: Config) -> io::Result<()> {
    // Checked once, here, so that restarting workers never loops on a Redis that is
    // not there.
    if let (None, Some(url)) = (config.worker_id, &config.pubsub) {
        pubsub::probe(url)?;
        info!("pubsub: Redis at {url} answers; rooms span every server on it");
    }
    if config.worker_id.is_none() && config.workers > 1 {
        return workers::supervise(config);
    }
    if config.worker_id.is_some() {
        crate::children::die_with_parent();
    }
    // A certificate that does not load is an error before anything listens.
    let tls = match config.tls_files() {
        Some(files) => {
            let tickets = ticket_keys(config.tls_ticket_rotation)?;
            Some(secure::SecureShared::new(files, tickets).map_err(io::Error::other)?)
        }
        None => None,
    };
    let listener = bind(config.listen, config.worker_id.is_some())?;
    // Only the supervisor says "listening on", once every worker accepts: scripts and
    // tests wait for that line before they connect.
    match config.worker_id {
        Some(id) => info!(
            "worker {id} (pid {}) accepting on {}",
            std::process::id(),
            listener.local_addr()?
        ),
        None => info!("listening on {}", listener.local_addr()?),
    }
    match crate::limits::raise_nofile() {
        Ok(l) => info!(
            "RLIMIT_NOFILE soft {} (was {}), hard {}: room for about {} connections",
            l.soft,
            l.soft_before,
            l.hard,
            l.soft.saturating_sub(crate::limits::sizing::FD_RESERVE)
        ),
        Err(e) => warn!("could not raise RLIMIT_NOFILE: {e}"),
    }
    let shutdown = crate::signals::stop_flag(crate::signals::Again::Ignored)?;
    let reload = crate::signals::reload_flag()?;
    match tls {
        Some(layer) => {
            reactor::Reactor::<secure::Secure>::new(config, listener, shutdown, reload, layer)?
                .run()
        }
        None => {
            reactor::Reactor::<transport::Plain>::new(config, listener, shutdown, reload, ())?.run()
        }
    }
}

/// A worker's session-ticket keys are its supervisor's (handed down in its environment,
/// `tls::tickets`); a lone process makes its own.
fn ticket_keys(period: u32) -> io::Result<Arc<TicketKeys>> {
    let keys = match TicketKeys::from_env(period).map_err(io::Error::other)? {
        Some(keys) => keys,
        None => TicketKeys::fresh(period).map_err(io::Error::other)?,
    };
    Ok(Arc::new(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_the_listeners_nodelay() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
