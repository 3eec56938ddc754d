//! `wsreactor load --deflate` against `serve --deflate`: holds with a warm-up and
//! periodic echoes, the echo window and churn, every message compressed (RSV1) and every
//! echo inflated and checked byte for byte; none failed, and the server's byte counters
//! show that what crossed the wire was compressed. Against a server without `--deflate`
//! every connection fails with its own reason: a run that asked for compression never
//! goes on uncompressed.

mod common;

use std::time::Duration;

use common::{LoadRun, Server};

/// A load run that has not finished by then is hung: it is killed and the test fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

fn load(server: &Server, args: &[&str]) -> LoadRun {
    common::run_load(&server.addr.to_string(), args, LOAD_TIMEOUT)
}

/// The payload bytes the server received, from its `/stats`.
fn bytes_in(server: &Server) -> u64 {
    server.stats()["bytes_in_total"].as_u64().unwrap()
}

#[test]
fn a_hold_with_a_warm_up_and_periodic_echoes_is_compressed_both_ways() {
    let server = Server::with_args(&["--deflate"]);
    let run = load(
        &server,
        &[
            "--connections",
            "40",
            "--hold",
            "1",
            "--echo-every",
            "0.25",
            "--message-size",
            "4KiB",
            "--payload",
            "compressible",
            "--warmup-bytes",
            "64KiB",
            "--deflate",
            "--json",
        ],
    );
    let r = run.clean_report();
    assert_eq!(
        (r["deflate"].as_bool(), r["verified"].as_u64()),
        (Some(true), Some(40))
    );
    assert_eq!(
        (r["payload"].as_str(), r["warmup_bytes"].as_u64()),
        (Some("compressible"), Some(65536))
    );
    let echoes = r["echoes"].as_u64().unwrap();
    assert!(
        echoes >= 40 * 2,
        "a verification and a periodic echo each: {r:#}"
    );
    // Four warm-up messages and every echo went to the server; what arrived is well
    // under half of their text (frame headers included).
    let text = 40 * 65536 + echoes * 4096;
    let wire = bytes_in(&server);
    assert!(
        wire < text / 2,
        "{wire} bytes on the wire for {text} bytes of text"
    );
    let messages = server.stats()["messages_in_total"].as_u64().unwrap();
    assert_eq!(messages, 40 * 4 + echoes, "{r:#}");
}

#[test]
fn the_echo_window_checks_every_compressed_echo_of_each_payload() {
    let server = Server::with_args(&["--deflate"]);
    for payload in ["ascii", "compressible", "random"] {
        let before = bytes_in(&server);
        let run = load(
            &server,
            &[
                "--connections",
                "4",
                "--echo-window",
                "4",
                "--message-size",
                "16KiB",
                "--duration",
                "1",
                "--warmup",
                "0.2",
                "--payload",
                payload,
                "--deflate",
                "--json",
            ],
        );
        let r = run.clean_report();
        let ops = r["workload"]["ops"].as_u64().unwrap();
        assert!(ops > 0, "{payload}: {r:#}");
        // At least every measured echo (and the verification echoes) crossed once.
        let text = (ops + 4) * 16384;
        let wire = bytes_in(&server) - before;
        match payload {
            "compressible" => assert!(wire < text / 2, "{payload}: {wire} for {text}"),
            // Random bytes do not shrink: deflate adds a little instead.
            "random" => assert!(wire > text, "{payload}: {wire} for {text}"),
            _ => {}
        }
    }
}

#[test]
fn a_compressed_echo_that_arrives_in_pieces_is_gathered_and_checked() {
    // 1 MiB of random bytes compresses to a little more than 1 MiB: more than one read
    // of the load's buffer, so every echo is gathered from several chunks.
    let server = Server::with_args(&["--deflate"]);
    let run = load(
        &server,
        &[
            "--connections",
            "1",
            "--echo-window",
            "2",
            "--message-size",
            "1MiB",
            "--payload",
            "random",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--deflate",
            "--json",
        ],
    );
    let r = run.clean_report();
    assert!(r["workload"]["ops"].as_u64().unwrap() > 0, "{r:#}");
    assert!(bytes_in(&server) > r["echoes"].as_u64().unwrap() << 20);
}

#[test]
fn churn_with_deflate_completes_every_cycle() {
    let server = Server::with_args(&["--deflate"]);
    let run = load(
        &server,
        &[
            "--connections",
            "4",
            "--churn",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--message-size",
            "4KiB",
            "--payload",
            "compressible",
            "--deflate",
            "--json",
        ],
    );
    let r = run.clean_report();
    let cycles = r["workload"]["ops"].as_u64().unwrap();
    assert!(cycles > 0, "{r:#}");
    assert_eq!(r["deflate"], true, "{r:#}");
    // Each cycle's one echo went compressed: with its handshake and Close, a cycle
    // sent the server less than half of the echo's text.
    let messages = server.stats()["messages_in_total"].as_u64().unwrap();
    assert!(messages >= cycles, "{messages} messages, {cycles} cycles");
    let wire = bytes_in(&server);
    assert!(
        wire < messages * 4096 / 2,
        "{wire} bytes on the wire for {messages} echoes of 4 KiB"
    );
}

