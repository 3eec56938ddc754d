//! Reactor counters: what `/stats` returns and what the status line prints.

use serde::Serialize;

/// Counters of one reactor process. Gauges go up and down; totals only up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Sockets held now, in any phase (gauge).
    pub connections: u64,
    /// WebSocket connections past the handshake and not yet closing (gauge).
    pub websockets: u64,
    pub accepted_total: u64,
    pub handshakes_total: u64,
    /// Plain HTTP answers: pages, /stats and every refusal.
    pub http_responses_total: u64,
    /// Requests refused with a 4xx/5xx status.
    pub http_errors_total: u64,
    pub messages_in_total: u64,
    pub frames_out_total: u64,
    pub bytes_in_total: u64,
    pub bytes_out_total: u64,
    /// Connections failed with a close code for a protocol violation.
    pub protocol_errors_total: u64,
    /// Connections ended by the handshake, idle or close timeout.
    pub timeouts_total: u64,
    /// accept() failures for lack of descriptors (EMFILE/ENFILE).
    pub accept_emfile_total: u64,
    /// Connections shed without service: over --max-connections or out of descriptors.
    pub shed_total: u64,
}

/// The resident set size of this process in bytes, from /proc/self/statm (Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * crate::limits::page_size()?)
}

/// The `/stats` body: the counters plus uptime and memory.
#[derive(Serialize)]
pub struct StatsReport<'a> {
    #[serde(flatten)]
    pub stats: &'a Stats,
    pub uptime_secs: u64,
    pub rss_bytes: Option<u64>,
    pub pid: u32,
}
