//! The run's report: what the merged figures say, with the facts only the parent
//! knows ([`RunInfo`]), printed as one JSON object or as text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::chat_section::{ChatInfo, ChatReport};
use super::percentiles::Percentiles;
use super::workload_section::WorkloadReport;
use crate::load::wire::TlsSession;

/// Facts about the run that the workers do not report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `--addr`.
    pub target: String,
    /// The request target of every upgrade.
    pub path: String,
    /// `--connections`.
    pub requested: u64,
    /// Load processes the run used.
    pub processes: u32,
    /// The source address range, if sources were bound.
    pub sources: Option<String>,
    /// Addresses in it.
    pub source_count: u32,
    /// Start → report.
    pub elapsed: Duration,
    /// A stop signal arrived.
    pub interrupted: bool,
    /// Chat mode's settings.
    pub chat: Option<ChatInfo>,
    /// What echo payloads are made of (`--payload`).
    pub payload: &'static str,
    /// `--deflate`: every connection offered permessage-deflate (and any that did not
    /// get it failed).
    pub deflate: bool,
    /// `--deflate-window`: the offer asked for context takeover with these bits.
    pub deflate_window: Option<u8>,
    /// `--warmup-bytes`.
    pub warmup_bytes: u32,
}

/// The run's result, printed as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `--addr`.
    pub target: String,
    /// The request target of every upgrade.
    pub path: String,
    /// Load processes the run used.
    pub processes: u32,
    /// The source address range, if sources were bound.
    pub sources: Option<String>,
    /// Addresses in it.
    pub source_count: u32,
    /// Established connections through the busiest source address.
    pub max_per_source: u64,
    /// `--connections`.
    pub requested: u64,
    /// Connection attempts started.
    pub attempted: u64,
    /// Attempts never started (the run was stopped first, or a worker was lost).
    pub not_attempted: u64,
    /// Handshakes completed: 101 with the right accept value.
    pub established: u64,
    /// Connections whose first echo came back byte for byte (chat: that joined).
    pub verified: u64,
    /// Connections that failed, all reasons together.
    pub failed: u64,
    /// Connections that failed, by reason's name.
    pub failures: BTreeMap<String, u64>,
    /// Connections open together when the hold began.
    pub open_at_hold_start: u64,
    /// Echoes that came back intact (the verification echoes included).
    pub echoes: u64,
    /// Closes that ended with the server's Close and then its EOF.
    pub closed_clean: u64,
    /// Closes the server did not finish within `--close-timeout`.
    pub close_timeout: u64,
    /// Closes that ended in EOF without a Close frame, or in an error.
    pub close_unclean: u64,
    /// Connections dropped unfinished because the run was interrupted.
    pub aborted: u64,
    /// Start → every attempt verified or failed.
    pub ramp_secs: f64,
    /// Established connections per second over the ramp.
    pub connect_rate: f64,
    /// Start → report.
    pub total_secs: f64,
    /// Connect start → 101 verified.
    pub handshake_us: Percentiles,
    /// Every echo's round trip.
    pub echo_rtt_us: Percentiles,
    /// The echoes of the hold alone (all connections open, none ramping or closing).
    pub hold_echo_rtt_us: Percentiles,
    /// Chat mode's result.
    pub chat: Option<ChatReport>,
    /// Echo window or churn: the measured period.
    pub workload: Option<WorkloadReport>,
    /// What echo payloads are made of (`--payload`).
    pub payload: &'static str,
    /// `--deflate`: permessage-deflate on every connection.
    pub deflate: bool,
    /// `--deflate-window`: the bits of the context takeover every connection offered.
    pub deflate_window: Option<u8>,
    /// Connections whose handshake agreed context takeover both ways.
    pub deflate_takeover: u64,
    /// Bytes of text each connection echoed before its verification echo.
    pub warmup_bytes: u32,
    /// `--tls`: what the handshakes negotiated (the first one's; every connection has
    /// the same configuration). Absent over plain TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSession>,
    /// Workers that ended without a final result.
    pub workers_lost: u32,
    /// A stop signal arrived.
    pub interrupted: bool,
    /// Every requested connection established and verified, and nothing failed.
    pub ok: bool,
}