#[test]
fn a_server_without_deflate_fails_every_connection_that_asked_for_it() {
    let server = Server::start();
    let run = load(
        &server,
        &["--connections", "5", "--hold", "0.1", "--deflate", "--json"],
    );
    let r = run.report();
    assert!(!run.status.success(), "{r:#}");
    assert_eq!(r["ok"], false, "{r:#}");
    assert_eq!(r["failures"]["deflate_declined"], 5, "{r:#}");
    assert_eq!(r["verified"], 0, "nothing went on uncompressed: {r:#}");
    assert_eq!(server.stats()["messages_in_total"], 0);
}

/// `load --deflate-window 9` with these arguments against `server`: a clean run whose
/// report says what was offered and how many connections agreed context takeover.
fn takeover_run(server: &Server, args: &[&str], agreed: u64) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--deflate-window", "9", "--json"]);
    let r = load(server, &all).clean_report();
    assert_eq!(
        (r["deflate"].as_bool(), r["deflate_window"].as_u64()),
        (Some(true), Some(9)),
        "{r:#}"
    );
    assert_eq!(r["deflate_takeover"].as_u64(), Some(agreed), "{r:#}");
    r
}

/// Small compressible echoes, where the context of the messages before is most of
/// what deflate has to refer to.
const SMALL_ECHOES: [&str; 10] = [
    "--hold",
    "1",
    "--echo-every",
    "0.05",
    "--message-size",
    "256",
    "--payload",
    "compressible",
    "--warmup-bytes",
    "64KiB",
];

#[test]
fn a_takeover_hold_with_a_warm_up_checks_every_echo() {
    let connections = ["--connections", "20"];
    let args: Vec<&str> = connections.iter().chain(&SMALL_ECHOES).copied().collect();
    let server = Server::with_args(&["--deflate-window", "9"]);
    let r = takeover_run(&server, &args, 20);
    assert_eq!(r["verified"], 20, "{r:#}");
    let messages = server.stats()["messages_in_total"].as_u64().unwrap();
    assert_eq!(messages, 20 * 4 + r["echoes"].as_u64().unwrap(), "{r:#}");
}

#[test]
fn small_echoes_compress_better_after_the_context_of_the_ones_before() {
    // No warm-up: its 16 KiB messages compress better in a 15-bit window than in a
    // 9-bit one, which is not what this compares.
    let args = [
        "--connections",
        "10",
        "--hold",
        "1",
        "--echo-every",
        "0.05",
        "--message-size",
        "256",
        "--payload",
        "compressible",
        "--json",
    ];
    let per_message = |server: &Server, extra: &[&str]| {
        let all: Vec<&str> = args.iter().chain(extra).copied().collect();
        let r = load(server, &all).clean_report();
        let messages = server.stats()["messages_in_total"].as_u64().unwrap();
        assert_eq!(messages, r["echoes"].as_u64().unwrap(), "{r:#}");
        bytes_in(server) as f64 / messages as f64
    };
    let kept = per_message(
        &Server::with_args(&["--deflate-window", "9"]),
        &["--deflate-window", "9"],
    );
    // The same messages without context: each compressed on its own, so longer.
    let alone = per_message(&Server::with_args(&["--deflate"]), &["--deflate"]);
    assert!(
        kept < alone * 0.97,
        "{kept:.0} B a message with context, {alone:.0} without"
    );
}

#[test]
fn takeover_echo_windows_and_churn_check_every_echo() {
    let server = Server::with_args(&["--deflate-window", "9"]);
    for payload in ["compressible", "ascii", "random"] {
        let r = takeover_run(
            &server,
            &[
                "--connections",
                "4",
                "--echo-window",
                "4",
                "--message-size",
                "2KiB",
                "--duration",
                "1",
                "--warmup",
                "0.2",
                "--payload",
                payload,
            ],
            4,
        );
        assert!(
            r["workload"]["ops"].as_u64().unwrap() > 0,
            "{payload}: {r:#}"
        );
    }
    // Churn reuses sockets, and with them the ids the codec keeps contexts by: a
    // context left behind would prime the next connection's first message.
    let r = load(
        &server,
        &[
            "--connections",
            "4",
            "--churn",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--message-size",
            "300",
            "--payload",
            "compressible",
            "--warmup-bytes",
            "4KiB",
            "--deflate-window",
            "9",
            "--json",
        ],
    )
    .clean_report();
    let cycles = r["workload"]["ops"].as_u64().unwrap();
    assert!(cycles > 4, "{r:#}");
    assert!(r["deflate_takeover"].as_u64().unwrap() > cycles, "{r:#}");
}

#[test]
fn a_takeover_offer_to_a_shared_mode_server_compresses_without_context() {
    let server = Server::with_args(&["--deflate"]);
    let connections = ["--connections", "10"];
    let args: Vec<&str> = connections.iter().chain(&SMALL_ECHOES).copied().collect();
    let r = takeover_run(&server, &args, 0);
    assert_eq!(r["verified"], 10, "{r:#}");
}
