//! The sans-IO protocol core: bytes in, time in, events and bytes out. Nothing here
//! touches a socket, a clock, a random source, a logger or a global; every edge case is
//! a unit test.
//!
//! Codecs: `http` (request and response heads), `handshake` (§4 rules, the accept
//! key), `frame` (headers, masking, encoding), `receiver` (the receiving state machine),
//! `utf8`, `close` (Close bodies), `close_code` (their status codes), `error`, `deflate`
//! (permessage-deflate, RFC 7692: negotiation, inflate, deflate).
//! Connections: `server` (the server role), `client` (the client role), with `deadline`
//! (their timeouts as functions of a time passed in) and `transmit` (where their output
//! goes).

pub mod client;
pub mod close;
pub mod close_code;
pub mod deadline;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod receiver;
pub mod server;
pub mod transmit;
pub mod utf8;
