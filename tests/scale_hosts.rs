//! The connection benchmark's load from many hosts: `scripts/scale.sh --load-hosts` with
//! three simulated load hosts and the server on a fourth (network namespaces built by
//! `scripts/hosts.sh`, run through `--remote 'ip netns exec ...'`), 30,000 connections,
//! none failed, one merged report over every host. Needs root (as CI and the project's
//! machines run); every namespace and process is removed at the end, failures included.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Private addresses of these namespaces only (apart from tests/hosts.rs's).
const NET: &str = "10.204";
const CONNECTIONS: u64 = 30_000;
/// The run's bound: a release build if there is none yet, then the ramp, hold and close.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// The namespaces of one run, scale.sh while it runs, and its report directory: all gone
/// on drop.
struct Run {
    prefix: String,
    out: PathBuf,
    script: Option<Child>,
}

impl Run {
    fn up() -> Run {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "network namespaces need root"
        );
        let prefix = format!("wsrs{}", std::process::id() % 100_000);
        let out = std::env::temp_dir().join(format!("{prefix}-reports"));
        let run = Run {
            prefix,
            out,
            script: None,
        };
        let status = run
            .hosts_sh(&["up", "1", "3"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/hosts.sh up failed");
        run
    }

    fn hosts_sh(&self, args: &[&str]) -> Command {
        let mut command = Command::new(repo().join("scripts/hosts.sh"));
        command
            .args(args)
            .env("HOSTS_PREFIX", &self.prefix)
            .env("HOSTS_NET", NET)
            .env("CLIENT_ADDRS", "4");
        command
    }

    /// Runs scale.sh with `args` to its end (or panics past `RUN_TIMEOUT`).
    fn scale(&mut self, args: &[String]) -> ExitStatus {
        let child = Command::new(repo().join("scripts/scale.sh"))
            .args(args)
            .spawn()
            .unwrap();
        let script = self.script.insert(child);
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = script.try_wait().unwrap() {
                self.script = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "scale.sh took over {RUN_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut script) = self.script.take() {
            // SIGTERM first: scale.sh then stops the server and the load (the load's
            // parent runs on this host, outside every namespace).
            if let Ok(pid) = libc::pid_t::try_from(script.id()) {
                // SAFETY: kill touches no memory; the pid is our unreaped child's.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while script.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(100));
            }
            let _ = script.kill();
            let _ = script.wait();
        }
        // Also ends anything still running in a namespace.
        let _ = self.hosts_sh(&["down"]).status();
        let _ = std::fs::remove_dir_all(&self.out);
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The one JSON report named `prefix...` in `dir`.
fn only(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".json")
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {prefix}*.json in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().unwrap()
}

#[test]
fn thirty_thousand_connections_from_three_load_hosts_to_a_server_host() {
    let mut run = Run::up();
    let hosts: Vec<String> = (1..=3)
        .map(|i| format!("c{i}={NET}.{}.1-{NET}.{}.4", 100 + i, 100 + i))
        .collect();
    let args: Vec<String> = [
        "--hold",
        "5",
        "--echo-every",
        "0",
        "--out",
        &run.out.to_string_lossy(),
        "--load-hosts",
        &hosts.join(","),
        "--remote",
        &format!("ip netns exec {}-{{host}}", run.prefix),
        "--server-host",
        &format!("s1={NET}.0.11"),
        &CONNECTIONS.to_string(),
    ]
    .map(String::from)
    .into();
    let status = run.scale(&args);
    assert!(status.success(), "scale.sh: {status}");

    let json = only(&run.out, &format!("scale-{CONNECTIONS}-"));
    let html = json.with_extension("html");
    assert!(html.is_file(), "no HTML report beside {}", json.display());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let load = &report["load"];
    assert_eq!(report["ok"], true);
    assert_eq!(load["failed"], 0, "{load}");
    assert_eq!(load["verified"], CONNECTIONS);
    assert_eq!(load["open_at_hold_start"], CONNECTIONS);
    assert_eq!(load["workers_lost"], 0);
    // One report over every host: a worker (at least) on each, their sources together.
    let processes = load["processes"].as_u64().unwrap();
    assert!(
        processes >= 3 && processes.is_multiple_of(3),
        "{processes} processes"
    );
    assert_eq!(load["sources"], hosts.join(","));
    assert_eq!(load["source_count"], 12);
    assert_eq!(load["max_per_source"], CONNECTIONS / 12);
    // What the server's host saw: every connection on its port, from all 12 addresses
    // of the 3 load hosts.
    let os = &report["os"];
    assert_eq!(os["established_on_port"], CONNECTIONS);
    assert_eq!(os["distinct_client_pairs"], CONNECTIONS);
    assert_eq!(os["source_addresses"], 12);
    assert!(
        report["server"]["address"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{NET}.0.11:")),
        "{}",
        report["server"]
    );
    // The merged timeline holds every connection at once, in one second of the run.
    let timeline = report["timeline"].as_array().unwrap();
    let most = timeline
        .iter()
        .filter_map(|r| r["established"].as_u64())
        .max();
    assert_eq!(most, Some(CONNECTIONS));
}
