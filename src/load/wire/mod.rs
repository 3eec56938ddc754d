//! The bottom layer: what one load process measures, in the form it crosses to the
//! parent. Counters and latency histograms, the named reasons a connection failed, and
//! the JSON-line messages a worker writes to its stdout.
//!
//! Everything here is plain data: a worker and the parent are the same binary and agree
//! on these types, so nothing in this folder knows how they are measured (`process/`) or
//! merged and printed (`report/`).

mod counters;
mod failure;
mod histogram;
mod message;

pub use counters::Counters;
pub use failure::Failure;
pub use histogram::{decode_histogram, encode_histogram, new_histogram};
pub use message::{
    ChatFinal, Second, TlsSession, WorkerFinal, WorkerMsg, WorkloadFinal, WorkloadMode,
};
