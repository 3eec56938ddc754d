//! `wsreactor load --echo-window` and `--churn` against the real server: the workloads
//! run, every echo is verified, the measured window holds operations, the server's CPU
//! per operation is reported from its pid, and the server's own counters agree with the
//! report. Sane numbers only: no timing thresholds.

mod common;

use std::time::Duration;

use common::{LoadRun, Server};

/// A load run that has not finished by then is hung: it is killed and the test fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `wsreactor load --addr ADDR ARGS…` to completion.
fn load(addr: &str, args: &[&str]) -> LoadRun {
    common::run_load(addr, args, LOAD_TIMEOUT)
}

fn server_pid(server: &Server) -> String {
    server.pid().to_string()
}

/// Asserts a successful workload run and returns its report.
fn ok_run(run: &LoadRun) -> serde_json::Value {
    run.clean_report()
}

/// The sane figures of a measured window with a server pid: operations, their rate and
/// latencies, and CPU time per operation.
fn assert_measured(w: &serde_json::Value, pid: u32) {
    assert_eq!(w["measured"], true, "{w:#}");
    let ops = w["ops"].as_u64().unwrap();
    assert!(ops > 0, "{w:#}");
    assert!(w["secs"].as_f64().unwrap() > 0.0, "{w:#}");
    assert!(w["ops_per_sec"].as_f64().unwrap() > 0.0, "{w:#}");
    let latency = &w["latency_us"];
    assert!(latency["count"].as_u64().unwrap() > 0, "{w:#}");
    assert!(latency["p50"].as_u64() <= latency["p99"].as_u64(), "{w:#}");
    assert!(latency["p99"].as_u64() <= latency["max"].as_u64(), "{w:#}");
    assert_eq!(w["server_pid"], pid, "{w:#}");
    assert_eq!(w["server_processes"], 1, "{w:#}");
    assert!(w["server_error"].is_null(), "{w:#}");
    let cpu = w["server_cpu_secs"].as_f64().unwrap();
    let per_op = w["server_cpu_us_per_op"].as_f64().unwrap();
    assert!(cpu >= 0.0 && per_op >= 0.0, "{w:#}");
    assert!(
        (per_op - cpu * 1e6 / ops as f64).abs() < 1e-6 * per_op.max(1.0),
        "{w:#}"
    );
    assert!(w["client_cpu_us_per_op"].as_f64().unwrap() >= 0.0, "{w:#}");
}

#[test]
fn a_closed_loop_echo_window_is_measured_and_every_echo_verified() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let pid = server.pid();
    let run = load(
        &addr,
        &[
            "--json",
            "--connections",
            "20",
            "--echo-window",
            "8",
            "--message-size",
            "100",
            "--warmup",
            "0.3",
            "--duration",
            "1",
            "--server-pid",
            &server_pid(&server),
        ],
    );
    let r = ok_run(&run);
    assert_eq!(r["verified"], 20, "{r:#}");
    assert_eq!(r["closed_clean"], 20, "{r:#}");
    let w = &r["workload"];
    assert_eq!(w["mode"], "echo", "{w:#}");
    assert_eq!(
        (w["window"].as_u64(), w["message_size"].as_u64()),
        (Some(8), Some(100))
    );
    assert_measured(w, pid);
    // Measured echoes are some of all echoes; MB/s is their payload.
    let ops = w["ops"].as_u64().unwrap();
    let echoes = r["echoes"].as_u64().unwrap();
    assert!(ops < echoes, "{r:#}");
    let mb = w["mb_per_sec"].as_f64().unwrap();
    let rate = w["ops_per_sec"].as_f64().unwrap();
    assert!(
        (mb - rate * 100.0 / 1e6).abs() < 1e-9 * mb.max(1.0),
        "{w:#}"
    );
    assert_eq!(
        w["latency_us"]["count"], ops,
        "one round trip per measured echo"
    );
    // Every message the server echoed came back intact, and nothing else was sent:
    // every in-flight echo returned before the close.
    let stats = server.stats();
    assert_eq!(stats["messages_in_total"], echoes, "{stats:#}");
    assert_eq!(stats["messages_out_total"], echoes, "{stats:#}");
    assert_eq!(stats["protocol_errors_total"], 0, "{stats:#}");
}

