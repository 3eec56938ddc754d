//! A workload run's figures in the report (`--echo-window`, `--churn`): operations per
//! second over the measured period, their latencies, and the server's and the load
//! generator's CPU time per operation.

use serde::Serialize;

use super::percentiles::Percentiles;
use crate::load::wire::{
    decode_histogram, new_histogram, Counters, WorkerFinal, WorkloadFinal, WorkloadMode,
};

/// The workload's figures in the report.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    /// Echo or churn.
    pub mode: WorkloadMode,
    /// Echo: the echo window, messages in flight per connection (churn: 1).
    #[serde(rename = "window")]
    pub echo_window: u32,
    /// Bytes of each echo payload.
    pub message_size: u32,
    /// The warm-up before the measured period, seconds.
    pub warmup_secs: f64,
    /// The measured period began and ended (the run was not cut short before).
    pub measured: bool,
    /// Length of the measured period.
    pub secs: f64,
    /// Echoes that came back intact (echo), or complete cycles: connect, 101, echo,
    /// clean close (churn).
    pub ops: u64,
    /// Operations per second of the measured period.
    pub ops_per_sec: f64,
    /// Echo: payload megabytes (10^6) echoed per second, each way.
    pub mb_per_sec: Option<f64>,
    /// Echo: round trips; churn: connect start → verified 101.
    pub latency_us: Percentiles,
    /// `--server-pid`.
    pub server_pid: Option<u32>,
    /// The server's processes (itself and its descendants) at the measured period's end.
    pub server_processes: Option<u32>,
    /// utime + stime of the server and its descendants over the measured period.
    pub server_cpu_secs: Option<f64>,
    /// Server CPU seconds per second of the measured period (1.0: one core busy).
    pub server_cpu_util: Option<f64>,
    /// Server CPU time per operation, µs.
    pub server_cpu_us_per_op: Option<f64>,
    /// Why the server's CPU time could not be read, if it could not.
    pub server_error: Option<String>,
    /// The load generator's own CPU time over the measured period.
    pub client_cpu_secs: Option<f64>,
    /// The load generator's own CPU time per operation, µs.
    pub client_cpu_us_per_op: Option<f64>,
}

impl WorkloadReport {
    /// The workload's figures of a run, from the final that carries them (one process
    /// runs a workload).
    pub fn of(finals: &[Option<WorkerFinal>]) -> Option<WorkloadReport> {
        finals
            .iter()
            .flatten()
            .find_map(|f| f.workload.as_ref())
            .map(WorkloadReport::new)
    }

    /// Whether every requested connection was verified: exactly, or for churn, which
    /// verifies a connection per cycle, every attempt and at least one per slot.
    pub fn all_verified(workload: Option<&WorkloadReport>, c: &Counters, requested: u64) -> bool {
        match workload {
            Some(w) if w.mode == WorkloadMode::Churn => {
                c.verified >= requested && c.verified == c.attempted
            }
            _ => c.verified == requested,
        }
    }

    /// The figures of one process's measured period.
    pub fn new(f: &WorkloadFinal) -> WorkloadReport {
        let per_sec = |n: f64| (f.secs > 0.0).then(|| n / f.secs);
        let per_op = |cpu: Option<f64>| cpu.filter(|_| f.ops > 0).map(|c| c * 1e6 / f.ops as f64);
        let latency = decode_histogram(&f.latency_us).unwrap_or_else(|_| new_histogram());
        WorkloadReport {
            mode: f.mode,
            echo_window: f.echo_window,
            message_size: f.message_size,
            warmup_secs: f.warmup_secs,
            measured: f.measured,
            secs: f.secs,
            ops: f.ops,
            ops_per_sec: per_sec(f.ops as f64).unwrap_or(0.0),
            mb_per_sec: match f.mode {
                WorkloadMode::Echo => per_sec(f.ops as f64 * f64::from(f.message_size) / 1e6),
                WorkloadMode::Churn => None,
            },
            latency_us: Percentiles::of(&latency),
            server_pid: f.server_pid,
            server_processes: f.server_processes,
            server_cpu_secs: f.server_cpu_secs,
            server_cpu_util: f.server_cpu_secs.and_then(per_sec),
            server_cpu_us_per_op: per_op(f.server_cpu_secs),
            server_error: f.server_error.clone(),
            client_cpu_secs: f.client_cpu_secs,
            client_cpu_us_per_op: per_op(f.client_cpu_secs),
        }
    }

    /// Whether the period was measured with operations in it (and the server's CPU
    /// read, when asked for).
    pub fn ok(&self) -> bool {
        self.measured && self.ops > 0 && (self.server_pid.is_none() || self.server_error.is_none())
    }

