//! `GET /metrics`: a [`View`] in the Prometheus text exposition format (version 0.0.4).
//!
//! Every counter of `/stats` appears twice: summed over the server as
//! `wsreactor_<name>`, and per worker as `wsreactor_worker_<name>{worker="K"}`. Counters
//! of worker processes that have exited carry `worker="retired"`, so that for every
//! family and label set `sum(wsreactor_worker_<name>)` equals `wsreactor_<name>`, and a
//! summed counter never goes down when a worker is replaced. The two keep separate names
//! so that a plain `sum()` in PromQL never counts a number twice. Counters end in
//! `_total` (their `# TYPE` line names them so); the rest are gauges.

use std::fmt::Write;

use super::stats::Stats;
use super::view::View;

/// The content type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every family's name starts with this.
const PREFIX: &str = "wsreactor_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A sample's own label, if its family has one: name and value.
type Label = Option<(&'static str, String)>;

/// A family of `/stats` counters: its name after the prefix, its help text, and its
/// samples in one process's (or the sum's) counters, each with its label.
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    samples: fn(&Stats) -> Vec<(Label, u64)>,
}

/// One unlabelled sample.
macro_rules! plain {
    ($field:ident) => {
        |s: &Stats| vec![(None, s.$field)]
    };
}

const FAMILIES: &[Family] = &[
    Family {
        name: "connections",
        kind: Kind::Gauge,
        help: "Sockets held now, in any phase (request head, WebSocket, closing).",
        samples: plain!(connections),
    },
    Family {
        name: "websockets",
        kind: Kind::Gauge,
        help: "WebSocket connections open now: past the handshake, not closing.",
        samples: plain!(websockets),
    },
    Family {
        name: "rooms",
        kind: Kind::Gauge,
        help: "Chat rooms with at least one member in a worker (a room spanning workers counts in each).",
        samples: plain!(rooms),
    },
    Family {
        name: "accepted_total",
        kind: Kind::Counter,
        help: "TCP connections accepted.",
        samples: plain!(accepted_total),
    },
    Family {
        name: "handshakes_total",
        kind: Kind::Counter,
        help: "Requests by result: ok for an opening handshake answered with 101, else \
               the reason of the error answer (not_found, timeout, websocket_version, \
               origin_forbidden, over_capacity, ...).",
        samples: |s: &Stats| {
            let ok = (Some(("result", "ok".to_owned())), s.handshakes_total);
            let failed = s
                .handshake_failures
                .iter()
                .map(|(reason, n)| (Some(("result", reason.clone())), *n));
            std::iter::once(ok).chain(failed).collect()
        },
    },
    Family {
        name: "http_responses_total",
        kind: Kind::Counter,
        help: "Plain HTTP answers: pages, /stats, /metrics and every error answer.",
        samples: plain!(http_responses_total),
    },
    Family {
        name: "messages_in_total",
        kind: Kind::Counter,
        help: "Whole data messages received from clients.",
        samples: plain!(messages_in_total),
    },
    Family {
        name: "messages_out_total",
        kind: Kind::Counter,
        help: "Data messages sent: an echo counts once, a chat message once per member.",
        samples: plain!(messages_out_total),
    },
    Family {
        name: "bytes_in_total",
        kind: Kind::Counter,
        help: "Bytes read from client sockets.",
        samples: plain!(bytes_in_total),
    },
    Family {
        name: "bytes_out_total",
        kind: Kind::Counter,
        help: "Bytes written to client sockets.",
        samples: plain!(bytes_out_total),
    },
    Family {
        name: "closes_total",
        kind: Kind::Counter,
        help: "WebSocket connections ended, by the close code of the Close the server \
               sent (1006: ended without one).",
        samples: |s: &Stats| {
            s.closes_by_code
                .iter()
                .map(|(code, n)| (Some(("code", code.to_string())), *n))
                .collect()
        },
    },
    Family {
        name: "protocol_errors_total",
        kind: Kind::Counter,
        help: "Connections failed with a close code for a protocol violation.",
        samples: plain!(protocol_errors_total),
    },
    Family {
        name: "timeouts_total",
        kind: Kind::Counter,
        help: "Connections ended by a deadline: handshake, idle, close or send timeout.",
        samples: plain!(timeouts_total),
    },
    Family {
        name: "slow_members_dropped_total",
        kind: Kind::Counter,
        help: "Chat members dropped for falling too far behind their room.",
        samples: plain!(slow_members_dropped_total),
    },
    Family {
        name: "memory_shed_total",
        kind: Kind::Counter,
        help: "Connections dropped because the process was over its memory budget.",
        samples: plain!(memory_shed_total),
    },
    Family {
        name: "accept_emfile_total",
        kind: Kind::Counter,
        help: "accept() failures for lack of file descriptors (EMFILE or ENFILE).",
        samples: plain!(accept_emfile_total),
    },
    Family {
        name: "shed_total",
        kind: Kind::Counter,
        help: "Connections shed without service: over --max-connections or out of \
               descriptors.",
        samples: plain!(shed_total),
    },
    Family {
        name: "evictions_total",
        kind: Kind::Counter,
        help: "Connections ended early to make room for a newcomer, by reason.",
        samples: |s: &Stats| {
            s.evictions
                .iter()
                .map(|(reason, n)| (Some(("reason", reason.clone())), *n))
                .collect()
        },
    },
    Family {
        name: "rss_bytes",
        kind: Kind::Gauge,
        help: "Resident set size of the reactor processes, in bytes.",
        samples: plain!(rss_bytes),
    },
    Family {
        name: "pubsub_up",
        kind: Kind::Gauge,
        help: "Processes whose pub/sub bus (Redis, or the workers' mesh) is connected.",
        samples: plain!(pubsub_up),
    },
    Family {
        name: "pubsub_queued_bytes",
        kind: Kind::Gauge,
        help: "Bytes queued for the pub/sub bus and not sent yet.",
        samples: plain!(pubsub_queued_bytes),
    },
    Family {
        name: "pubsub_published_total",
        kind: Kind::Counter,
        help: "Chat messages published to the pub/sub bus.",
        samples: plain!(pubsub_published_total),
    },
    Family {
        name: "pubsub_received_total",
        kind: Kind::Counter,
        help: "Chat messages from other processes received from the pub/sub bus.",
        samples: plain!(pubsub_received_total),
    },
    Family {
        name: "pubsub_unpublished_total",
        kind: Kind::Counter,
        help: "Chat messages that could not be published (bus down or its queue full): \
               only local members got them.",
        samples: plain!(pubsub_unpublished_total),
    },
    Family {
        name: "pubsub_reconnects_total",
        kind: Kind::Counter,
        help: "Times the pub/sub bus connected to Redis again after losing it.",
        samples: plain!(pubsub_reconnects_total),
    },
];

