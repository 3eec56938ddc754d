//! wsreactor: a WebSocket (RFC 6455) server on a hand-written mio reactor.
//!
//! `protocol` is the sans-IO core; `server` is the reactor that drives it over sockets;
//! `limits` reports and raises the limits that bound concurrent connections.

pub mod limits;
pub mod protocol;
pub mod server;