#[test]
fn large_messages_stream_through_the_window() {
    let server = Server::start();
    let run = load(
        &server.addr.to_string(),
        &[
            "--json",
            "--connections",
            "3",
            "--echo-window",
            "2",
            "--message-size",
            "200000",
            "--warmup",
            "0",
            "--duration",
            "0.5",
        ],
    );
    let r = ok_run(&run);
    let w = &r["workload"];
    assert_eq!(w["measured"], true, "{w:#}");
    assert!(w["ops"].as_u64().unwrap() > 0, "{w:#}");
    assert!(
        w["server_cpu_secs"].is_null(),
        "no pid, no server CPU: {w:#}"
    );
    assert_eq!(
        server.stats()["messages_out_total"],
        r["echoes"],
        "every echo checked whole"
    );
}

#[test]
fn churn_cycles_connections_and_counts_clean_cycles() {
    let server = Server::start();
    let pid = server.pid();
    let run = load(
        &server.addr.to_string(),
        &[
            "--json",
            "--connections",
            "8",
            "--churn",
            "--warmup",
            "0.3",
            "--duration",
            "1",
            "--server-pid",
            &server_pid(&server),
        ],
    );
    let r = ok_run(&run);
    let w = &r["workload"];
    assert_eq!(w["mode"], "churn", "{w:#}");
    assert!(w["mb_per_sec"].is_null(), "{w:#}");
    assert_measured(w, pid);
    // Every slot cycled more than once, and every cycle was whole: verified by its
    // echo and closed with a clean closing handshake.
    let verified = r["verified"].as_u64().unwrap();
    assert!(verified > 8, "{r:#}");
    assert_eq!(r["attempted"], verified, "{r:#}");
    assert_eq!(r["established"], verified, "{r:#}");
    assert_eq!(r["closed_clean"], verified, "{r:#}");
    assert_eq!(r["echoes"], verified, "one echo per cycle: {r:#}");
    assert!(w["ops"].as_u64().unwrap() <= verified, "{r:#}");
    let stats = server.stats();
    assert_eq!(stats["handshakes_total"], verified, "{stats:#}");
    assert_eq!(stats["messages_in_total"], verified, "{stats:#}");
    // The server counts the Close it sent, code 1000, once per cycle.
    assert_eq!(stats["closes_by_code"]["1000"], verified, "{stats:#}");
    assert_eq!(stats["websockets"], 0, "{stats:#}");
}

#[test]
fn workload_options_are_checked_before_any_connection() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let refused = |args: &[&str]| {
        let run = load(&addr, args);
        assert_eq!(
            run.status.code(),
            Some(2),
            "{args:?}:\n{}{}",
            run.stdout,
            run.stderr
        );
        run.stderr
    };
    let base = ["--connections", "2"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    for extra in [
        &["--duration", "1"][..],
        &["--server-pid", "1"],
        &["--echo-window", "2", "--churn"],
        &["--echo-window", "0"],
        &["--echo-window", "2", "--hold", "1"],
        &["--churn", "--chat", "room"],
        &["--churn", "--duration", "0"],
    ] {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args);
    }
    let err = refused(&[
        "--connections",
        "2",
        "--churn",
        "--server-pid",
        "4294967294",
    ]);
    assert!(err.contains("--server-pid 4294967294"), "{err}");
    let err = refused(&["--connections", "2", "--echo-window", "2", "--procs", "2"]);
    assert!(err.contains("one process"), "{err}");
    assert_eq!(
        server.stats()["accepted_total"],
        1,
        "only this /stats request"
    );
}