/// The `/metrics` body for `view`.
pub fn render(view: &View) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let total = view.total();
    header(
        &mut out,
        "uptime_seconds",
        Kind::Gauge,
        "Seconds since the server started.",
    );
    let _ = writeln!(
        out,
        "{PREFIX}uptime_seconds {}",
        view.uptime_ms as f64 / 1000.0
    );
    header(
        &mut out,
        "workers",
        Kind::Gauge,
        "Reactor processes the server runs (--workers).",
    );
    let _ = writeln!(out, "{PREFIX}workers {}", view.workers.len());
    for family in FAMILIES {
        header(&mut out, family.name, family.kind, family.help);
        for (label, value) in (family.samples)(&total) {
            sample(&mut out, family.name, &[], label, value);
        }
    }

    let worker = "worker_up";
    header(
        &mut out,
        worker,
        Kind::Gauge,
        "1 if the worker's process runs and reports, else 0.",
    );
    for entry in &view.workers {
        let id = [("worker", entry.worker.to_string())];
        sample(&mut out, worker, &id, None, u64::from(entry.up));
    }
    let restarts = "worker_restarts_total";
    header(
        &mut out,
        restarts,
        Kind::Counter,
        "Processes in the worker's slot that have exited and been replaced.",
    );
    for entry in &view.workers {
        let id = [("worker", entry.worker.to_string())];
        sample(&mut out, restarts, &id, None, entry.restarts_total);
    }
    for family in FAMILIES {
        let name = format!("worker_{}", family.name);
        header(&mut out, &name, family.kind, family.help);
        let mut rows: Vec<(String, &Stats)> = view
            .workers
            .iter()
            .map(|e| (e.worker.to_string(), &e.stats))
            .collect();
        // An exited worker's connections and memory went with it: only totals remain.
        if family.kind == Kind::Counter {
            rows.push(("retired".to_owned(), &view.retired));
        }
        for (id, stats) in rows {
            for (label, value) in (family.samples)(stats) {
                sample(&mut out, &name, &[("worker", id.clone())], label, value);
            }
        }
    }
    out
}

/// The `# HELP` and `# TYPE` lines that open a family.
fn header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {}", kind.name());
}

