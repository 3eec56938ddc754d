//! `wsreactor load --timeline FILE` against the real server, over several load
//! processes: one JSON line per second, no second missing or repeated, and the seconds
//! add up to what the run's report says.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// A load run that has not finished by then is hung: it is killed and the test fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn every_second_of_a_multi_process_run_is_one_line_that_adds_up() {
    let server = Server::start();
    let dir = std::env::temp_dir().join(format!("wsreactor-tl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("timeline.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsreactor"))
        .args(["load", "--addr", &server.addr.to_string(), "--json"])
        .args(["--connections", "300", "--procs", "3", "--rate", "200"])
        .args(["--hold", "2", "--echo-every", "0.5"])
        .arg("--timeline")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsreactor load");
    let deadline = Instant::now() + LOAD_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsreactor load did not finish within {LOAD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(out.status.success(), "{report:#}");

    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 300 at 200/s is 1.5 s of ramp, then 2 s of hold and the close.
    assert!(lines.len() >= 4, "{text}");
    let u = |l: &serde_json::Value, k: &str| l[k].as_u64().unwrap_or_else(|| panic!("{k}: {l}"));
    for pair in lines.windows(2) {
        assert_eq!(u(&pair[1], "t"), u(&pair[0], "t") + 1, "{text}");
        assert_eq!(u(&pair[1], "elapsed"), u(&pair[0], "elapsed") + 1);
    }
    let sum = |k: &str| lines.iter().map(|l| u(l, k)).sum::<u64>();
    assert_eq!(sum("handshakes"), 300, "{text}");
    assert_eq!(sum("verified"), 300);
    assert_eq!(sum("echoes"), u(&report, "echoes"));
    assert_eq!(sum("closed"), 300);
    assert_eq!(sum("failed"), 0);
    // Every connection was open at once during the hold, and none at the end.
    assert_eq!(lines.iter().map(|l| u(l, "established")).max(), Some(300));
    assert_eq!(u(lines.last().unwrap(), "established"), 0);
    // A second with handshakes has their percentiles; p99 is never below p50.
    for l in &lines {
        let h = &l["handshake_us"];
        if u(l, "handshakes") > 0 {
            assert!(
                h["p99"].as_u64().unwrap() >= h["p50"].as_u64().unwrap(),
                "{l}"
            );
        }
        assert_eq!(u(h, "n"), u(l, "handshakes"));
        assert_eq!(u(&l["echo_rtt_us"], "n"), u(l, "echoes"));
        assert!(l["load_cpu"].as_f64().unwrap() >= 0.0);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
