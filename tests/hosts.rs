//! Rooms across hosts: three server hosts, one Redis host and a client host, simulated
//! with network namespaces (`scripts/hosts.sh`), each server a separate `wsreactor serve
//! --pubsub` on its own address. A message from a client reaches its room's members on
//! every host exactly once and in order; killing and restarting Redis mid-chat loses no
//! connection and delivery recovers. Needs root (as CI and the project's machines run);
//! every namespace and process is removed at the end, failures included.

mod common;

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::rooms::chat_exactly_once;
use common::{eventually, op, upgrade_request, Raw, IO_TIMEOUT};
use wsreactor::protocol::frame::OpCode;

const NET: &str = "10.203";
const REDIS: &str = "10.203.0.2:6379";
const CHANNEL: &str = "wsreactor:room:lobby";

/// The simulated hosts of one test, and what runs on them; all gone on drop.
struct Hosts {
    prefix: String,
    children: Vec<(String, Child)>,
    logs: PathBuf,
}

impl Hosts {
    /// Creates `servers` server hosts, a Redis host and one client host.
    fn up(name: &str, servers: u32) -> Hosts {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "network namespaces need root"
        );
        let prefix = format!("wsrt{}{name}", std::process::id() % 100_000);
        let logs = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&logs).unwrap();
        let hosts = Hosts {
            prefix,
            children: Vec::new(),
            logs,
        };
        let status = hosts
            .script(&["up", &servers.to_string(), "1"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/hosts.sh up failed");
        hosts
    }

    fn script(&self, args: &[&str]) -> Command {
        let mut command = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/hosts.sh"));
        command
            .args(args)
            .env("HOSTS_PREFIX", &self.prefix)
            .env("HOSTS_NET", NET);
        command
    }

    /// Starts `program args` on `host`, its output in a log file named `name`.
    fn spawn(&mut self, host: &str, name: &str, program: &str, args: &[&str]) {
        let log = File::create(self.logs.join(name)).unwrap();
        let child = self
            .script(&["exec", host, program])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((name.to_owned(), child));
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(name)).unwrap_or_default()
    }

    /// Starts Redis on its host and waits until it answers.
    fn start_redis(&mut self) {
        let args = [
            "--bind",
            "10.203.0.2",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        self.spawn(
            "redis",
            "redis",
            "redis-server",
            &[&args[..], &["--protected-mode", "no"]].concat(),
        );
        eventually(Duration::from_secs(10), || {
            (self.redis_cli(&["PING"]).trim() == "PONG").then_some(())
        })
        .expect("redis-server answers");
    }

    /// Kills Redis (SIGKILL, by its PID).
    fn kill_redis(&mut self) {
        let i = self
            .children
            .iter()
            .position(|(n, _)| n == "redis")
            .unwrap();
        let (_, mut child) = self.children.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn redis_cli(&self, args: &[&str]) -> String {
        let out = self
            .script(&["exec", "redis", "redis-cli", "-h", "10.203.0.2"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_subscribers(&self, n: u64) {
        let count = || {
            let out = self.redis_cli(&["PUBSUB", "NUMSUB", CHANNEL]);
            out.lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u64>().ok())
        };
        eventually(Duration::from_secs(20), || {
            (count() == Some(n)).then_some(())
        })
        .unwrap_or_else(|| panic!("{:?} subscribers, not {n}", count()));
    }

    /// Starts `wsreactor serve --pubsub` on server host `i` and waits until it listens.
    fn start_server(&mut self, i: u32) -> SocketAddr {
        let addr: SocketAddr = format!("{NET}.0.{}:9001", 10 + i).parse().unwrap();
        let name = format!("s{i}");
        let listen = addr.to_string();
        let pubsub = format!("redis://{REDIS}");
        let args = ["serve", "--listen", &listen, "--pubsub", &pubsub];
        self.spawn(&name, &name, env!("CARGO_BIN_EXE_wsreactor"), &args);
        eventually(Duration::from_secs(20), || {
            self.log(&name).contains("listening on").then_some(())
        })
        .unwrap_or_else(|| panic!("server {name} did not start:\n{}", self.log(&name)));
        addr
    }

    /// Runs `f` on a thread inside client host `c1`: its sockets are that host's.
    fn on_client<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = File::open(format!("/run/netns/{}-c1", self.prefix)).unwrap();
        thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on this thread only, with a namespace descriptor we hold.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            for (name, _) in &self.children {
                eprintln!("--- {name} ---\n{}", self.log(name));
            }
        }
        let _ = self.script(&["down"]).status();
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

/// A chat member of `/chat?room=lobby` on the server at `addr`.
fn member(addr: SocketAddr) -> Raw {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    let mut raw = Raw::from_stream(stream);
    raw.send(&upgrade_request("/chat?room=lobby", ""));
    raw.read_response().assert_switching();
    raw
}

/// Three server hosts on one Redis host, and two members of the room on each, from the
/// client host, once every server subscribes.
fn three_hosts(name: &str) -> (Hosts, Vec<Raw>) {
    let mut hosts = Hosts::up(name, 3);
    hosts.start_redis();
    let servers: Vec<SocketAddr> = (1..=3).map(|i| hosts.start_server(i)).collect();
    let members = hosts.on_client(|| {
        let pairs = servers.iter().flat_map(|&a| [member(a), member(a)]);
        pairs.collect::<Vec<_>>()
    });
    hosts.wait_subscribers(3);
    (hosts, members)
}

#[test]
fn a_room_spans_three_hosts_exactly_once_and_in_order() {
    let (hosts, mut members) = three_hosts("a");
    hosts.on_client(|| chat_exactly_once(&mut members, 20, "x"));
}

#[test]
fn redis_killed_and_restarted_between_hosts_loses_no_connection() {
    let (mut hosts, mut members) = three_hosts("b");
    hosts.on_client(|| chat_exactly_once(&mut members, 5, "before"));

    hosts.kill_redis();
    eventually(Duration::from_secs(10), || {
        hosts.log("s1").contains("lost Redis").then_some(())
    })
    .expect("s1 notices");
    // Members on one host still hear each other; the other hosts do not hear them.
    hosts.on_client(|| {
        members[0].send_frame(true, OpCode::Text, b"local");
        members[0].expect_message(op::TEXT, b"local");
        members[1].expect_message(op::TEXT, b"local");
    });

    let started = Instant::now();
    hosts.start_redis();
    for s in ["s1", "s2", "s3"] {
        eventually(Duration::from_secs(15), || {
            hosts.log(s).contains("is back;").then_some(())
        })
        .unwrap_or_else(|| panic!("{s} did not come back:\n{}", hosts.log(s)));
    }
    hosts.wait_subscribers(3);
    eprintln!(
        "delivery across hosts back {:?} after Redis restarted",
        started.elapsed()
    );
    hosts.on_client(|| chat_exactly_once(&mut members, 5, "after"));
    let mut buf = [0u8; 1];
    for (i, m) in members.iter_mut().enumerate() {
        m.stream.set_nonblocking(true).unwrap();
        let open =
            matches!(m.stream.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(open, "member {i} lost its connection");
    }
}
