//! What the parent hears from the load processes and what it makes of it: [`Tally`]
//! collects worker messages as they arrive (the latest counters of each, the end of
//! each ramp, each final result, each second for `--timeline`), and [`Tally::report`]
//! merges the finals' counters, histograms and per-source counts into the run's
//! [`Report`]. A worker that died without a final still counts with its last progress
//! counters (its latencies are lost, and the report says so). A chat run adds the
//! room's deliveries (expected: every member gets every message).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::chat_section::ChatReport;
use super::percentiles::Percentiles;
use super::run_report::{Report, RunInfo};
use super::timeline_file::Timeline;
use super::workload_section::WorkloadReport;
use crate::load::wire::{
    decode_histogram, new_histogram, ChatFinal, Counters, TlsSession, WorkerFinal, WorkerMsg,
};

/// What each worker has said so far.
#[derive(Debug)]
pub struct Tally {
    started: Instant,
    latest: Vec<Counters>,
    ramped: Vec<bool>,
    finals: Vec<Option<WorkerFinal>>,
    /// When the last worker finished its ramp (or ended).
    ramp_time: Option<Duration>,
    /// Per worker: where its per-source counts go in the run's (`--hosts`; else 0).
    source_offset: Vec<usize>,
    /// With `--timeline`: the seconds being merged and written.
    pub timeline: Option<Timeline>,
}

impl Tally {
    /// A run of `workers` processes that started at `started`; nothing heard yet.
    pub fn new(workers: usize, started: Instant) -> Tally {
        Tally {
            started,
            latest: vec![Counters::default(); workers],
            ramped: vec![false; workers],
            finals: vec![None; workers],
            ramp_time: None,
            source_offset: vec![0; workers],
            timeline: None,
        }
    }

