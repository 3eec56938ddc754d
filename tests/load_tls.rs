//! `wsreactor load --tls` against `serve --tls-cert --tls-key`: holds with periodic
//! echoes, the echo window and churn over wss://, trusting the server's certificate
//! through `--ca` or not checking it (`--insecure`); every connection verified, none
//! failed, and the report names what TLS negotiated. A wrong `--ca` fails every
//! connection with a reason of its own and rustls' words on stderr.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{LoadRun, Server};

/// A load run that has not finished by then is hung: it is killed and the test fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A self-signed certificate (rcgen) for 127.0.0.1, as PEM files in a directory of
/// its own.
struct Cert {
    dir: PathBuf,
}

impl Cert {
    fn new(name: &str) -> Cert {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let dir =
            std::env::temp_dir().join(format!("wsreactor-load-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        Cert { dir }
    }

    fn cert(&self) -> String {
        self.dir.join("cert.pem").to_str().unwrap().to_owned()
    }

    fn server(&self) -> Server {
        let key = self.dir.join("key.pem");
        Server::with_args(&[
            "--tls-cert",
            &self.cert(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn load(server: &Server, args: &[&str]) -> LoadRun {
    common::run_load(&server.addr.to_string(), args, LOAD_TIMEOUT)
}

/// Asserts a successful run over TLS 1.3 with X25519 and returns its report.
fn ok_run(run: &LoadRun) -> serde_json::Value {
    let r = run.clean_report();
    assert_eq!(r["tls"]["version"], "TLSv1_3", "{r:#}");
    assert_eq!(
        r["tls"]["group"], "X25519",
        "the client offers X25519 first: {r:#}"
    );
    let handshakes = r["tls"]["full"].as_u64().unwrap();
    assert_eq!(r["tls"]["resumed"], 0, "no resumption: {r:#}");
    assert_eq!(
        Some(handshakes),
        r["established"].as_u64(),
        "every TLS handshake counted: {r:#}"
    );
    assert!(
        r["tls"]["cipher_suite"]
            .as_str()
            .unwrap()
            .starts_with("TLS13_"),
        "{r:#}"
    );
    r
}

#[test]
fn load_holds_and_echoes_over_tls_with_ca_and_insecure() {
    let cert = Cert::new("hold");
    let server = cert.server();
    let ca = cert.cert();
    for trust in [&["--ca", ca.as_str()][..], &["--insecure"][..]] {
        let mut args = vec![
            "--json",
            "--tls",
            "--connections",
            "60",
            "--hold",
            "1",
            "--echo-every",
            "0.3",
            "--message-size",
            "20000",
        ];
        args.extend_from_slice(trust);
        let r = ok_run(&load(&server, &args));
        assert_eq!(r["verified"], 60, "{r:#}");
        assert_eq!(r["closed_clean"], 60, "{r:#}");
        // The verification echoes and the hold's: 20,000 B each, two records apiece.
        assert!(r["echoes"].as_u64().unwrap() > 60, "{r:#}");
        assert!(r["handshake_us"]["count"].as_u64().unwrap() == 60, "{r:#}");
    }
}

#[test]
fn the_echo_window_and_churn_run_over_tls() {
    let cert = Cert::new("workloads");
    let server = cert.server();
    let pid = server.pid().to_string();
    let ca = cert.cert();
    let common = [
        "--json",
        "--tls",
        "--ca",
        &ca,
        "--warmup",
        "0.3",
        "--duration",
        "1",
    ];
    let mut window = common.to_vec();
    window.extend_from_slice(&["--connections", "8", "--echo-window", "16"]);
    window.extend_from_slice(&["--server-pid", &pid]);
    let r = ok_run(&load(&server, &window));
    assert_eq!(r["workload"]["mode"], "echo", "{r:#}");
    assert!(r["workload"]["ops"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["workload"]["server_cpu_secs"].as_f64().is_some(), "{r:#}");

    let mut churn = common.to_vec();
    churn.extend_from_slice(&["--connections", "4", "--churn"]);
    let r = ok_run(&load(&server, &churn));
    let verified = r["verified"].as_u64().unwrap();
    assert!(verified > 4, "every slot cycled: {r:#}");
    assert_eq!(r["closed_clean"], verified, "{r:#}");
}

#[test]
fn tls_resume_makes_every_handshake_after_the_first_a_resumed_one() {
    let cert = Cert::new("resume");
    let server = cert.server();
    let ca = cert.cert();
    let args = [
        "--json",
        "--tls",
        "--ca",
        &ca,
        "--tls-resume",
        "--connections",
        "2",
        "--churn",
        "--warmup",
        "0",
        "--duration",
        "1",
    ];
    let r = load(&server, &args).clean_report();
    let verified = r["verified"].as_u64().unwrap();
    assert!(verified > 10, "{r:#}");
    // Each slot's first connection finds no ticket yet; every later one offers one.
    assert!(r["tls"]["full"].as_u64().unwrap() <= 2, "{r:#}");
    assert_eq!(
        r["tls"]["full"].as_u64().unwrap() + r["tls"]["resumed"].as_u64().unwrap(),
        verified,
        "{r:#}"
    );
}

#[test]
fn tls_group_is_the_only_group_offered() {
    let cert = Cert::new("group");
    let server = cert.server();
    let ca = cert.cert();
    let args = [
        "--json",
        "--tls",
        "--ca",
        &ca,
        "--tls-group",
        "secp256r1",
        "--connections",
        "3",
        "--hold",
        "0",
    ];
    let r = load(&server, &args).clean_report();
    assert_eq!(r["tls"]["group"], "secp256r1", "{r:#}");
}

#[test]
fn a_wrong_ca_fails_every_connection_clearly() {
    let (cert, other) = (Cert::new("right"), Cert::new("wrong"));
    let server = cert.server();
    let wrong = other.cert();
    let run = load(
        &server,
        &[
            "--json",
            "--tls",
            "--ca",
            &wrong,
            "--connections",
            "5",
            "--hold",
            "0",
        ],
    );
    let r = run.report();
    assert!(!run.status.success(), "{r:#}");
    assert_eq!(r["ok"], false, "{r:#}");
    assert_eq!(r["established"], 0, "{r:#}");
    assert_eq!(r["failures"]["tls_bad_certificate"], 5, "{r:#}");
    // Told once, in rustls' words.
    assert_eq!(
        run.stderr.matches("invalid peer certificate").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(r.get("tls").is_none(), "nothing was negotiated: {r:#}");
}

#[test]
fn tls_settings_that_cannot_work_are_refused_before_any_socket() {
    let cert = Cert::new("refused");
    let server = cert.server();
    let missing = cert.dir.join("missing.pem");
    let cases: [(&[&str], &str); 5] = [
        (&["--tls"], "--tls needs --ca FILE, or --insecure"),
        (&["--tls", "--ca", missing.to_str().unwrap()], "missing.pem"),
        (&["--ca", "x.pem"], "--tls"),
        (
            &["--tls", "--insecure", "--tls-group", "nonsense"],
            "--tls-group nonsense: not in this build (it has ",
        ),
        (&["--tls-group", "X25519"], "--tls"),
    ];
    for (args, says) in cases {
        let mut all = vec!["--connections", "1"];
        all.extend_from_slice(args);
        let run = load(&server, &all);
        assert!(!run.status.success(), "{args:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: no report: {}", run.stdout);
    }
}

#[test]
fn a_plain_run_reports_no_tls() {
    let server = Server::start();
    let run = common::run_load(
        &server.addr.to_string(),
        &["--json", "--connections", "3", "--hold", "0"],
        LOAD_TIMEOUT,
    );
    let r = run.report();
    assert_eq!(r["ok"], true, "{r:#}");
    assert!(r.get("tls").is_none(), "{r:#}");
}
