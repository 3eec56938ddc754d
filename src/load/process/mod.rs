//! The middle layer: what runs inside each load process. Its event loop (`driver`),
//! one connection's state machine (`conn/`), what the connections share (`env`, and
//! over TLS `tls`), the
//! pacing and the ramp cap of connection attempts, chat mode's room and workloads'
//! measured period, and each second for `--timeline`; the worker process's main; and
//! the settings and plan the parent hands each process.
//!
//! It measures into the wire format (`wire/`) and knows nothing of how the parent
//! merges or prints (`report/`, the launcher).

pub mod addr;
pub mod chat_message;
pub mod cpu;
pub mod driver;
pub mod hosts;
pub mod plan;
pub mod seconds;
pub mod settings;
pub mod worker;

pub use conn::{Layer, Plain, Secure};
pub use payload::Payload;

mod chat_progress;
mod conn;
mod deadlines;
mod env;
mod pacing;
mod payload;
mod ramp_cap;
mod rng;
mod socket;
mod tls;
mod workload;