    /// Takes one message of worker `worker`.
    pub fn on_msg(&mut self, worker: usize, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Progress { counters } => self.latest[worker] = counters,
            WorkerMsg::Ramped { counters } => {
                self.latest[worker] = counters;
                self.mark_ramped(worker);
            }
            WorkerMsg::Final(fin) => {
                self.latest[worker] = fin.counters.clone();
                self.finals[worker] = Some(*fin);
                self.mark_ramped(worker);
            }
            WorkerMsg::Second(second) => {
                if let Some(t) = &mut self.timeline {
                    t.add(worker, *second);
                }
            }
            // Only the parent knows when it heard this: see [`Tally::on_clock`].
            WorkerMsg::Clock { .. } => {}
        }
    }

    /// Worker `worker` runs on another host, and its source addresses start at
    /// `source_offset` in the run's list of every host's: its per-source counts go
    /// there, and its seconds are put on this host's clock.
    pub fn place(&mut self, worker: usize, source_offset: usize) {
        self.source_offset[worker] = source_offset;
        if let Some(t) = &mut self.timeline {
            t.remote(worker);
        }
    }

    /// Worker `worker` said its clock read `theirs_ms` as it started; it arrived here
    /// at `ours_ms` (this host's clock).
    pub fn on_clock(&mut self, worker: usize, theirs_ms: u64, ours_ms: u64) {
        if let Some(t) = &mut self.timeline {
            t.clock(worker, theirs_ms, ours_ms);
        }
    }

    /// The worker ended (its output closed), with or without a final.
    pub fn on_gone(&mut self, worker: usize) {
        self.mark_ramped(worker);
        if let Some(t) = &mut self.timeline {
            t.ended(worker);
        }
    }

    fn mark_ramped(&mut self, worker: usize) {
        self.ramped[worker] = true;
        if self.ramp_time.is_none() && self.all_ramped() {
            self.ramp_time = Some(self.started.elapsed());
        }
    }

    /// Whether every worker has finished its ramp (or ended): the hold may start.
    pub fn all_ramped(&self) -> bool {
        self.ramped.iter().all(|&r| r)
    }

    /// Whether worker `worker` has sent its final result.
    pub fn has_final(&self, worker: usize) -> bool {
        self.finals[worker].is_some()
    }

    /// The sum of every worker's latest counters.
    pub fn totals(&self) -> Counters {
        let mut total = Counters::default();
        for c in &self.latest {
            total.merge(c);
        }
        total
    }

    /// Merges everything into the final report.
    pub fn report(&self, run: RunInfo) -> Report {
        let counters = self.totals();
        let mut handshake = new_histogram();
        let mut echo = new_histogram();
        let mut hold_echo = new_histogram();
        let mut chat: Option<ChatFinal> = None;
        let mut delivery = new_histogram();
        let mut per_source: Vec<u64> = Vec::new();
        let (mut open_at_hold_start, mut not_attempted, mut lost) = (0, 0, 0);
        for (fin, &offset) in self.finals.iter().zip(&self.source_offset) {
            let Some(fin) = fin else {
                lost += 1;
                continue;
            };
            open_at_hold_start += fin.open_at_hold_start;
            not_attempted += fin.not_attempted;
            merge_histogram(&mut handshake, &fin.handshake_us);
            merge_histogram(&mut echo, &fin.echo_rtt_us);
            merge_histogram(&mut hold_echo, &fin.hold_echo_rtt_us);
            if let Some(room) = &fin.chat {
                merge_histogram(&mut delivery, &room.delivery_us);
                let sum = chat.get_or_insert(ChatFinal {
                    members: 0,
                    members_complete: 0,
                    messages: room.messages,
                    secs: 0.0,
                    delivery_us: String::new(),
                });
                sum.members += room.members;
                sum.members_complete += room.members_complete;
                sum.secs = sum.secs.max(room.secs);
            }
            if per_source.len() < offset + fin.per_source.len() {
                per_source.resize(offset + fin.per_source.len(), 0);
            }
            for (sum, n) in per_source[offset..].iter_mut().zip(&fin.per_source) {
                *sum += n;
            }
        }
        // A lost worker's unstarted attempts are unknown: count them as not attempted.
        not_attempted += run
            .requested
            .saturating_sub(counters.attempted + not_attempted);
        let ramp_secs = self.ramp_time.unwrap_or(run.elapsed).as_secs_f64();
        let failed = counters.failed();
        let echo_failed = counters.failures.iter().any(|(f, _)| f.is_echo());
        let chat = run.chat.as_ref().map(|info| {
            let room = chat.unwrap_or(ChatFinal {
                members: 0,
                members_complete: 0,
                messages: 0,
                secs: 0.0,
                delivery_us: String::new(),
            });
            ChatReport::new(info, &room, &counters, Percentiles::of(&delivery))
        });
        // A chat run needs every requested connection in the room, and every message
        // delivered to every member.
        let chat_ok = chat.as_ref().is_none_or(|c| {
            c.members == run.requested && c.messages_requested > 0 && c.deliveries_missing == 0
        });
        let workload = WorkloadReport::of(&self.finals);
        let verified_all =
            WorkloadReport::all_verified(workload.as_ref(), &counters, run.requested);
        let ok = !run.interrupted
            && lost == 0
            && verified_all
            && workload.as_ref().is_none_or(WorkloadReport::ok)
            && failed == 0
            && !echo_failed
            && chat_ok;
        Report {
            target: run.target,
            path: run.path,
            processes: run.processes,
            sources: run.sources,
            source_count: run.source_count,
            max_per_source: per_source.iter().copied().max().unwrap_or(0),
            requested: run.requested,
            attempted: counters.attempted,
            not_attempted,
            established: counters.established,
            verified: counters.verified,
            failed,
            failures: counters
                .failures
                .iter()
                .map(|(f, n)| (f.to_string(), *n))
                .collect(),
            open_at_hold_start,
            echoes: counters.echoes,
            closed_clean: counters.closed_clean,
            close_timeout: counters.close_timeout,
            close_unclean: counters.close_unclean,
            aborted: counters.aborted,
            ramp_secs,
            connect_rate: if ramp_secs > 0.0 {
                counters.established as f64 / ramp_secs
            } else {
                0.0
            },
            total_secs: run.elapsed.as_secs_f64(),
            handshake_us: Percentiles::of(&handshake),
            echo_rtt_us: Percentiles::of(&echo),
            hold_echo_rtt_us: Percentiles::of(&hold_echo),
            chat,
            workload,
            payload: run.payload,
            deflate: run.deflate,
            deflate_window: run.deflate_window,
            deflate_takeover: counters.takeover,
            warmup_bytes: run.warmup_bytes,
            tls: merged_tls(&self.finals),
            workers_lost: lost,
            interrupted: run.interrupted,
            ok,
        }
    }
}

fn merge_histogram(into: &mut Histogram<u64>, encoded: &str) {
    match decode_histogram(encoded).map(|h| into.add(&h).map_err(|e| format!("{e:?}"))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) | Err(e) => log::warn!("dropping a worker's histogram: {e}"),
    }
}

