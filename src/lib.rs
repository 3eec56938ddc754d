//! wsreactor: a WebSocket (RFC 6455) server on a hand-written mio reactor.
//!
//! Three layers, one direction of dependency: `protocol` is the sans-IO core (codecs,
//! and the connection state machine in its server and client roles); `server` is the
//! mio shell that drives it over sockets (with the routes, the relay and the rooms);
//! `load` is the load generator (the same core in the client role). `stream` is the
//! socket IO both shells share; `children` (child processes of this binary) and
//! `signals` (the stop flag) serve both too, and so do `chat_route` (the `/chat` path
//! and the room-name rule) and `byte_size` (sizes on the command line). `limits` reports
//! and raises the limits that bound concurrent connections and sizes runs. `testkit`
//! (feature `testkit`, off by default) holds test scaffolding.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod byte_size;
pub mod chat_route;
pub mod children;
pub mod limits;
pub mod load;
pub mod protocol;
pub mod server;
pub mod signals;
pub mod stream;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;
