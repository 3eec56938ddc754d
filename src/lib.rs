//! wsreactor: a WebSocket (RFC 6455) server on a hand-written mio reactor.
//!
//! `protocol` is the sans-IO core; `server` is the reactor that drives it over sockets;
//! `load` is the load generator (the same core in the client role); `limits` reports
//! and raises the limits that bound concurrent connections and sizes runs. `children`
//! (child processes of this binary) and `signals` (the stop flag) serve both `server`
//! and `load`.

pub mod children;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod load;
pub mod protocol;
pub mod server;
pub mod signals;
