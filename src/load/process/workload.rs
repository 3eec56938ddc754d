//! One process's part in a workload run: closed-loop echo (`--echo-window W`: every
//! connection keeps W messages in flight, a new one sent as each echo returns) or churn
//! (`--churn`: every connection slot loops connect, handshake, one echo, clean close).
//! It holds whether new work may start, the send times of the echoes in flight, and the
//! measured period.
//!
//! The measured period: the load runs for `--warmup` and then `--duration`; operations
//! (echoes that came back intact, or cycles that ended with a clean close), their
//! latencies (round trips, or connect → 101) and, with `--server-pid`, the server's CPU
//! time (`cpu.rs`) count only between the two marks taken at the period's start and
//! end, so that connecting, warming up and draining are left out. The marks record the
//! real time they were taken, so the rate is right however late a loop turn takes them.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::cpu::{tree_cpu, TreeCpu};
use super::settings::WorkloadConfig;
use crate::load::wire::{encode_histogram, new_histogram, Counters, WorkloadFinal, WorkloadMode};

/// One end of the measured period.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at_us: u64,
    ops: u64,
    server: Option<TreeCpu>,
    client: Option<Duration>,
}

/// One process's workload: whether it still sends, its measured period, its latencies.
#[derive(Debug)]
pub struct Workload {
    /// Its settings.
    pub cfg: WorkloadConfig,
    /// New echoes are sent and new cycles started until the measured period ends.
    pub running: bool,
    begin: Option<Mark>,
    end: Option<Mark>,
    /// Latencies inside the measured period only.
    latency_us: Histogram<u64>,
    /// Echo: when each message in flight was sent (wrapping µs), at
    /// `[fd * echo_window + seq % echo_window]`: a connection's descriptor names it
    /// among the live ones, so the connection itself holds none of it (it stays small).
    sent_at: Vec<u32>,
    /// Echo: the frames owed to one connection while its input is handled, written to
    /// it together afterwards (one write per read, as a server corks its replies).
    pub cork: Vec<u8>,
    /// Why the server's CPU time could not be read, if it could not.
    server_error: Option<String>,
}

impl Workload {
    /// A workload not yet measuring.
    pub fn new(cfg: WorkloadConfig) -> Workload {
        Workload {
            cfg,
            running: true,
            begin: None,
            end: None,
            latency_us: new_histogram(),
            sent_at: Vec::new(),
            cork: Vec::new(),
            server_error: None,
        }
    }

    /// The operations counted so far: intact echoes, or cycles closed cleanly.
    fn ops(&self, c: &Counters) -> u64 {
        match self.cfg.mode {
            WorkloadMode::Echo => c.echoes,
            WorkloadMode::Churn => c.closed_clean,
        }
    }

    fn mark(&mut self, now_us: u64, c: &Counters) -> Mark {
        let server = self.cfg.server_pid.and_then(|pid| match tree_cpu(pid) {
            Ok(cpu) => Some(cpu),
            Err(e) => {
                self.server_error
                    .get_or_insert_with(|| format!("/proc/{pid}: {e}"));
                None
            }
        });
        Mark {
            at_us: now_us,
            ops: self.ops(c),
            server,
            client: tree_cpu(std::process::id()).ok().map(|t| t.total),
        }
    }

    /// Whether the measured period has begun.
    pub fn has_begun(&self) -> bool {
        self.begin.is_some()
    }

    fn is_measuring(&self) -> bool {
        self.begin.is_some() && self.end.is_none()
    }

    /// The warm-up is over: the measured period starts now.
    pub fn begin(&mut self, now_us: u64, c: &Counters) {
        if self.begin.is_none() {
            self.begin = Some(self.mark(now_us, c));
        }
    }

    /// The measured period ends now (if it began): nothing new is sent or started after
    /// it.
    pub fn end(&mut self, now_us: u64, c: &Counters) {
        self.running = false;
        if self.is_measuring() {
            self.end = Some(self.mark(now_us, c));
        }
    }

    /// An echo's round trip (echo mode) came back.
    pub fn on_echo(&mut self, rtt_us: u32) {
        if self.cfg.mode == WorkloadMode::Echo && self.is_measuring() {
            self.latency_us.saturating_record(u64::from(rtt_us));
        }
    }

    /// A handshake completed (what churn measures) in `latency_us`.
    pub fn on_handshake(&mut self, latency_us: u32) {
        if self.cfg.mode == WorkloadMode::Churn && self.is_measuring() {
            self.latency_us.saturating_record(u64::from(latency_us));
        }
    }

    fn slot(&mut self, fd: i32, seq: u32) -> usize {
        let echo_window = self.cfg.echo_window.max(1) as usize;
        let i = fd.max(0) as usize * echo_window + seq as usize % echo_window;
        if i >= self.sent_at.len() {
            self.sent_at.resize((i + 1).next_power_of_two(), 0);
        }
        i
    }