impl Report {
    /// The report as one JSON object (one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(w, "wsreactor load → {} (path {})", self.target, self.path);
        let sources = match &self.sources {
            Some(range) => format!(
                "{range} ({} addresses, max {} connections per source)",
                self.source_count, self.max_per_source
            ),
            None => "kernel-chosen".to_owned(),
        };
        if let Some(t) = &self.tls {
            let _ = writeln!(
                w,
                "  tls                 {} {} {} ({} full handshakes, {} resumed; the \
                 handshake latency includes TLS)",
                t.version, t.cipher_suite, t.group, t.full, t.resumed
            );
        }
        let _ = writeln!(
            w,
            "  messages            {} payload{}{}",
            self.payload,
            match (self.deflate, self.deflate_window) {
                (false, _) => String::new(),
                (true, None) => ", permessage-deflate (no context takeover)".to_owned(),
                (true, Some(bits)) => format!(
                    ", permessage-deflate (context takeover of {bits} bits offered, agreed \
                     both ways by {} connections)",
                    self.deflate_takeover
                ),
            },
            match self.warmup_bytes {
                0 => String::new(),
                n => format!(", {n} bytes of warm-up echoed first"),
            }
        );
        let _ = writeln!(w, "  processes           {}", self.processes);
        let _ = writeln!(w, "  sources             {sources}");
        let _ = writeln!(w, "  requested           {}", self.requested);
        let _ = writeln!(w, "  established         {}", self.established);
        let _ = writeln!(w, "  verified            {}", self.verified);
        let _ = writeln!(w, "  failed              {}", self.failed);
        for (why, n) in &self.failures {
            let _ = writeln!(w, "    {why:<23} {n}");
        }
        if self.not_attempted > 0 || self.aborted > 0 {
            let _ = writeln!(
                w,
                "  not attempted       {}   aborted {}",
                self.not_attempted, self.aborted
            );
        }
        let _ = writeln!(w, "  open at hold start  {}", self.open_at_hold_start);
        let _ = writeln!(
            w,
            "  closed cleanly      {}   (close timeouts {}, unclean {})",
            self.closed_clean, self.close_timeout, self.close_unclean
        );
        if self.chat.is_none() {
            let _ = writeln!(w, "  echoes              {}", self.echoes);
        }
        let _ = writeln!(
            w,
            "  time to establish   {:.2} s   ({:.0} connections/s)",
            self.ramp_secs, self.connect_rate
        );
        let _ = writeln!(w, "  total elapsed       {:.2} s", self.total_secs);
        let mut latencies = vec![("handshake latency", &self.handshake_us)];
        match &self.chat {
            None => {
                latencies.push(("echo round trip", &self.echo_rtt_us));
                latencies.push(("  of them, the hold", &self.hold_echo_rtt_us));
            }
            Some(chat) => {
                chat.write_text(w);
                latencies.push(("delivery latency", &chat.delivery_us));
            }
        }
        for (name, p) in latencies {
            let _ = writeln!(
                w,
                "  {name:<20}p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs  (n={})",
                p.p50, p.p99, p.p999, p.max, p.count
            );
        }
        if let Some(workload) = &self.workload {
            workload.write_text(w);
        }
        if self.workers_lost > 0 {
            let _ = writeln!(
                w,
                "  workers lost        {} (their latencies are missing)",
                self.workers_lost
            );
        }
        let verdict = match (self.ok, self.interrupted, &self.chat) {
            (true, _, None) => "OK: every connection established, verified and echoing",
            (true, _, Some(_)) => "OK: every member received every message, in order, intact",
            (false, true, _) => "INTERRUPTED",
            (false, false, None) => "FAILED: not every connection was established and verified",
            (false, false, Some(_)) => {
                "FAILED: not every member joined and received every message intact"
            }
        };
        let _ = writeln!(w, "  result              {verdict}");
        s
    }
}
