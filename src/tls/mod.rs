//! TLS: one more sans-IO layer between the socket (`stream`) and the WebSocket session,
//! for the server and the load generator alike. rustls' unbuffered API is used, so the
//! caller owns every buffer: records are read from the reactor's shared read buffer,
//! their plaintext lands in the same buffer for the session, and everything a turn
//! sends is sealed into as few records as its size needs, in a buffer the reactor
//! shares. An idle connection holds only rustls' own state (keys, sequence numbers,
//! the handshake's leftovers): no buffer.
//!
//! `config` builds rustls' configurations from PEM files (and the crypto provider, ring),
//! `layer` drives one connection's records, `error` names why a connection failed (the
//! reason counted in `/stats`), `tickets` seals session tickets under the key every
//! worker of a server shares.

pub mod config;
pub mod error;
pub mod layer;
pub mod tickets;

pub use config::{client_config, server_config, TlsFiles};
pub use error::TlsError;
pub use layer::{Opened, Sealed, Tls};
