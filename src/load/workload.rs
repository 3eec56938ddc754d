//! The workloads servers are compared with: closed-loop echo (`--echo-window W`: every
//! connection keeps W messages in flight, a new one sent as each echo returns) and churn
//! (`--churn`: every connection slot loops connect, handshake, one echo, clean close).
//! This file holds one process's state of the workload and its measured window, and
//! what the report makes of it.
//!
//! The window: the load runs for `--warmup` and then `--duration`; operations (echoes
//! that came back intact, or cycles that ended with a clean close), their latencies
//! (round trips, or connect → 101) and, with `--server-pid`, the server's CPU time
//! (`cpu.rs`) count only between the two marks taken at the window's start and end, so
//! that connecting, warming up and draining are left out. The marks record the real
//! time they were taken, so the rate is right however late a loop turn takes them.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::cpu::{tree_cpu, TreeCpu};
use super::report::Percentiles;
use super::wire::{decode_histogram, encode_histogram, new_histogram, Counters, WorkerFinal};
use super::LoadArgs;
use crate::limits::sizing;

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Closed-loop echo with a window of messages in flight per connection.
    Echo,
    /// Connect, handshake, one echo, close; again.
    Churn,
}

/// A workload's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    pub mode: Mode,
    /// Echo: messages in flight per connection.
    pub window: u32,
    /// Bytes of each echo payload.
    pub message_size: u32,
    pub warmup: Duration,
    pub duration: Duration,
    /// The server process whose CPU time (with its descendants') is measured.
    pub server_pid: Option<u32>,
}

/// The workload of an `--echo-window` or `--churn` run.
pub fn config(args: &LoadArgs) -> Option<WorkloadConfig> {
    let mode = match (args.echo_window, args.churn) {
        (Some(_), _) => Mode::Echo,
        (None, true) => Mode::Churn,
        (None, false) => return None,
    };
    Some(WorkloadConfig {
        mode,
        window: args.echo_window.unwrap_or(1),
        message_size: args.message_size,
        warmup: args.warmup.unwrap_or(Duration::from_secs(1)),
        duration: args.duration.unwrap_or(Duration::from_secs(5)),
        server_pid: args.server_pid,
    })
}

/// Refuses a workload run that cannot work: more than one process (its window is
/// measured in one), or a server process that cannot be read.
pub fn check(w: &WorkloadConfig, procs: u32, nofile: u64) -> Result<(), String> {
    if procs > 1 {
        return Err(format!(
            "--echo-window and --churn run in one process: at most {} connections here \
             (RLIMIT_NOFILE {nofile}), and --procs 1",
            sizing::per_process(nofile)
        ));
    }
    if let Some(pid) = w.server_pid {
        tree_cpu(pid).map_err(|e| format!("--server-pid {pid}: /proc/{pid}/stat: {e}"))?;
    }
    Ok(())
}

/// One end of the measured window.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at_us: u64,
    ops: u64,
    server: Option<TreeCpu>,
    client: Option<Duration>,
}

/// One process's workload: whether it still sends, its window, its latencies.
#[derive(Debug)]
pub struct Workload {
    pub cfg: WorkloadConfig,
    /// New echoes are sent and new cycles started until the window ends.
    pub running: bool,
    begin: Option<Mark>,
    end: Option<Mark>,
    /// Latencies inside the window only.
    latency_us: Histogram<u64>,
    /// Echo: when each message in flight was sent (wrapping µs), at
    /// `[fd * window + seq % window]`: a connection's descriptor names it among the live
    /// ones, so the connection itself stays as small as before.
    sent_at: Vec<u32>,
    /// Echo: the frames owed to one connection while its input is handled, written to
    /// it together afterwards (one write per read, as a server corks its replies).
    pub cork: Vec<u8>,
    /// Why the server's CPU time could not be read, if it could not.
    server_error: Option<String>,
}

impl Workload {
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
            Mode::Echo => c.echoes,
            Mode::Churn => c.closed_clean,
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

    pub fn has_begun(&self) -> bool {
        self.begin.is_some()
    }

    fn is_measuring(&self) -> bool {
        self.begin.is_some() && self.end.is_none()
    }

    /// The warm-up is over: the window starts now.
    pub fn begin(&mut self, now_us: u64, c: &Counters) {
        if self.begin.is_none() {
            self.begin = Some(self.mark(now_us, c));
        }
    }

