//! The `--timeline FILE` the parent writes: what happened in each wall-clock second of
//! the run over every load process, one JSON line per second.
//!
//! Each process reports every second it lived through, quiet ones too (`Second`, a
//! worker message), so the parent can tell a quiet second from a late one. The parent
//! ([`Timeline`]) merges one second from every process (counts and gauges add,
//! histograms merge) and writes it once every process still running has reported a
//! later one; the rest when the run ends. A file that cannot be written is a warning,
//! not a failed run: the timeline stops, the run goes on.
//!
//! Why wall-clock seconds rather than each process's own start: they line up across
//! processes without a handshake, and with the server samples scripts/scale.sh takes
//! (also stamped with the Unix second).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::wire::{decode_histogram, new_histogram, Second};

/// A second's latency summary in the file, µs (`null` when nothing was measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct Latency {
    n: u64,
    p50: Option<u64>,
    p99: Option<u64>,
    max: Option<u64>,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let at = |q| (!h.is_empty()).then(|| h.value_at_quantile(q));
        Latency {
            n: h.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: (!h.is_empty()).then(|| h.max()),
        }
    }
}

/// One line of the timeline file: a second of the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Line {
    /// The Unix second.
    t: u64,
    /// Seconds since the run started (the start's own second is 0).
    elapsed: u64,
    /// Connections established and open at the second's end.
    established: u64,
    /// Attempts under way (not yet verified) at the second's end.
    pending: u64,
    /// Handshakes completed within the second (101 with the right accept value).
    handshakes: u64,
    /// Connections whose first echo came back within the second.
    verified: u64,
    /// Echoes that came back intact within the second.
    echoes: u64,
    failed: u64,
    closed: u64,
    /// CPU the load processes used, in cores (1.0 = one core busy all second).
    load_cpu: f64,
    handshake_us: Latency,
    echo_rtt_us: Latency,
}

/// One second being merged.
#[derive(Debug)]
struct Merged {
    sum: Second,
    handshake_us: Histogram<u64>,
    echo_rtt_us: Histogram<u64>,
}

/// The parent's side: merges every process's seconds and writes the file.
#[derive(Debug)]
pub struct Timeline {
    /// `None` once a write failed.
    out: Option<BufWriter<File>>,
    start_second: u64,
    /// Per process: the latest second it reported (`None`: not started yet, so it holds
    /// back no second), and whether it has ended.
    latest: Vec<Option<u64>>,
    ended: Vec<bool>,
    /// Per process: whether it runs on another host, and then the whole seconds its
    /// clock is behind this host's (once known), added to every second it reports.
    remote: Vec<bool>,
    shift: Vec<i64>,
    open: BTreeMap<u64, Merged>,
}

impl Timeline {
    /// Creates (truncates) `path` for a run of `processes` that started at
    /// `start_unix_ms`.
    pub fn create(path: &Path, processes: usize, start_unix_ms: u64) -> io::Result<Timeline> {
        Ok(Timeline {
            out: Some(BufWriter::new(File::create(path)?)),
            start_second: start_unix_ms / 1000,
            latest: vec![None; processes],
            ended: vec![false; processes],
            remote: vec![false; processes],
            shift: vec![0; processes],
            open: BTreeMap::new(),
        })
    }

    /// Process `worker` starts now: the seconds from this one on wait for its reports.
    pub fn started(&mut self, worker: usize, now_unix_ms: u64) {
        if let Some(latest) = self.latest.get_mut(worker) {
            *latest = Some((now_unix_ms / 1000).saturating_sub(1));
        }
    }

    /// Process `worker` runs on another host: its seconds go on this host's clock.
    pub fn remote(&mut self, worker: usize) {
        if let Some(r) = self.remote.get_mut(worker) {
            *r = true;
        }
    }

    /// Process `worker` read `theirs_ms` on its clock as it started, and the line
    /// arrived at `ours_ms` on this host's. A remote process's seconds move by the
    /// difference, rounded to whole seconds (the timeline's grain): the line's way here
    /// (ssh, milliseconds) is in the difference too, far under the half second that
    /// would move a second. Local processes share this clock and never move.
    pub fn clock(&mut self, worker: usize, theirs_ms: u64, ours_ms: u64) {
        if self.remote.get(worker) == Some(&true) {
            let behind = ours_ms as i64 - theirs_ms as i64;
            self.shift[worker] = (behind + 500).div_euclid(1000);
        }
    }

