//! `wsreactor limits`, through the binary: the probe runs in its own process, since it
//! fills that process's descriptor table on purpose.

use std::process::Command;

fn limits(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_wsreactor"))
        .arg("limits")
        .args(args)
        .output()
        .expect("run wsreactor limits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The hard RLIMIT_NOFILE, read from /proc independently of the crate.
fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(4).unwrap().parse().unwrap()
}

#[test]
fn probe_measures_the_descriptor_limit_for_real() {
    let out = limits(&["--probe", "--json", "--workers", "3"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let hard = hard_nofile();
    // The child raises its soft limit to the hard one, then opens descriptors until
    // EMFILE: it must count (almost) all of them, not echo the configured number back.
    let probed = json["nofile_probed"].as_u64().expect("nofile_probed");
    assert!(
        probed <= hard && probed + 16 >= hard,
        "probed {probed}, hard {hard}"
    );
    assert_eq!(json["nofile"]["soft"].as_u64(), Some(hard));
    assert_eq!(json["capacity"]["workers"].as_u64(), Some(3));
    let per_process = json["capacity"]["per_process"].as_u64().unwrap();
    assert!(json["capacity"]["total"].as_u64().unwrap() <= 3 * per_process);
}

#[test]
fn text_report_names_every_limit() {
    let out = limits(&["--probe", "--workers", "4"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "RLIMIT_NOFILE soft",
        "probed (--probe)",
        "fs.file-max",
        "ip_local_port_range",
        "with 4 workers",
        "binds first: ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(
        !text.contains("not run"),
        "the probe was asked for:\n{text}"
    );
}

/// `net.ipv4.ip_local_port_range` as a count, read from /proc independently.
fn ephemeral_ports() -> u64 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let ports: Vec<u64> = range
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    ports[1] - ports[0] + 1
}

#[test]
fn connections_are_sized_for_a_scale_run() {
    for n in [70_000u64, 1_000_000] {
        let out = limits(&["--json", "--connections", &n.to_string()]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let s = &json["sizing"];
        let get = |key: &str| s[key].as_u64().unwrap_or_else(|| panic!("{key}: {s}"));
        let (reserve, per_process) = (get("fd_reserve"), get("per_process"));
        assert_eq!(get("connections"), n);
        assert_eq!(per_process, hard_nofile() - reserve);
        // Enough processes on both sides, and not one more than needed.
        let (workers, procs) = (get("server_workers"), get("load_procs"));
        let with_headroom = n * (100 + get("server_headroom_percent")) / 100;
        assert!(workers * per_process >= with_headroom, "{s}");
        assert!((workers - 1) * per_process < with_headroom, "{s}");
        assert!(
            procs * per_process >= n && (procs - 1) * per_process < n,
            "{s}"
        );
        // The sources: a loopback range from 127.0.0.2, none filled past a quarter.
        let (count, busiest, ports) = (
            get("source_count"),
            get("max_per_source"),
            get("ports_per_source"),
        );
        assert_eq!(ports, ephemeral_ports());
        assert!(busiest * count >= n && busiest <= ports / 4, "{s}");
        assert_eq!(s["port_fill"].as_f64(), Some(0.25));
        let range = s["sources"].as_str().unwrap();
        let (first, last) = range.split_once('-').unwrap();
        let first: std::net::Ipv4Addr = first.parse().unwrap();
        let last: std::net::Ipv4Addr = last.parse().unwrap();
        assert_eq!(first, std::net::Ipv4Addr::new(127, 0, 0, 2));
        assert!(last.is_loopback());
        assert_eq!(u64::from(u32::from(last) - u32::from(first)) + 1, count);
        assert!(get("descriptors_needed") >= 2 * n);
        // The capacity is computed for that many workers unless --workers says otherwise.
        assert_eq!(json["capacity"]["workers"].as_u64(), Some(workers));
    }
    let out = limits(&["--json", "--connections", "70000", "--workers", "2"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["capacity"]["workers"].as_u64(), Some(2));
    let out = limits(&["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json.get("sizing").is_none(),
        "no sizing unless asked: {json}"
    );
}

#[test]
fn text_report_shows_the_sizing() {
    let out = limits(&["--connections", "70000"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Sizing for 70,000 connections",
        "server workers",
        "load processes",
        "127.0.0.2-127.0.0.",
        "descriptor reserve",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
}
