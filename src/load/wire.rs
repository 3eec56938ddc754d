//! The worker-to-parent wire format of a multi-process load run: the counters and
//! latency histograms one process measures, and the JSON-line messages a worker writes
//! to stdout.
//!
//! Everything here is plain data with serde: a worker and the parent agree on these
//! types, and the parent merges them (see `report.rs`).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::failure::Failure;
use super::timeline::Second;
use super::workload::WorkloadFinal;

/// The largest latency a histogram holds (one hour, in microseconds); larger values are
/// recorded as this (timeouts are far shorter, so nothing real is clipped).
pub const HIST_MAX_US: u64 = 3_600_000_000;

/// Counts kept by one process (and, summed, by the parent). `open` and `pending` are
/// gauges; everything else only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Connection attempts started (a socket was created, or creating it failed).
    pub attempted: u64,
    /// Handshakes completed: 101 with the right accept value.
    pub established: u64,
    /// Connections whose first echo came back byte for byte.
    pub verified: u64,
    /// Established and not yet ended, now.
    pub open: u64,
    /// Attempted and not yet verified or ended, now.
    pub pending: u64,
    /// Closes we started and still wait on, now.
    pub closing: u64,
    /// Echoes that came back intact (the verification echo included).
    pub echoes: u64,
    /// Chat: messages the sender sent.
    pub chat_sent: u64,
    /// Chat: messages members received whole and intact (one per member per message).
    pub deliveries: u64,
    /// Closes we started that ended with the server's Close and then its EOF.
    pub closed_clean: u64,
    /// Closes we started that the server did not finish within `--close-timeout`.
    pub close_timeout: u64,
    /// Closes we started that ended in EOF without a Close frame, or in an error.
    pub close_unclean: u64,
    /// Connections dropped unfinished because the run was interrupted.
    pub aborted: u64,
    pub failures: BTreeMap<Failure, u64>,
}

impl Counters {
    pub fn fail(&mut self, why: Failure) {
        *self.failures.entry(why).or_default() += 1;
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Adds another process's counters to these.
    pub fn merge(&mut self, other: &Counters) {
        self.attempted += other.attempted;
        self.established += other.established;
        self.verified += other.verified;
        self.open += other.open;
        self.pending += other.pending;
        self.closing += other.closing;
        self.echoes += other.echoes;
        self.chat_sent += other.chat_sent;
        self.deliveries += other.deliveries;
        self.closed_clean += other.closed_clean;
        self.close_timeout += other.close_timeout;
        self.close_unclean += other.close_unclean;
        self.aborted += other.aborted;
        for (why, n) in &other.failures {
            *self.failures.entry(*why).or_default() += n;
        }
    }
}

/// A fresh latency histogram: 1 µs to [`HIST_MAX_US`], 3 significant digits. Every
/// histogram uses these bounds so that merging never fails.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid fixed bounds")
}

/// A histogram as base64 of its HdrHistogram V2 encoding (compact and portable).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into a Vec cannot fail");
    BASE64.encode(bytes)
}

pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = BASE64
        .decode(s)
        .map_err(|e| format!("histogram base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("histogram: {e:?}"))
}

/// Everything one process measured, sent once at its end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerFinal {
    pub counters: Counters,
    /// Connections open when the hold began (all of them were open at that moment).
    pub open_at_hold_start: u64,
    /// Attempts never started because the run was stopped first.
    pub not_attempted: u64,
    /// Established connections per source address index (global order of `--sources`).
    pub per_source: Vec<u64>,
    /// Connect start → 101 verified, µs ([`encode_histogram`]).
    pub handshake_us: String,
    /// Echo round trips, µs ([`encode_histogram`]).
    pub echo_rtt_us: String,
    /// The echo round trips of the hold only.
    pub hold_echo_rtt_us: String,
    /// Chat mode: the room's result.
    pub chat: Option<ChatFinal>,
    /// Echo window or churn: the measured window.
    #[serde(default)]
    pub workload: Option<WorkloadFinal>,
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
    /// ([`encode_histogram`]).
    pub delivery_us: String,
}

/// One line a worker writes to its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMsg {
    /// Periodic counters.
    Progress { counters: Counters },
    /// Every attempt of this worker has settled; it waits for `go` to start the hold.
    Ramped { counters: Counters },
    /// The worker's last line.
    Final(Box<WorkerFinal>),
    /// With `--timeline`: one second of this worker (every second, in order).
    Second(Box<Second>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_merge_and_serialize_with_named_reasons() {
        let mut a = Counters {
            attempted: 3,
            established: 2,
            verified: 2,
            ..Counters::default()
        };
        a.fail(Failure::ConnectRefused);
        let mut b = Counters {
            attempted: 5,
            open: 4,
            ..Counters::default()
        };
        b.fail(Failure::ConnectRefused);
        b.fail(Failure::HandshakeRejected(503));
        a.merge(&b);
        assert_eq!((a.attempted, a.established, a.open), (8, 2, 4));
        assert_eq!(a.failed(), 3);
        assert_eq!(a.failures[&Failure::ConnectRefused], 2);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains(r#""handshake_rejected_503":1"#), "{json}");
        assert_eq!(serde_json::from_str::<Counters>(&json).unwrap(), a);
    }

    #[test]
    fn histograms_survive_the_wire_and_merge() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=1000u64 {
            a.record(v).unwrap();
            b.record(v * 1000).unwrap();
        }
        b.saturating_record(u64::MAX);
        let a2 = decode_histogram(&encode_histogram(&a)).unwrap();
        let b2 = decode_histogram(&encode_histogram(&b)).unwrap();
        assert_eq!((a2.len(), a2.max()), (a.len(), a.max()));
        let mut merged = new_histogram();
        merged.add(&a2).unwrap();
        merged.add(&b2).unwrap();
        assert_eq!(merged.len(), 2001);
        assert_eq!(merged.min(), 1);
        assert!(merged.max() >= HIST_MAX_US - HIST_MAX_US / 1000);
        // The median of 1..1000 ∪ 1000..1e6 sits at the join.
        let p50 = merged.value_at_quantile(0.5);
        assert!((990..=1010).contains(&p50), "{p50}");
        assert!(decode_histogram("not base64!").is_err());
    }

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