    /// Adds one second of process `worker` (on its own clock).
    pub fn add(&mut self, worker: usize, mut s: Second) {
        if let Some(&shift) = self.shift.get(worker) {
            s.t = s.t.saturating_add_signed(shift);
        }
        if let Some(latest) = self.latest.get_mut(worker) {
            *latest = Some(latest.map_or(s.t, |t| t.max(s.t)));
        }
        let m = self.open.entry(s.t).or_insert_with(|| Merged {
            sum: Second {
                t: s.t,
                open: 0,
                pending: 0,
                handshakes: 0,
                verified: 0,
                echoes: 0,
                failed: 0,
                closed: 0,
                cpu_us: 0,
                handshake_us: String::new(),
                echo_rtt_us: String::new(),
            },
            handshake_us: new_histogram(),
            echo_rtt_us: new_histogram(),
        });
        let sum = &mut m.sum;
        sum.open += s.open;
        sum.pending += s.pending;
        sum.handshakes += s.handshakes;
        sum.verified += s.verified;
        sum.echoes += s.echoes;
        sum.failed += s.failed;
        sum.closed += s.closed;
        sum.cpu_us += s.cpu_us;
        merge(&mut m.handshake_us, &s.handshake_us);
        merge(&mut m.echo_rtt_us, &s.echo_rtt_us);
        self.write_complete();
    }

    /// Process `worker` has ended: it holds no second back any more.
    pub fn ended(&mut self, worker: usize) {
        if let Some(e) = self.ended.get_mut(worker) {
            *e = true;
        }
        self.write_complete();
    }

    /// Writes every second still held (the run is over).
    pub fn finish(&mut self) {
        self.write_through(u64::MAX);
    }

    /// Writes the seconds every running process has reported (a process reports its
    /// seconds in order, each once).
    fn write_complete(&mut self) {
        let mut horizon = u64::MAX;
        for (latest, ended) in self.latest.iter().zip(&self.ended) {
            match (latest, ended) {
                (_, true) => {}
                (None, false) => {}
                (Some(t), false) => horizon = horizon.min(*t),
            }
        }
        self.write_through(horizon);
    }

    /// Writes and flushes the seconds up to `horizon`.
    fn write_through(&mut self, horizon: u64) {
        while let Some(entry) = self.open.first_entry() {
            // A process reports each second once, in order: having reported `horizon`,
            // it has nothing more for any second up to it.
            if *entry.key() > horizon {
                break;
            }
            let m = entry.remove();
            let line = self.line(&m);
            let Some(out) = &mut self.out else {
                continue;
            };
            let written = serde_json::to_writer(&mut *out, &line)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written {
                log::warn!("timeline: {e}; no more seconds are written");
                self.out = None;
            }
        }
        if let Some(Err(e)) = self.out.as_mut().map(|o| o.flush()) {
            log::warn!("timeline: {e}; no more seconds are written");
            self.out = None;
        }
    }

    fn line(&self, m: &Merged) -> Line {
        let s = &m.sum;
        Line {
            t: s.t,
            elapsed: s.t.saturating_sub(self.start_second),
            established: s.open,
            pending: s.pending,
            handshakes: s.handshakes,
            verified: s.verified,
            echoes: s.echoes,
            failed: s.failed,
            closed: s.closed,
            load_cpu: (s.cpu_us as f64 / 1e6 * 1000.0).round() / 1000.0,
            handshake_us: Latency::of(&m.handshake_us),
            echo_rtt_us: Latency::of(&m.echo_rtt_us),
        }
    }
}

