//! The top layer, in the parent: what the load processes' messages add up to. The
//! tally of what each worker said, the run's report (JSON or text) with its chat and
//! workload sections, and the `--timeline` file of merged seconds.
//!
//! It reads the wire format (`wire/`) and nothing of how a process measures (`process/`).

mod chat_section;
mod percentiles;
mod run_report;
mod tally;
mod timeline_file;
mod workload_section;

pub use chat_section::ChatInfo;
pub use run_report::RunInfo;
pub use tally::Tally;
pub use timeline_file::Timeline;