    /// The window ends now (if it began): nothing new is sent or started after it.
    pub fn end(&mut self, now_us: u64, c: &Counters) {
        self.running = false;
        if self.is_measuring() {
            self.end = Some(self.mark(now_us, c));
        }
    }

    /// An echo's round trip (echo mode) came back.
    pub fn on_echo(&mut self, rtt_us: u32) {
        if self.cfg.mode == Mode::Echo && self.is_measuring() {
            self.latency_us.saturating_record(u64::from(rtt_us));
        }
    }

    /// A handshake completed (what churn measures) in `latency_us`.
    pub fn on_handshake(&mut self, latency_us: u32) {
        if self.cfg.mode == Mode::Churn && self.is_measuring() {
            self.latency_us.saturating_record(u64::from(latency_us));
        }
    }

    fn slot(&mut self, fd: i32, seq: u32) -> usize {
        let window = self.cfg.window.max(1) as usize;
        let i = fd.max(0) as usize * window + seq as usize % window;
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

    /// When message `seq` of the connection on `fd` was sent (at most `window` ago).
    pub fn sent_time(&mut self, fd: i32, seq: u32) -> u32 {
        let i = self.slot(fd, seq);
        self.sent_at[i]
    }

    pub fn into_final(self) -> WorkloadFinal {
        let measured = self.begin.zip(self.end);
        let span = |f: fn(&Mark) -> Option<Duration>| {
            let (b, e) = measured?;
            Some(f(&e)?.saturating_sub(f(&b)?).as_secs_f64())
        };
        WorkloadFinal {
            mode: self.cfg.mode,
            window: self.cfg.window,
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

/// What one process measured in its window (sent to the report like the rest of a
/// worker's final).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadFinal {
    pub mode: Mode,
    pub window: u32,
    pub message_size: u32,
    pub warmup_secs: f64,
    /// The window began and ended (the run was not cut short before).
    pub measured: bool,
    pub secs: f64,
    pub ops: u64,
    /// Round trips (echo) or connect → 101 (churn) in the window, µs
    /// ([`encode_histogram`]).
    pub latency_us: String,
    pub server_pid: Option<u32>,
    pub server_cpu_secs: Option<f64>,
    pub server_processes: Option<u32>,
    pub server_error: Option<String>,
    pub client_cpu_secs: Option<f64>,
}

/// The workload's figures in the report.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    pub mode: Mode,
    /// Echo: messages in flight per connection (churn: 1).
    pub window: u32,
    pub message_size: u32,
    pub warmup_secs: f64,
    pub measured: bool,
    /// Length of the measured window.
    pub secs: f64,
    /// Echoes that came back intact (echo), or complete cycles: connect, 101, echo,
    /// clean close (churn).
    pub ops: u64,
    pub ops_per_sec: f64,
    /// Echo: payload megabytes (10^6) echoed per second, each way.
    pub mb_per_sec: Option<f64>,
    /// Echo: round trips; churn: connect start → verified 101.
    pub latency_us: Percentiles,
    pub server_pid: Option<u32>,
    /// The server's processes (itself and its descendants) at the window's end.
    pub server_processes: Option<u32>,
    /// utime + stime of the server and its descendants over the window.
    pub server_cpu_secs: Option<f64>,
    /// Server CPU seconds per second of the window (1.0: one core busy).
    pub server_cpu_util: Option<f64>,
    /// Server CPU time per operation, µs.
    pub server_cpu_us_per_op: Option<f64>,
    pub server_error: Option<String>,
    /// The load generator's own CPU time over the window, and per operation (µs).
    pub client_cpu_secs: Option<f64>,
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
            Some(w) if w.mode == Mode::Churn => {
                c.verified >= requested && c.verified == c.attempted
            }
            _ => c.verified == requested,
        }
    }

