//! wsreactor: a WebSocket (RFC 6455) server on a hand-written mio reactor.
//!
//! `protocol` is the sans-IO core; `server` is the reactor that drives it over sockets;
//! `load` is the load generator that drives it in the client role.

pub mod load;
pub mod protocol;