    /// The text report's lines.
    pub fn write_text(&self, w: &mut String) {
        use std::fmt::Write as _;
        let (what, unit) = match self.mode {
            WorkloadMode::Echo => (
                format!(
                    "echo window {} x {} B per connection",
                    self.echo_window, self.message_size
                ),
                "echoes",
            ),
            WorkloadMode::Churn => ("churn (connect, 101, echo, close)".to_owned(), "cycles"),
        };
        let _ = writeln!(
            w,
            "  workload            {what}; {:.1} s warm-up, {:.2} s measured",
            self.warmup_secs, self.secs
        );
        let mb = self
            .mb_per_sec
            .map_or(String::new(), |mb| format!("   {mb:.2} MB/s each way"));
        let _ = writeln!(
            w,
            "  {unit:<20}{}   {:.0}/s{mb}",
            self.ops, self.ops_per_sec
        );
        let p = &self.latency_us;
        // "(window)" is the measured period: the text report keeps the wording its
        // readers know.
        let name = match self.mode {
            WorkloadMode::Echo => "round trip (window)",
            WorkloadMode::Churn => "handshake (window)",
        };
        let _ = writeln!(
            w,
            "  {name:<20}p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs  (n={})",
            p.p50, p.p99, p.p999, p.max, p.count
        );
        if let (Some(pid), Some(cpu)) = (self.server_pid, self.server_cpu_secs) {
            let _ = writeln!(
                w,
                "  server CPU          {:.3} µs per op  ({cpu:.2} s, {:.0}% of a core; pid {pid}, {} processes)",
                self.server_cpu_us_per_op.unwrap_or(0.0),
                self.server_cpu_util.unwrap_or(0.0) * 100.0,
                self.server_processes.unwrap_or(0)
            );
        }
        if let Some(e) = &self.server_error {
            let _ = writeln!(w, "  server CPU          unreadable: {e}");
        }
        if let Some(us) = self.client_cpu_us_per_op {
            let _ = writeln!(w, "  load CPU            {us:.3} µs per op");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::wire::encode_histogram;

    fn measured(mode: WorkloadMode, ops: u64, secs: f64, server_cpu: Option<f64>) -> WorkloadFinal {
        let mut latency = new_histogram();
        latency.record(10).unwrap();
        latency.record(30).unwrap();
        WorkloadFinal {
            mode,
            echo_window: 4,
            message_size: 1000,
            warmup_secs: 1.0,
            measured: true,
            secs,
            ops,
            latency_us: encode_histogram(&latency),
            server_pid: server_cpu.map(|_| 42),
            server_cpu_secs: server_cpu,
            server_processes: server_cpu.map(|_| 3),
            server_error: None,
            client_cpu_secs: Some(0.25),
        }
    }

    #[test]
    fn echo_figures_are_per_second_and_per_operation() {
        let r = WorkloadReport::new(&measured(WorkloadMode::Echo, 2_000, 2.0, Some(0.5)));
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.ops_per_sec, 1_000.0);
        assert_eq!(r.mb_per_sec, Some(1.0));
        assert_eq!((r.latency_us.count, r.latency_us.p50), (2, 10));
        assert_eq!(r.server_cpu_util, Some(0.25));
        assert_eq!(r.server_cpu_us_per_op, Some(250.0));
        assert_eq!(r.client_cpu_us_per_op, Some(125.0));
        let mut text = String::new();
        r.write_text(&mut text);
        assert!(text.contains("2000   1000/s   1.00 MB/s"), "{text}");
        assert!(
            text.contains("echo window 4 x 1000 B per connection"),
            "{text}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (json["mode"].as_str(), json["window"].as_u64()),
            (Some("echo"), Some(4))
        );
    }

    #[test]
    fn churn_reports_cycles_and_no_throughput() {
        let r = WorkloadReport::new(&measured(WorkloadMode::Churn, 50, 0.5, None));
        assert_eq!((r.ops, r.ops_per_sec, r.mb_per_sec), (50, 100.0, None));
        assert_eq!((r.server_cpu_secs, r.server_cpu_us_per_op), (None, None));
        assert!(r.ok());
        let mut text = String::new();
        r.write_text(&mut text);
        assert!(
            text.contains("cycles") && text.contains("handshake (window)"),
            "{text}"
        );
    }

    #[test]
    fn a_period_never_measured_or_an_unreadable_server_is_not_ok() {
        let mut f = measured(WorkloadMode::Echo, 0, 0.0, None);
        f.measured = false;
        let r = WorkloadReport::new(&f);
        assert!(!r.measured && !r.ok());

        let mut f = measured(WorkloadMode::Echo, 1, 0.001, None);
        f.server_pid = Some(u32::MAX - 1);
        f.server_error = Some("/proc/4294967294: gone".to_owned());
        let r = WorkloadReport::new(&f);
        assert!(!r.ok(), "{r:?}");
        let mut text = String::new();
        r.write_text(&mut text);
        assert!(text.contains("server CPU          unreadable"), "{text}");
    }

    #[test]
    fn churn_is_all_verified_with_a_connection_per_cycle() {
        let churn = WorkloadReport::new(&measured(WorkloadMode::Churn, 50, 0.5, None));
        let c = Counters {
            attempted: 60,
            verified: 60,
            ..Counters::default()
        };
        assert!(WorkloadReport::all_verified(Some(&churn), &c, 10));
        assert!(!WorkloadReport::all_verified(None, &c, 10));
        assert!(WorkloadReport::all_verified(None, &c, 60));
    }
}