    pub fn new(f: &WorkloadFinal) -> WorkloadReport {
        let per_sec = |n: f64| (f.secs > 0.0).then(|| n / f.secs);
        let per_op = |cpu: Option<f64>| cpu.filter(|_| f.ops > 0).map(|c| c * 1e6 / f.ops as f64);
        let latency = decode_histogram(&f.latency_us).unwrap_or_else(|_| new_histogram());
        WorkloadReport {
            mode: f.mode,
            window: f.window,
            message_size: f.message_size,
            warmup_secs: f.warmup_secs,
            measured: f.measured,
            secs: f.secs,
            ops: f.ops,
            ops_per_sec: per_sec(f.ops as f64).unwrap_or(0.0),
            mb_per_sec: match f.mode {
                Mode::Echo => per_sec(f.ops as f64 * f64::from(f.message_size) / 1e6),
                Mode::Churn => None,
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

    /// Whether the window was measured with operations in it (and the server's CPU
    /// read, when asked for).
    pub fn ok(&self) -> bool {
        self.measured && self.ops > 0 && (self.server_pid.is_none() || self.server_error.is_none())
    }

    /// The text report's lines.
    pub fn write_text(&self, w: &mut String) {
        use std::fmt::Write as _;
        let (what, unit) = match self.mode {
            Mode::Echo => (
                format!(
                    "echo window {} x {} B per connection",
                    self.window, self.message_size
                ),
                "echoes",
            ),
            Mode::Churn => ("churn (connect, 101, echo, close)".to_owned(), "cycles"),
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
        let name = match self.mode {
            Mode::Echo => "round trip (window)",
            Mode::Churn => "handshake (window)",
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

    fn config(mode: Mode, server_pid: Option<u32>) -> WorkloadConfig {
        WorkloadConfig {
            mode,
            window: 4,
            message_size: 1000,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            server_pid,
        }
    }

    #[test]
    fn only_the_window_counts() {
        let mut w = Workload::new(config(Mode::Echo, Some(std::process::id())));
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
        let r = WorkloadReport::new(&f);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.ops_per_sec, 1_000.0);
        assert_eq!(r.mb_per_sec, Some(1.0));
        assert_eq!((r.latency_us.count, r.latency_us.p50), (2, 10));
        assert_eq!(r.server_processes.map(|n| n >= 1), Some(true));
        let cpu = r.server_cpu_secs.unwrap();
        assert!(cpu >= 0.0 && r.server_cpu_us_per_op == Some(cpu * 1e6 / 2_000.0));
        let mut text = String::new();
        r.write_text(&mut text);
        assert!(text.contains("2000   1000/s   1.00 MB/s"), "{text}");
    }

    #[test]
    fn churn_counts_clean_cycles_and_handshakes() {
        let mut w = Workload::new(config(Mode::Churn, None));
        let mut c = Counters::default();
        w.begin(0, &c);
        w.on_handshake(40);
        w.on_echo(1);
        c.closed_clean = 50;
        c.echoes = 77;
        w.end(500_000, &c);
        let r = WorkloadReport::new(&w.into_final());
        assert_eq!((r.ops, r.ops_per_sec, r.mb_per_sec), (50, 100.0, None));
        assert_eq!(r.latency_us.count, 1);
        assert_eq!((r.server_cpu_secs, r.server_cpu_us_per_op), (None, None));
        assert!(r.ok());
    }

    #[test]
    fn a_window_that_never_began_or_an_unreadable_server_is_not_ok() {
        let mut w = Workload::new(config(Mode::Echo, None));
        w.end(5, &Counters::default());
        let r = WorkloadReport::new(&w.into_final());
        assert!(!r.measured && !r.ok());

        let mut w = Workload::new(config(Mode::Echo, Some(u32::MAX - 1)));
        let c = Counters {
            echoes: 1,
            ..Counters::default()
        };
        w.begin(0, &Counters::default());
        w.end(1_000, &c);
        let r = WorkloadReport::new(&w.into_final());
        assert!(r.server_error.is_some() && !r.ok(), "{r:?}");
    }

    #[test]
    fn send_times_are_kept_per_descriptor_and_window_slot() {
        let mut w = Workload::new(config(Mode::Echo, None));
        w.on_sent(7, 0, 100);
        w.on_sent(7, 3, 103);
        w.on_sent(8, 3, 203);
        w.on_sent(7, 4, 104);
        assert_eq!(w.sent_time(7, 3), 103);
        assert_eq!(w.sent_time(8, 3), 203);
        // A window of 4: message 4 takes message 0's slot (0 has come back by then).
        assert_eq!(w.sent_time(7, 0), 104);
    }
}