fn merge(into: &mut Histogram<u64>, encoded: &str) {
    if encoded.is_empty() {
        return;
    }
    match decode_histogram(encoded).map(|h| into.add(&h).map_err(|e| format!("{e:?}"))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) | Err(e) => log::warn!("timeline: dropping a worker's histogram: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::wire::encode_histogram;

    fn second(t: u64, open: u64, handshakes: u64, latencies: &[u64]) -> Second {
        let mut h = new_histogram();
        for &v in latencies {
            h.record(v).unwrap();
        }
        Second {
            t,
            open,
            pending: 1,
            handshakes,
            verified: handshakes,
            echoes: 0,
            failed: 0,
            closed: 0,
            cpu_us: 250_000,
            handshake_us: encode_histogram(&h),
            echo_rtt_us: String::new(),
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn the_parent_writes_a_second_once_every_running_process_has_passed_it() {
        let dir = std::env::temp_dir().join(format!("wsreactor-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let mut t = Timeline::create(&path, 4, 99_700).unwrap();
        for worker in 0..3 {
            t.started(worker, 100_020);
        }
        t.add(0, second(100, 10, 10, &[1_000; 10]));
        t.add(1, second(100, 20, 20, &[3_000; 20]));
        t.add(0, second(101, 10, 0, &[]));
        assert!(lines(&path).is_empty(), "process 2 has said nothing yet");
        t.add(2, second(100, 30, 30, &[2_000; 30]));
        let written = lines(&path);
        assert_eq!(written.len(), 1, "101 waits for processes 1 and 2");
        let l = &written[0];
        assert_eq!(
            (l["t"].as_u64(), l["elapsed"].as_u64()),
            (Some(100), Some(1))
        );
        assert_eq!(l["established"], 60);
        assert_eq!(
            (l["handshakes"].as_u64(), l["pending"].as_u64()),
            (Some(60), Some(3))
        );
        assert_eq!(l["load_cpu"], 0.75);
        assert_eq!(l["handshake_us"]["n"], 60);
        let p50 = l["handshake_us"]["p50"].as_u64().unwrap();
        assert!((1_999..=2_001).contains(&p50), "{p50}");
        assert!(l["echo_rtt_us"]["p50"].is_null());
        // Process 2 ends; 1 reports 101; then 0 has 102 under way at the end.
        t.ended(2);
        t.add(1, second(101, 20, 0, &[]));
        assert_eq!(lines(&path).len(), 2);
        t.add(0, second(102, 0, 0, &[]));
        t.finish();
        let written = lines(&path);
        let ts: Vec<u64> = written.iter().map(|l| l["t"].as_u64().unwrap()).collect();
        assert_eq!(ts, [100, 101, 102]);
        assert_eq!(written[1]["established"], 30);
        // Process 3 never started: it held nothing back.
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_remote_process_seconds_go_on_this_hosts_clock() {
        let dir = std::env::temp_dir().join(format!("wsreactor-timeline3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let mut t = Timeline::create(&path, 3, 100_000).unwrap();
        // Worker 0 is local; 1 runs 3.2 s behind us, 2 runs 0.3 s ahead of us (and its
        // line took 40 ms to arrive): 1 moves 3 s on, 2 stays.
        for worker in 0..3 {
            t.started(worker, 100_000);
        }
        t.remote(1);
        t.remote(2);
        t.clock(0, 50_000, 100_000);
        t.clock(1, 96_800, 100_000);
        t.clock(2, 100_260, 100_000);
        t.add(0, second(100, 1, 1, &[]));
        t.add(1, second(97, 2, 2, &[]));
        t.add(2, second(100, 4, 4, &[]));
        t.finish();
        let written = lines(&path);
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!(written[0]["t"], 100);
        assert_eq!(written[0]["established"], 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_process_started_later_holds_back_only_the_seconds_from_its_start() {
        let dir = std::env::temp_dir().join(format!("wsreactor-timeline2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let mut t = Timeline::create(&path, 2, 10_000).unwrap();
        t.started(0, 10_000);
        t.add(0, second(10, 5, 5, &[]));
        t.add(0, second(11, 9, 4, &[]));
        assert_eq!(lines(&path).len(), 2, "process 1 has not started");
        t.started(1, 12_400);
        t.add(0, second(12, 9, 0, &[]));
        assert_eq!(
            lines(&path).len(),
            2,
            "12 waits for process 1, started in it"
        );
        t.add(1, second(12, 3, 3, &[]));
        let written = lines(&path);
        assert_eq!(written.len(), 3);
        assert_eq!(written[2]["established"], 12);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
