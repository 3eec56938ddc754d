//! `/stats` and `/metrics` describe the whole server whichever worker answers: with
//! `--workers N` every answer is the supervisor's merged view, whose per-worker
//! breakdown (plus what exited workers left) adds up to its totals; a lone process
//! answers in the same shape. Also what the new routes answer to bad requests.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{eventually, op, Server};
use serde_json::Value;
use wsreactor::protocol::frame::OpCode;

/// The supervisor's children, from /proc.
fn children(pid: u32) -> BTreeSet<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The per-worker entries of `field`, added up with what exited workers left.
fn breakdown_sum(stats: &Value, field: &str) -> u64 {
    let workers = stats["workers"].as_array().expect("a workers array");
    workers.iter().map(|w| n(&w[field])).sum::<u64>() + n(&stats["retired"][field])
}

/// Asserts that every counter of the breakdown adds up to the total beside it.
fn assert_adds_up(stats: &Value) {
    for field in [
        "connections",
        "websockets",
        "accepted_total",
        "handshakes_total",
        "messages_in_total",
        "messages_out_total",
        "bytes_in_total",
        "bytes_out_total",
        "http_responses_total",
        "rss_bytes",
    ] {
        assert_eq!(
            breakdown_sum(stats, field),
            n(&stats[field]),
            "{field}: {stats:#}"
        );
    }
    for (code, total) in stats["closes_by_code"].as_object().unwrap() {
        let sum: u64 = stats["workers"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&stats["retired"]])
            .map(|w| w["closes_by_code"][code].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(sum, n(total), "closes_by_code {code}: {stats:#}");
    }
}

/// Opens `count` echo connections, each verified with one message.
fn hold(server: &Server, count: usize) -> Vec<common::Raw> {
    (0..count)
        .map(|i| {
            let mut ws = server.open();
            let text = format!("hello {i}");
            ws.send_frame(true, OpCode::Text, text.as_bytes());
            ws.expect_frame(true, op::TEXT, text.as_bytes());
            ws
        })
        .collect()
}

/// Waits until `/stats` shows `websockets` open and `messages` received in all.
fn settle(server: &Server, websockets: u64, messages: u64) -> Value {
    eventually(Duration::from_secs(10), || {
        let stats = server.stats();
        (n(&stats["websockets"]) == websockets && n(&stats["messages_in_total"]) == messages)
            .then_some(stats)
    })
    .unwrap_or_else(|| {
        panic!(
            "/stats never showed {websockets} websockets and {messages} messages: {:#}",
            server.stats()
        )
    })
}