/// One sample line: `labels`, then the family's own label if any, then the value.
fn sample(out: &mut String, name: &str, labels: &[(&str, String)], own: Label, value: u64) {
    let _ = write!(out, "{PREFIX}{name}");
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(own.as_ref().map(|(k, v)| (*k, v.as_str())))
        .collect();
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the format writes it: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::server::view::WorkerEntry;

    /// Every sample of `text`, by name and labels as written.
    fn parse(text: &str) -> BTreeMap<String, u64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse::<f64>().ok()? as u64)))
            .collect()
    }

    fn view() -> View {
        let mut a = Stats {
            connections: 3,
            websockets: 2,
            accepted_total: 10,
            handshakes_total: 8,
            messages_in_total: 5,
            rss_bytes: 1 << 20,
            ..Stats::default()
        };
        a.closed_with(1000);
        a.handshake_failed("not_found");
        let mut b = a.clone();
        b.closed_with(1006);
        b.handshake_failed("timeout");
        let mut retired = a.totals_only();
        retired.closed_with(4000);
        let entry = |worker, stats| WorkerEntry {
            worker,
            pid: Some(10 + worker),
            up: worker == 0,
            restarts_total: u64::from(worker),
            stats,
        };
        View {
            uptime_ms: 12_345,
            workers: vec![entry(0, a), entry(1, b)],
            retired,
        }
    }

    #[test]
    fn sums_and_workers_agree_and_counters_end_in_total() {
        let text = render(&view());
        let samples = parse(&text);
        assert_eq!(samples["wsreactor_connections"], 6);
        assert_eq!(samples["wsreactor_worker_connections{worker=\"1\"}"], 3);
        assert!(!samples.contains_key("wsreactor_worker_connections{worker=\"retired\"}"));
        assert_eq!(samples["wsreactor_accepted_total"], 30);
        assert_eq!(
            samples["wsreactor_worker_accepted_total{worker=\"retired\"}"],
            10
        );
        assert_eq!(samples["wsreactor_handshakes_total{result=\"ok\"}"], 24);
        assert_eq!(
            samples["wsreactor_handshakes_total{result=\"not_found\"}"],
            3
        );
        assert_eq!(
            samples["wsreactor_worker_handshakes_total{worker=\"1\",result=\"timeout\"}"],
            1
        );
        assert_eq!(samples["wsreactor_closes_total{code=\"1000\"}"], 3);
        assert_eq!(samples["wsreactor_closes_total{code=\"4000\"}"], 1);
        assert_eq!(samples["wsreactor_worker_up{worker=\"1\"}"], 0);
        assert_eq!(samples["wsreactor_worker_restarts_total{worker=\"1\"}"], 1);
        assert_eq!(samples["wsreactor_workers"], 2);
        assert!(text.contains("wsreactor_uptime_seconds 12.345\n"), "{text}");
        // Each family: one HELP, one TYPE, counters named with _total.
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut words = line.split(' ').skip(2);
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
            assert_eq!(
                text.matches(&format!("# HELP {name} ")).count(),
                1,
                "{name}"
            );
        }
        // Every per-worker sample set sums to the server's sample of the same labels.
        let mut sums: BTreeMap<String, u64> = BTreeMap::new();
        for (key, value) in &samples {
            if let Some(rest) = key.strip_prefix("wsreactor_worker_") {
                if rest.starts_with("up{") || rest.starts_with("restarts_total{") {
                    continue;
                }
                let (name, labels) = rest.split_once('{').unwrap();
                let labels: Vec<&str> = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.starts_with("worker="))
                    .collect();
                let key = if labels.is_empty() {
                    format!("wsreactor_{name}")
                } else {
                    format!("wsreactor_{name}{{{}}}", labels.join(","))
                };
                *sums.entry(key).or_default() += value;
            }
        }
        for (key, sum) in &sums {
            assert_eq!(samples.get(key), Some(sum), "{key}");
        }
    }

    #[test]
    fn every_stats_field_has_a_family() {
        let text = render(&view());
        let fields = serde_json::to_value(Stats::default()).unwrap();
        for field in fields.as_object().unwrap().keys() {
            let family = match field.as_str() {
                "handshake_failures" => "handshakes_total",
                "closes_by_code" => "closes_total",
                "evictions" => "evictions_total",
                other => other,
            };
            for name in [family.to_owned(), format!("worker_{family}")] {
                assert!(
                    text.contains(&format!("# TYPE wsreactor_{name} ")),
                    "no family for /stats field {field}"
                );
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), r"a\nb");
    }
}