    /// Message `seq` of the connection on descriptor `fd` is sent at `now_us`.
    pub fn on_sent(&mut self, fd: i32, seq: u32, now_us: u32) {
        let i = self.slot(fd, seq);
        self.sent_at[i] = now_us;
    }

    /// When message `seq` of the connection on `fd` was sent (at most an echo window
    /// ago).
    pub fn sent_time(&mut self, fd: i32, seq: u32) -> u32 {
        let i = self.slot(fd, seq);
        self.sent_at[i]
    }

    /// What the measured period saw, for the parent.
    pub fn into_final(self) -> WorkloadFinal {
        let measured = self.begin.zip(self.end);
        let span = |f: fn(&Mark) -> Option<Duration>| {
            let (b, e) = measured?;
            Some(f(&e)?.saturating_sub(f(&b)?).as_secs_f64())
        };
        WorkloadFinal {
            mode: self.cfg.mode,
            echo_window: self.cfg.echo_window,
            message_size: self.cfg.message_size,
            warmup_secs: self.cfg.warmup.as_secs_f64(),
            measured: measured.is_some(),
            secs: measured.map_or(0.0, |(b, e)| (e.at_us - b.at_us) as f64 / 1e6),
            ops: measured.map_or(0, |(b, e)| e.ops - b.ops),
            latency_us: encode_histogram(&self.latency_us),
            server_pid: self.cfg.server_pid,
            server_cpu_secs: span(|m| m.server.map(|s| s.total)),
            server_processes: measured.and_then(|(_, e)| e.server).map(|s| s.processes),
            server_error: self.server_error,
            client_cpu_secs: span(|m| m.client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::wire::decode_histogram;

    fn config(mode: WorkloadMode, server_pid: Option<u32>) -> WorkloadConfig {
        WorkloadConfig {
            mode,
            echo_window: 4,
            message_size: 1000,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            server_pid,
        }
    }

    #[test]
    fn only_the_measured_period_counts() {
        let mut w = Workload::new(config(WorkloadMode::Echo, Some(std::process::id())));
        let mut c = Counters {
            echoes: 100,
            ..Counters::default()
        };
        w.on_echo(5);
        w.begin(1_000_000, &c);
        w.on_echo(10);
        w.on_echo(30);
        w.on_handshake(999);
        c.echoes = 2_100;
        w.end(3_000_000, &c);
        w.on_echo(7);
        assert!(!w.running);
        let f = w.into_final();
        assert!(f.measured);
        assert_eq!((f.ops, f.secs), (2_000, 2.0));
        let latency = decode_histogram(&f.latency_us).unwrap();
        assert_eq!((latency.len(), latency.value_at_quantile(0.5)), (2, 10));
        assert_eq!(f.server_processes.map(|n| n >= 1), Some(true));
        assert!(f.server_cpu_secs.is_some_and(|cpu| cpu >= 0.0));
        assert!(f.server_error.is_none());
    }

    #[test]
    fn churn_counts_clean_cycles_and_handshakes() {
        let mut w = Workload::new(config(WorkloadMode::Churn, None));
        let mut c = Counters::default();
        w.begin(0, &c);
        w.on_handshake(40);
        w.on_echo(1);
        c.closed_clean = 50;
        c.echoes = 77;
        w.end(500_000, &c);
        let f = w.into_final();
        assert_eq!((f.ops, f.secs), (50, 0.5));
        assert_eq!(decode_histogram(&f.latency_us).unwrap().len(), 1);
        assert_eq!((f.server_cpu_secs, f.server_processes), (None, None));
    }

    #[test]
    fn a_period_that_never_began_or_an_unreadable_server_is_reported() {
        let mut w = Workload::new(config(WorkloadMode::Echo, None));
        w.end(5, &Counters::default());
        let f = w.into_final();
        assert!(!f.measured && f.ops == 0);

        let mut w = Workload::new(config(WorkloadMode::Echo, Some(u32::MAX - 1)));
        let c = Counters {
            echoes: 1,
            ..Counters::default()
        };
        w.begin(0, &Counters::default());
        w.end(1_000, &c);
        let f = w.into_final();
        assert!(f.measured && f.server_error.is_some(), "{f:?}");
    }

    #[test]
    fn send_times_are_kept_per_descriptor_and_echo_window_slot() {
        let mut w = Workload::new(config(WorkloadMode::Echo, None));
        w.on_sent(7, 0, 100);
        w.on_sent(7, 3, 103);
        w.on_sent(8, 3, 203);
        w.on_sent(7, 4, 104);
        assert_eq!(w.sent_time(7, 3), 103);
        assert_eq!(w.sent_time(8, 3), 203);
        // An echo window of 4: message 4 takes message 0's slot (0 is back by then).
        assert_eq!(w.sent_time(7, 0), 104);
    }
}