#[test]
fn every_worker_answers_for_the_whole_server() {
    let server = Server::with_args(&["--workers", "2"]);
    let _held = hold(&server, 20);
    settle(&server, 20, 20);

    // Three requests in a row agree on the totals, and each breakdown adds up to them.
    let answers: Vec<Value> = (0..3).map(|_| server.stats()).collect();
    for stats in &answers {
        assert_eq!(n(&stats["websockets"]), 20, "{stats:#}");
        assert_eq!(n(&stats["messages_in_total"]), 20, "{stats:#}");
        assert_eq!(n(&stats["handshakes_total"]), 20, "{stats:#}");
        assert_adds_up(stats);
    }

    // Both workers hold some of the connections (the kernel spreads them by a hash of
    // the 4-tuple: all 20 on one worker has odds of 1 in 500,000), and the breakdown
    // names exactly the supervisor's children.
    let stats = &answers[0];
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{stats:#}");
    for (slot, w) in workers.iter().enumerate() {
        assert_eq!(n(&w["worker"]), slot as u64);
        assert_eq!(w["up"], true, "{stats:#}");
        assert!(
            n(&w["websockets"]) > 0,
            "worker {slot} holds none: {stats:#}"
        );
    }
    let pids: BTreeSet<u64> = workers.iter().map(|w| n(&w["pid"])).collect();
    assert_eq!(pids, children(server.pid()));

    // Whichever worker answers, the totals are the same: ask until both have.
    let mut answered_by = BTreeSet::new();
    for _ in 0..60 {
        let stats = server.stats();
        assert_eq!(n(&stats["websockets"]), 20, "{stats:#}");
        assert!(pids.contains(&n(&stats["pid"])), "{stats:#}");
        assert_adds_up(&stats);
        answered_by.insert(n(&stats["pid"]));
        if answered_by.len() == 2 {
            break;
        }
    }
    assert_eq!(answered_by, pids, "both workers answered /stats");
}

#[test]
fn a_replaced_workers_totals_stay_in_the_servers() {
    let server = Server::with_args(&["--workers", "2"]);
    let held = hold(&server, 16);
    let before = settle(&server, 16, 16);
    let victim = &before["workers"][0];
    let (victim_pid, victim_messages) = (n(&victim["pid"]), n(&victim["messages_in_total"]));
    // SAFETY: kill has no memory preconditions; the pid is our server's own child.
    assert_eq!(
        unsafe { libc::kill(victim_pid as libc::pid_t, libc::SIGKILL) },
        0
    );

    // Connections queued on the victim's listener are reset: ask only once it is gone.
    eventually(Duration::from_secs(15), || {
        let now = children(server.pid());
        (now.len() == 2 && !now.contains(&victim_pid)).then_some(())
    })
    .expect("the supervisor starts a replacement");
    // The slot comes back with a new process; what the old one counted stays counted.
    let after = eventually(Duration::from_secs(15), || {
        let stats = server.stats();
        let slot = &stats["workers"][0];
        (slot["up"] == true && n(&slot["pid"]) != victim_pid).then_some(stats)
    })
    .expect("worker 0 is replaced and reports");
    assert_eq!(n(&after["workers"][0]["restarts_total"]), 1, "{after:#}");
    assert_eq!(
        n(&after["retired"]["messages_in_total"]),
        victim_messages,
        "{after:#}"
    );
    assert_eq!(
        n(&after["retired"]["websockets"]),
        0,
        "gauges are not retired"
    );
    assert_eq!(
        n(&after["messages_in_total"]),
        16,
        "no total went down: {after:#}"
    );
    assert!(n(&after["accepted_total"]) >= n(&before["accepted_total"]));
    // The victim's connections went with it.
    let survivors = n(&before["workers"][1]["websockets"]);
    assert_eq!(n(&after["websockets"]), survivors, "{after:#}");
    assert_adds_up(&after);
    drop(held);
}

#[test]
fn a_lone_process_answers_in_the_same_shape() {
    let server = Server::start();
    let _held = hold(&server, 3);
    let stats = server.stats();
    assert_eq!(n(&stats["websockets"]), 3);
    assert_eq!(n(&stats["worker"]), 0);
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{stats:#}");
    assert_eq!(workers[0]["pid"], stats["pid"]);
    assert_eq!(n(&workers[0]["websockets"]), 3);
    assert_adds_up(&stats);
    assert!(n(&stats["uptime_ms"]) >= n(&stats["uptime_secs"]) * 1000);
}

#[test]
fn metrics_are_prometheus_text_that_adds_up() {
    let server = Server::with_args(&["--workers", "2"]);
    let _held = hold(&server, 10);
    settle(&server, 10, 10);
    let resp = server.get("/metrics");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(resp.body).unwrap();
    let value = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no sample {name}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("wsreactor_websockets"), 10);
    assert_eq!(value("wsreactor_messages_in_total"), 10);
    assert_eq!(value("wsreactor_handshakes_total{result=\"ok\"}"), 10);
    assert_eq!(value("wsreactor_workers"), 2);
    let per_worker: u64 = (0..2)
        .map(|w| value(&format!("wsreactor_worker_websockets{{worker=\"{w}\"}}")))
        .sum();
    assert_eq!(per_worker, 10);
    let messages: u64 = ["0", "1", "retired"]
        .iter()
        .map(|w| {
            value(&format!(
                "wsreactor_worker_messages_in_total{{worker=\"{w}\"}}"
            ))
        })
        .sum();
    assert_eq!(messages, 10);
}

#[test]
fn the_new_routes_answer_bad_requests_clearly() {
    let server = Server::start();
    for path in ["/metrics", "/stats", "/dashboard"] {
        let post = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(server.request(post.as_bytes()).status, 405, "POST {path}");
        assert_eq!(server.get(&format!("{path}/x")).status, 404, "{path}/x");
    }
    // A query is ignored (browsers and scrapers add their own).
    assert_eq!(server.get("/metrics?x=1").status, 200);
    let page = server.get("/dashboard");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        html.contains("fetch(\"/stats\""),
        "the dashboard polls /stats"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    // The demo page links to it.
    let demo = String::from_utf8(server.get("/").body).unwrap();
    assert!(demo.contains("href=\"/dashboard\""));
}