/// What the first handshake of the first process that made one negotiated, with the
/// full and resumed handshakes of every process.
fn merged_tls(finals: &[Option<WorkerFinal>]) -> Option<TlsSession> {
    let mut all = finals.iter().flatten().filter_map(|f| f.tls.as_ref());
    let mut merged = all.next()?.clone();
    for t in all {
        merged.full += t.full;
        merged.resumed += t.resumed;
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::report::ChatInfo;
    use crate::load::wire::{encode_histogram, Failure};

    fn final_with(counters: Counters, rtts: &[u64], per_source: Vec<u64>) -> WorkerMsg {
        let mut h = new_histogram();
        for &v in rtts {
            h.record(v).unwrap();
        }
        WorkerMsg::Final(Box::new(WorkerFinal {
            open_at_hold_start: counters.established,
            counters,
            not_attempted: 0,
            per_source,
            handshake_us: encode_histogram(&h),
            echo_rtt_us: encode_histogram(&h),
            hold_echo_rtt_us: encode_histogram(&h),
            chat: None,
            workload: None,
            tls: None,
        }))
    }

    fn run_info(requested: u64) -> RunInfo {
        RunInfo {
            target: "127.0.0.1:9001".into(),
            path: "/".into(),
            requested,
            processes: 2,
            sources: Some("127.0.0.2-127.0.0.4".into()),
            source_count: 3,
            elapsed: Duration::from_secs(3),
            interrupted: false,
            chat: None,
            payload: "ascii",
            deflate: false,
            deflate_window: None,
            warmup_bytes: 0,
        }
    }

    fn done(n: u64) -> Counters {
        Counters {
            attempted: n,
            established: n,
            verified: n,
            echoes: n,
            closed_clean: n,
            ..Counters::default()
        }
    }

    #[test]
    fn two_clean_workers_merge_into_an_ok_report() {
        let mut t = Tally::new(2, Instant::now());
        t.on_msg(0, WorkerMsg::Ramped { counters: done(3) });
        assert!(!t.all_ramped());
        t.on_msg(1, WorkerMsg::Ramped { counters: done(2) });
        assert!(t.all_ramped());
        assert_eq!(t.totals().verified, 5);
        t.on_msg(0, final_with(done(3), &[100, 200, 300], vec![1, 1, 1]));
        t.on_msg(1, final_with(done(2), &[1000, 2000], vec![1, 1, 0]));
        let r = t.report(run_info(5));
        assert!(r.ok, "{}", r.to_text());
        assert_eq!((r.established, r.verified, r.failed), (5, 5, 0));
        assert_eq!(r.max_per_source, 2);
        assert_eq!(r.open_at_hold_start, 5);
        assert_eq!((r.echo_rtt_us.count, r.hold_echo_rtt_us.count), (5, 5));
        assert_eq!(r.echo_rtt_us.p50, 300);
        assert!((1999..=2001).contains(&r.echo_rtt_us.max));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["verified"], 5);
        assert_eq!(json["ok"], true);
        assert!(r.to_text().contains("OK"));
    }

    #[test]
    fn hosts_sources_are_counted_apart() {
        // Two hosts, three addresses each: their first addresses are not one address.
        let mut t = Tally::new(2, Instant::now());
        t.place(1, 3);
        t.on_msg(0, final_with(done(6), &[100], vec![2, 2, 2]));
        t.on_msg(1, final_with(done(6), &[100], vec![2, 2, 2]));
        assert_eq!(t.report(run_info(12)).max_per_source, 2);
        let mut unplaced = Tally::new(2, Instant::now());
        unplaced.on_msg(0, final_with(done(6), &[100], vec![2, 2, 2]));
        unplaced.on_msg(1, final_with(done(6), &[100], vec![2, 2, 2]));
        assert_eq!(unplaced.report(run_info(12)).max_per_source, 4);
    }

    #[test]
    fn tls_is_reported_with_every_process_handshakes() {
        let mut t = Tally::new(2, Instant::now());
        for (worker, full) in [(0, 3), (1, 2)] {
            let WorkerMsg::Final(mut fin) = final_with(done(full), &[100], vec![full]) else {
                unreachable!();
            };
            fin.tls = Some(TlsSession {
                version: "TLSv1_3".into(),
                cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
                group: "X25519".into(),
                full,
                resumed: 0,
            });
            t.on_msg(worker, WorkerMsg::Final(fin));
        }
        let r = t.report(run_info(5));
        let tls = r.tls.clone().expect("TLS was used");
        assert_eq!(
            (tls.full, tls.resumed, tls.group.as_str()),
            (5, 0, "X25519")
        );
        assert!(r
            .to_text()
            .contains("TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519 (5 full"));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["tls"]["full"], 5);
        // Over plain TCP the report has no `tls` at all.
        let mut plain = Tally::new(1, Instant::now());
        plain.on_msg(0, final_with(done(1), &[100], vec![1]));
        let json = plain.report(run_info(1)).to_json();
        assert!(!json.contains("\"tls\""), "{json}");
    }

    #[test]
    fn failures_and_lost_workers_fail_the_run() {
        let mut t = Tally::new(2, Instant::now());
        let mut c = done(2);
        c.attempted = 4;
        c.fail(Failure::ConnectRefused);
        c.fail(Failure::HandshakeRejected(503));
        t.on_msg(0, final_with(c, &[10], vec![2, 0, 0]));
        t.on_msg(1, WorkerMsg::Progress { counters: done(1) });
        t.on_gone(1);
        assert!(t.all_ramped());
        let r = t.report(run_info(6));
        assert!(!r.ok);
        assert_eq!(r.workers_lost, 1);
        assert_eq!(r.failed, 2);
        assert_eq!(r.failures["handshake_rejected_503"], 1);
        assert_eq!(r.verified, 3);
        // 6 requested, 5 attempted by what we know: 1 never started.
        assert_eq!(r.not_attempted, 1);
        let text = r.to_text();
        assert!(
            text.contains("connect_refused") && text.contains("FAILED"),
            "{text}"
        );
    }

    /// A one-worker chat run: `members` members of which `complete` got all of
    /// `messages`, and `deliveries` deliveries in all.
    fn chat_run(members: u64, complete: u64, messages: u64, deliveries: u64) -> Report {
        let mut counters = done(members);
        counters.echoes = 0;
        counters.chat_sent = messages;
        counters.deliveries = deliveries;
        let mut h = new_histogram();
        for v in 1..=deliveries {
            h.record(v).unwrap();
        }
        let mut t = Tally::new(1, Instant::now());
        t.on_msg(
            0,
            WorkerMsg::Final(Box::new(WorkerFinal {
                open_at_hold_start: members,
                counters,
                not_attempted: 0,
                per_source: vec![members],
                handshake_us: encode_histogram(&h),
                echo_rtt_us: encode_histogram(&new_histogram()),
                hold_echo_rtt_us: encode_histogram(&new_histogram()),
                chat: Some(ChatFinal {
                    members,
                    members_complete: complete,
                    messages,
                    secs: 2.0,
                    delivery_us: encode_histogram(&h),
                }),
                workload: None,
                tls: None,
            })),
        );
        let mut info = run_info(members);
        info.chat = Some(ChatInfo {
            room: "lobby".into(),
            chat_window: 8,
            rate: None,
        });
        t.report(info)
    }

    #[test]
    fn a_chat_run_is_ok_only_with_every_delivery() {
        let r = chat_run(4, 4, 10, 40);
        assert!(r.ok, "{}", r.to_text());
        let chat = r.chat.as_ref().unwrap();
        assert_eq!((chat.deliveries_expected, chat.deliveries_missing), (40, 0));
        assert_eq!(
            (chat.messages_per_sec, chat.deliveries_per_sec),
            (5.0, 20.0)
        );
        assert_eq!(chat.delivery_us.count, 40);
        let text = r.to_text();
        assert!(text.contains("40 of 40 expected, 0 missing"), "{text}");
        assert!(!text.contains("echoes"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["chat"]["deliveries_received"], 40);

        // One member short of one message: the run fails, though nothing else did.
        let r = chat_run(4, 3, 10, 39);
        assert!(!r.ok);
        assert_eq!(r.chat.as_ref().unwrap().deliveries_missing, 1);
        assert!(r.to_text().contains("FAILED"), "{}", r.to_text());
    }

    #[test]
    fn an_echo_failure_alone_fails_the_run() {
        let mut t = Tally::new(1, Instant::now());
        let mut c = done(1);
        c.fail(Failure::EchoTimeout);
        t.on_msg(0, final_with(c, &[], vec![]));
        let r = t.report(run_info(1));
        assert!(!r.ok);
        assert_eq!(r.echo_rtt_us.count, 0);
    }
}
