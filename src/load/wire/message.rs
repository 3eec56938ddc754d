//! The JSON lines a worker writes to its stdout ([`WorkerMsg`]), and the results they
//! carry: the counters as the run goes, each second for `--timeline`, and at the end
//! everything the process measured, with a chat room's or a workload's own figures.

use serde::{Deserialize, Serialize};

use super::counters::Counters;

/// One line a worker writes to its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMsg {
    /// Periodic counters.
    Progress {
        /// The worker's counters now.
        counters: Counters,
    },
    /// Every attempt of this worker has settled; it waits for `go` to start the hold.
    Ramped {
        /// The worker's counters at the end of its ramp.
        counters: Counters,
    },
    /// The worker's last line.
    Final(Box<WorkerFinal>),
    /// With `--timeline`: one second of this worker (every second, in order).
    Second(Box<Second>),
    /// The worker's clock as it starts, before any connection (Unix ms): a worker on
    /// another host (`--hosts`) may keep another time, and its seconds are put on the
    /// parent's clock by the difference.
    Clock {
        /// Its time when it wrote this line.
        unix_ms: u64,
    },
}

/// Everything one process measured, sent once at its end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerFinal {
    /// The process's counters at its end.
    pub counters: Counters,
    /// Connections open when the hold began (all of them were open at that moment).
    pub open_at_hold_start: u64,
    /// Attempts never started because the run was stopped first.
    pub not_attempted: u64,
    /// Established connections per source address index (global order of `--sources`).
    pub per_source: Vec<u64>,
    /// Connect start → 101 verified, µs (`encode_histogram`).
    pub handshake_us: String,
    /// Echo round trips, µs (`encode_histogram`).
    pub echo_rtt_us: String,
    /// The echo round trips of the hold only.
    pub hold_echo_rtt_us: String,
    /// Chat mode: the room's result.
    pub chat: Option<ChatFinal>,
    /// Echo window or churn: what the measured period saw.
    #[serde(default)]
    pub workload: Option<WorkloadFinal>,
    /// `--tls`: what the first handshake negotiated.
    #[serde(default)]
    pub tls: Option<TlsSession>,
}

/// What a TLS handshake of the load negotiated (rustls' names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSession {
    /// E.g. `TLSv1_3`.
    pub version: String,
    /// E.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The key exchange group, e.g. `X25519`.
    pub group: String,
    /// Handshakes completed in full (a certificate sent and checked).
    #[serde(default)]
    pub full: u64,
    /// Handshakes that resumed a session from a ticket (RFC 8446 §2.2): the client
    /// keeps the server's tickets, as browsers do.
    #[serde(default)]
    pub resumed: u64,
}

/// What a chat run measured (the message counts are in [`Counters`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatFinal {
    /// Members when the sender began.
    pub members: u64,
    /// Members that received every message.
    pub members_complete: u64,
    /// Messages the sender was to send.
    pub messages: u64,
    /// First message sent → last delivery, seconds.
    pub secs: f64,
    /// Send → whole message received by a member, µs, one per delivery
    /// (`encode_histogram`).
    pub delivery_us: String,
}

/// Which workload a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadMode {
    /// Closed-loop echo (`--echo-window`): a number of messages in flight per
    /// connection.
    Echo,
    /// Connect, handshake, one echo, close; again (`--churn`).
    Churn,
}

/// What one process measured in a workload's measured period (after `--warmup`, for
/// `--duration`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadFinal {
    /// Echo or churn.
    pub mode: WorkloadMode,
    /// Echo: messages in flight per connection (`--echo-window`; churn: 1).
    #[serde(rename = "window")]
    pub echo_window: u32,
    /// Bytes of each echo payload.
    pub message_size: u32,
    /// The warm-up before the measured period, seconds.
    pub warmup_secs: f64,
    /// The measured period began and ended (the run was not cut short before).
    pub measured: bool,
    /// Length of the measured period, seconds.
    pub secs: f64,
    /// Operations in it: intact echoes, or cycles that closed cleanly.
    pub ops: u64,
    /// Round trips (echo) or connect → 101 (churn) in the measured period, µs
    /// (`encode_histogram`).
    pub latency_us: String,
    /// `--server-pid`.
    pub server_pid: Option<u32>,
    /// CPU time of the server and its descendants over the measured period.
    pub server_cpu_secs: Option<f64>,
    /// The server's processes at the measured period's end.
    pub server_processes: Option<u32>,
    /// Why the server's CPU time could not be read, if it could not.
    pub server_error: Option<String>,
    /// The load process's own CPU time over the measured period.
    pub client_cpu_secs: Option<f64>,
}

/// One wall-clock second of one process, as sent to the parent for `--timeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Second {
    /// The Unix second this covers.
    pub t: u64,
    /// At its end: connections established and not ended.
    pub open: u64,
    /// At its end: attempts not yet verified.
    pub pending: u64,
    /// Handshakes completed within it.
    pub handshakes: u64,
    /// Connections verified within it.
    pub verified: u64,
    /// Echoes that came back intact within it.
    pub echoes: u64,
    /// Connections that failed within it.
    pub failed: u64,
    /// Closes that ended (cleanly or not).
    pub closed: u64,
    /// CPU time the process used within it, µs.
    pub cpu_us: u64,
    /// That second's handshake latencies (`encode_histogram`; empty when none).
    pub handshake_us: String,
    /// That second's echo round trips (`encode_histogram`; empty when none).
    pub echo_rtt_us: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::wire::{encode_histogram, new_histogram};

    #[test]
    fn worker_messages_are_tagged_json_lines() {
        let msg = WorkerMsg::Progress {
            counters: Counters::default(),
        };
        let line = serde_json::to_string(&msg).unwrap();
        assert!(line.starts_with(r#"{"type":"progress""#), "{line}");
        assert!(!line.contains('\n'));
        let back: WorkerMsg = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, WorkerMsg::Progress { .. }));
        let fin = WorkerMsg::Final(Box::new(WorkerFinal {
            counters: Counters::default(),
            open_at_hold_start: 7,
            not_attempted: 0,
            per_source: vec![1, 2],
            handshake_us: encode_histogram(&new_histogram()),
            echo_rtt_us: encode_histogram(&new_histogram()),
            hold_echo_rtt_us: encode_histogram(&new_histogram()),
            chat: None,
            workload: None,
            tls: None,
        }));
        let line = serde_json::to_string(&fin).unwrap();
        let WorkerMsg::Final(f) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}");
        };
        assert_eq!(
            (f.open_at_hold_start, f.per_source.clone()),
            (7, vec![1, 2])
        );
    }
}
