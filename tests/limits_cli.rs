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
