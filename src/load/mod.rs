//! `wsreactor load`: the load generator.
//!
//! It opens N real WebSocket connections to a loopback server (random key, accept value
//! checked, masked frames), verifies each with an echo, holds them all open together
//! (periodic echoes, pongs), closes them cleanly, and reports counts by outcome and
//! latency percentiles. Exit status 0 only if every connection was established and
//! verified and nothing failed. Chat mode (`--chat ROOM`) measures a room's fan-out
//! instead; the workloads (`--echo-window W`, `--churn`) measure what servers are
//! compared by, over a measured period after a warm-up. Runs of many connections
//! spread over worker processes (this binary again, with `--worker K/P`).
//!
//! Three layers, each importing only from the ones below it:
//!
//! - `wire/`: what crosses from a load process to the parent (counters, histograms,
//!   failure reasons, the worker messages). Plain data.
//! - `process/`: what runs inside each load process (the event loop, the connections, the
//!   chat room and workloads, the worker's main) and the settings it is given.
//! - the parent, on top: the flags (`args`), the run's launch and exit status
//!   (`launch`), the workers' parent (`parent`), live progress (`progress`), and what
//!   the processes' results add up to (`report/`).

mod args;
mod launch;
mod parent;
mod process;
mod progress;
mod report;
mod wire;

pub use args::LoadArgs;
pub use launch::run;
