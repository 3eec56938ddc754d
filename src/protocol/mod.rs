//! The sans-IO protocol core: bytes in, events and bytes out. Nothing here touches a
//! socket, a clock or a global; every edge case is a unit test.

pub mod close;
pub mod deadline;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod message;
pub mod server;
pub mod utf8;
