//! Small-message echo throughput of wsreactor binaries, measured from outside the process,
//! so that any two builds (before and after a change) can be compared side by side:
//! `scripts/compare.sh BIN_A BIN_B [ROUNDS]` runs this for several rounds and prints medians.
//!
//! ```sh
//! cargo bench --bench echo_throughput                      # this tree's release binary
//! WSREACTOR_BIN=/path/to/wsreactor ECHO_WINDOW=16 cargo bench --bench echo_throughput
//! WSREACTOR_BIN=before/wsreactor WSREACTOR_BIN_B=after/wsreactor cargo bench --bench echo_throughput
//! ```
//!
//! It starts `taskset -c 0 BIN serve --listen 127.0.0.1:0`, reads the address from the
//! server's "listening on ADDR" log line, pins itself to core 1, opens `ECHO_CONNS`
//! WebSocket connections to `/echo` (a real handshake, `Sec-WebSocket-Accept` checked) and
//! runs a closed loop: each connection keeps `ECHO_WINDOW` binary messages of `ECHO_SIZE`
//! bytes in flight and sends a new one for every echo it gets back. Every echo is checked
//! byte for byte and in order (a sequence number in the payload). After `ECHO_WARMUP`
//! seconds it measures for `ECHO_SECS` seconds: echoes per second, and the server's CPU time
//! (utime + stime from `/proc/PID/stat`) over the window divided by the echoes.
//!
//! With `WSREACTOR_BIN_B` as well, both servers run at once (both on core 0, each with its
//! own `ECHO_CONNS` connections) and the load alternates between them every `ECHO_SLICE`
//! seconds (A B A B ...; the measured window is an even number of slices), so that a change
//! in the machine's load in the middle of a run falls on both alike. Only one server has
//! messages in flight at a time (the other one's last ones drain after the switch), and each
//! server's rate is its echoes over the time it was the loaded one. An idle server costs
//! nothing measurable (its CPU is counted too).
//!
//! The client is one thread on its own core, written to spend little CPU (one masked frame
//! is 38 bytes, one `write` per connection per wake-up), and its CPU per message is reported
//! too, as is the CPU that other processes used meanwhile (from /proc/stat, with the
//! hypervisor's steal): if the server is not near 100% of its core, the client or the
//! machine bounds the rate and the server's CPU per message is the figure to compare.
//! Servers are stopped by PID (SIGTERM, then SIGKILL) however the run ends.
//!
//! Environment (defaults): `WSREACTOR_BIN` (this package's release binary,
//! target/release/wsreactor), `WSREACTOR_BIN_B` (none), `ECHO_CONNS` (100), `ECHO_WINDOW`
//! (1), `ECHO_SIZE` (32), `ECHO_WARMUP` (1 s), `ECHO_SECS` (5 s), `ECHO_SLICE` (0.5 s),
//! `ECHO_SERVER_CPU` (0) and `ECHO_CLIENT_CPU` (1) (`none` = no pinning),
//! `ECHO_SERVER_ARGS` (extra `serve` options, split on spaces). Prints a summary and one
//! `RESULT server=I key=value ...` line per server on stdout for scripts. Run by
//! `cargo test --benches` (without `--bench`), it does a short smoke run instead.

use std::collections::VecDeque;
use std::env;
use std::error::Error;
use std::fs;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use sha1::{Digest, Sha1};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Echoes that stop arriving for this long fail the run (a dead or stuck server).
const STALL: Duration = Duration::from_secs(10);

struct Params {
    /// One server, or two that take the load in turn.
    bins: Vec<PathBuf>,
    conns: usize,
    window: usize,
    size: usize,
    warmup: f64,
    secs: f64,
    slice: f64,
    server_cpu: Option<usize>,
    client_cpu: Option<usize>,
    server_args: Vec<String>,
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a valid value").into()),
        _ => Ok(default),
    }
}

fn cpu_var(name: &str, default: usize) -> Result<Option<usize>> {
    match env::var(name) {
        Ok(v) if v.trim() == "none" => Ok(None),
        _ => var(name, default).map(Some),
    }
}

impl Params {
    fn from_env(smoke: bool) -> Result<Params> {
        let default_bin = env!("CARGO_BIN_EXE_wsreactor");
        let mut bins = vec![PathBuf::from(var(
            "WSREACTOR_BIN",
            default_bin.to_string(),
        )?)];
        if let Ok(b) = env::var("WSREACTOR_BIN_B") {
            if !b.trim().is_empty() {
                bins.push(PathBuf::from(b.trim()));
            }
        }
        let p = Params {
            bins,
            conns: var("ECHO_CONNS", if smoke { 4 } else { 100 })?,
            window: var("ECHO_WINDOW", 1)?,
            size: var("ECHO_SIZE", 32)?,
            warmup: var("ECHO_WARMUP", if smoke { 0.2 } else { 1.0 })?,
            secs: var("ECHO_SECS", if smoke { 0.5 } else { 5.0 })?,
            slice: var("ECHO_SLICE", if smoke { 0.1 } else { 0.5 })?,
            server_cpu: cpu_var("ECHO_SERVER_CPU", 0)?,
            client_cpu: cpu_var("ECHO_CLIENT_CPU", 1)?,
            server_args: env::var("ECHO_SERVER_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect(),
        };
        if p.conns == 0 || p.window == 0 {
            return Err("ECHO_CONNS and ECHO_WINDOW must be at least 1".into());
        }
        if p.size < 8 {
            return Err("ECHO_SIZE must be at least 8 (the sequence number)".into());
        }
        if p.secs <= 0.0 || p.warmup < 0.0 || p.slice <= 0.0 {
            return Err(
                "ECHO_SECS and ECHO_SLICE must be positive, ECHO_WARMUP not negative".into(),
            );
        }
        Ok(p)
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: then only a smoke run.
    let smoke = !env::args().any(|a| a == "--bench");
    let params = match Params::from_env(smoke) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("echo_throughput: {e}");
            std::process::exit(2);
        }
    };
    if smoke {
        if let Some(b) = params.bins.iter().find(|b| !b.exists()) {
            println!(
                "echo_throughput: {} not built, smoke run skipped",
                b.display()
            );
            return;
        }
    }
    if let Err(e) = run(&params) {
        eprintln!("echo_throughput: FAILED: {e}");
        std::process::exit(1);
    }
}

// --- the server ------------------------------------------------------------------------

/// The server process; dropping it stops the server by its PID.
struct Server {
    child: Child,
    pid: i32,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    fn start(bin: &Path, p: &Params) -> Result<(Server, SocketAddr)> {
        let bin =
            fs::canonicalize(bin).map_err(|e| format!("server binary {}: {e}", bin.display()))?;
        let mut cmd = match p.server_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(&p.server_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let pid = child.id() as i32;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        // Keep draining the server's log for the whole run, so it never blocks on a full
        // pipe; keep the last lines for an error message.
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on ") {
                    let addr = line[i + 13..].split_whitespace().next().unwrap_or("");
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.to_string());
                    }
                }
                let mut l = lines.lock().unwrap();
                if l.len() == 40 {
                    l.pop_front();
                }
                l.push_back(line);
            }
        });
        let server = Server { child, pid, log };
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(server.failure("no \"listening on\" line within 30 s"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let mut server = server;
                thread::sleep(Duration::from_millis(100));
                let status = server.child.try_wait().ok().flatten();
                let what =
                    status.map_or("closed its stderr".to_string(), |s| format!("exited ({s})"));
                return Err(server.failure(&format!("the server {what} before \"listening on\"")));
            }
        };
        let addr: SocketAddr = match addr.parse() {
            Ok(a) => a,
            Err(_) => return Err(server.failure(&format!("cannot parse address {addr:?}"))),
        };
        // taskset exec()s the server, so the child's PID is the server's: check it.
        let exe = fs::read_link(format!("/proc/{pid}/exe"))?;
        if exe != bin {
            return Err(format!("PID {pid} runs {}, not {}", exe.display(), bin.display()).into());
        }
        Ok((server, addr))
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn failure(&self, what: &str) -> Box<dyn Error> {
        let log = self.log.lock().unwrap();
        let tail: Vec<&str> = log.iter().map(String::as_str).collect();
        format!("{what}; server log:\n  {}", tail.join("\n  ")).into()
    }

    /// Server CPU time (utime + stime) in clock ticks.
    fn cpu_ticks(&self) -> Result<u64> {
        proc_cpu_ticks(&format!("/proc/{}/stat", self.pid))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.alive() {
            return;
        }
        // SAFETY: kill(2) with the PID of our own child, which we have not reaped yet.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_cpu_ticks(path: &str) -> Result<u64> {
    let stat = fs::read_to_string(path)?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

/// The whole host's CPU time from the `cpu` line of /proc/stat, in clock ticks: busy
/// (user, nice, system, irq, softirq; guest time is inside user) and stolen by the
/// hypervisor. Busy minus the server's and our own is what other processes used.
#[derive(Clone, Copy)]
struct HostTicks {
    busy: u64,
    steal: u64,
}

fn host_ticks() -> Result<HostTicks> {
    let stat = fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    if f.len() < 8 {
        return Err("short cpu line in /proc/stat".into());
    }
    // user nice system idle iowait irq softirq steal ...
    Ok(HostTicks {
        busy: f[0] + f[1] + f[2] + f[5] + f[6],
        steal: f[7],
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn pin_to(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls get valid pointers and sizes.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("pinning to CPU {cpu}: {}", io::Error::last_os_error()).into());
        }
    }
    Ok(())
}

// --- the client ------------------------------------------------------------------------

struct Conn {
    stream: MioStream,
    /// Bytes of an echo not yet complete.
    partial: Vec<u8>,
    /// Frames not yet written (only after a short write).
    out: Vec<u8>,
    mask: [u8; 4],
    sent: u64,
    received: u64,
    /// Bytes of the current echo seen so far, if it came fragmented and is not complete.
    got: Option<usize>,
    /// Frames received (more than echoes when the server fragments its echoes).
    frames: u64,
    /// Index of the server this connection talks to.
    server: usize,
}

fn payload_byte(seq: u64, i: usize) -> u8 {
    if i < 8 {
        seq.to_le_bytes()[i]
    } else {
        (i as u8) ^ 0x5A
    }
}

impl Conn {
    /// Appends one masked binary frame carrying the next sequence number.
    fn queue(&mut self, size: usize) {
        let seq = self.sent;
        self.sent += 1;
        self.out.push(0x82);
        match size {
            0..=125 => self.out.push(0x80 | size as u8),
            126..=0xFFFF => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(size as u16).to_be_bytes());
            }
            _ => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(size as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&self.mask);
        let m = self.mask;
        self.out
            .extend((0..size).map(|i| payload_byte(seq, i) ^ m[i % 4]));
    }

    /// Tops the messages in flight up to `window`.
    fn refill(&mut self, window: usize, size: usize) {
        while self.sent - self.received < window as u64 {
            self.queue(size);
        }
    }

    /// Writes what is queued until done or `WouldBlock`.
    fn flush(&mut self) -> io::Result<()> {
        let mut done = 0;
        while done < self.out.len() {
            match self.stream.write(&self.out[done..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.drain(..done);
        Ok(())
    }

    /// Checks the complete echoes at the start of `buf`; returns (echoes, bytes used).
    /// An echo may come back as one binary frame or fragmented (a binary frame without FIN,
    /// then continuation frames, the last one with FIN), as a streaming server sends it:
    /// every fragment's bytes are checked at their offset in the message.
    fn take_echoes(&mut self, buf: &[u8], size: usize) -> Result<(u64, usize)> {
        let mut at = 0;
        let mut echoes = 0;
        loop {
            let b = &buf[at..];
            if b.len() < 2 {
                break;
            }
            let (len, head) = match b[1] {
                n @ 0..=125 => (n as usize, 2),
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 10 => (
                    u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                _ => {
                    return Err(
                        format!("masked or bad frame from the server: {:02x?}", &b[..2]).into(),
                    )
                }
            };
            let fin = b[0] & 0x80 != 0;
            let opcode = b[0] & 0x0F;
            if b[0] & 0x70 != 0
                || (self.got.is_none() && opcode != 2)
                || (self.got.is_some() && opcode != 0)
            {
                return Err(format!(
                    "unexpected frame {:#04x} (in a message: {})",
                    b[0],
                    self.got.is_some()
                )
                .into());
            }
            let off = self.got.unwrap_or(0);
            if off + len > size {
                return Err(
                    format!("echo of more than {size} bytes ({} so far)", off + len).into(),
                );
            }
            if b.len() < head + len {
                break;
            }
            let seq = self.received;
            if !b[head..head + len]
                .iter()
                .enumerate()
                .all(|(i, &x)| x == payload_byte(seq, off + i))
            {
                return Err(format!("echo {seq} differs from what was sent").into());
            }
            self.frames += 1;
            if fin {
                if off + len != size {
                    return Err(format!("echo of {} bytes, sent {size}", off + len).into());
                }
                self.got = None;
                self.received += 1;
                echoes += 1;
            } else {
                self.got = Some(off + len);
            }
            at += head + len;
        }
        Ok((echoes, at))
    }
}

/// A blocking WebSocket handshake to `/echo`; returns the stream, ready for frames.
fn open(addr: SocketAddr, index: usize, server: usize) -> Result<Conn> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&(index as u64).to_le_bytes());
    nonce[8..].copy_from_slice(b"echobnch");
    let key = BASE64.encode(nonce);
    write!(
        s,
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    // Read byte by byte up to the end of the head: the server sends nothing after the 101
    // until we send, and this is only the set-up.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        if s.read(&mut byte)? == 0 {
            return Err(format!("connection {index}: closed during the handshake").into());
        }
        head.push(byte[0]);
        if head.len() > 8192 {
            return Err("response head over 8 KiB".into());
        }
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        let line = head.lines().next().unwrap_or("");
        return Err(format!("connection {index}: expected 101, got {line:?}").into());
    }
    let accept = BASE64.encode(Sha1::digest(format!("{key}{GUID}").as_bytes()));
    let ok = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("sec-websocket-accept") && v.trim() == accept
        })
    });
    if !ok {
        return Err(format!("connection {index}: wrong or missing Sec-WebSocket-Accept").into());
    }
    s.set_nonblocking(true)?;
    let m = (index as u32).wrapping_mul(0x9E37_79B9) | 1;
    Ok(Conn {
        stream: MioStream::from_std(s),
        partial: Vec::new(),
        out: Vec::new(),
        mask: m.to_le_bytes(),
        sent: 0,
        received: 0,
        got: None,
        frames: 0,
        server,
    })
}

/// What the counters say at one instant.
struct Sample {
    at: Instant,
    /// Echoes received so far, per server.
    echoes: Vec<u64>,
    /// CPU ticks so far, per server.
    server_ticks: Vec<u64>,
    client_ticks: u64,
    host: HostTicks,
}

fn sample(servers: &[Server], echoes: &[u64]) -> Result<Sample> {
    Ok(Sample {
        at: Instant::now(),
        echoes: echoes.to_vec(),
        server_ticks: servers
            .iter()
            .map(Server::cpu_ticks)
            .collect::<Result<_>>()?,
        client_ticks: proc_cpu_ticks("/proc/self/stat")?,
        host: host_ticks()?,
    })
}

fn run(p: &Params) -> Result<()> {
    // Pin before starting anything, so every thread of ours inherits it.
    if let Some(cpu) = p.client_cpu {
        pin_to(cpu)?;
    }
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for bin in &p.bins {
        let (server, addr) = Server::start(bin, p)?;
        servers.push(server);
        addrs.push(addr);
    }
    // On any return, `servers` is dropped, which stops every server started.
    drive(p, &mut servers, &addrs)
}

fn drive(p: &Params, servers: &mut [Server], addrs: &[SocketAddr]) -> Result<()> {
    let n = servers.len();
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(n * p.conns);
    for (k, &addr) in addrs.iter().enumerate() {
        for i in 0..p.conns {
            let mut c = open(addr, i, k).map_err(|e| servers[k].failure(&e.to_string()))?;
            poll.registry().register(
                &mut c.stream,
                Token(conns.len()),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conns.push(c);
        }
    }

    // Gate mode (ECHO_GATE=DIR, for counting syscalls with strace/perf attached to the
    // server): with every connection open and idle, write the servers' PIDs to DIR/pids
    // and wait for DIR/go to exist before sending anything.
    let gate = env::var("ECHO_GATE")
        .ok()
        .filter(|g| !g.trim().is_empty())
        .map(PathBuf::from);
    if let Some(g) = &gate {
        let pids: Vec<String> = servers.iter().map(|s| s.pid.to_string()).collect();
        fs::write(g.join("pids"), pids.join("\n") + "\n")?;
        eprintln!(
            "echo_throughput: gate: {} connections open, waiting for {}",
            conns.len(),
            g.join("go").display()
        );
        while !g.join("go").exists() {
            thread::sleep(Duration::from_millis(20));
        }
    }
    // The schedule: with two servers, slices of `slice` seconds from the start, server 0
    // loaded in the even ones; the window is a whole, even number of slices.
    let started = Instant::now();
    let (slice, measure_from, measure_to) = if n == 1 {
        let from = started + Duration::from_secs_f64(p.warmup);
        (None, from, from + Duration::from_secs_f64(p.secs))
    } else {
        let s = Duration::from_secs_f64(p.slice);
        let warm = (p.warmup / p.slice).ceil() as u32;
        let meas = ((p.secs / p.slice).round() as u32).max(2).div_ceil(2) * 2;
        (Some(s), started + s * warm, started + s * (warm + meas))
    };
    let mut active = 0;
    let mut next_switch = slice.map(|s| started + s);
    for c in &mut conns {
        if c.server == active {
            c.refill(p.window, p.size);
            c.flush()?;
        }
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoes = vec![0u64; n];
    // Time each server was the loaded one inside the window.
    let mut loaded = vec![Duration::ZERO; n];
    let mut first: Option<Sample> = None;
    let mut mark = started;
    let mut last_progress = (Instant::now(), 0u64);

    let last = loop {
        let now = Instant::now();
        if first.is_none() && now >= measure_from {
            first = Some(sample(servers, &echoes)?);
            mark = now;
        }
        if now >= measure_to {
            let last = sample(servers, &echoes)?;
            loaded[active] += last.at - mark;
            break last;
        }
        if let (Some(s), Some(at)) = (slice, next_switch) {
            if now >= at {
                if first.is_some() {
                    loaded[active] += now - mark;
                    mark = now;
                }
                active = (active + 1) % n;
                next_switch = Some(at + s);
                for c in conns.iter_mut().filter(|c| c.server == active) {
                    c.refill(p.window, p.size);
                    c.flush()?;
                }
            }
        }
        let total: u64 = echoes.iter().sum();
        if total != last_progress.1 {
            last_progress = (now, total);
        } else if now - last_progress.0 > STALL {
            for s in servers.iter_mut() {
                if !s.alive() {
                    return Err(s.failure("a server exited"));
                }
            }
            return Err(servers[active].failure(&format!("no echo for {} s", STALL.as_secs())));
        }
        let mut until = if first.is_none() {
            measure_from
        } else {
            measure_to
        };
        if let Some(at) = next_switch {
            until = until.min(at);
        }
        let timeout = until
            .saturating_duration_since(now)
            .min(Duration::from_secs(1));
        poll.poll(&mut events, Some(timeout))?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            let k = c.server;
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                loop {
                    let got = match c.stream.read(&mut buf) {
                        Ok(0) => return Err(servers[k].failure("the server closed a connection")),
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Err(servers[k].failure(&format!("read: {e}"))),
                    };
                    let done = if c.partial.is_empty() {
                        let (done, used) = c.take_echoes(&buf[..got], p.size)?;
                        c.partial.extend_from_slice(&buf[used..got]);
                        done
                    } else {
                        c.partial.extend_from_slice(&buf[..got]);
                        let mut partial = std::mem::take(&mut c.partial);
                        let (done, used) = c.take_echoes(&partial, p.size)?;
                        partial.drain(..used);
                        c.partial = partial;
                        done
                    };
                    echoes[k] += done;
                    if k == active {
                        c.refill(p.window, p.size);
                    }
                    // A short read drained the socket; new bytes raise a new edge.
                    if got < buf.len() {
                        break;
                    }
                }
            }
            if !c.out.is_empty() {
                c.flush()
                    .map_err(|e| servers[k].failure(&format!("write: {e}")))?;
            }
        }
    };
    if let Some(g) = &gate {
        // Stop sending, take every echo still in flight, then report exact totals: every
        // message sent since DIR/go has come back.
        let deadline = Instant::now() + STALL;
        while conns.iter().any(|c| c.received < c.sent) {
            if Instant::now() > deadline {
                return Err("gate: echoes in flight did not come back within 10 s".into());
            }
            poll.poll(&mut events, Some(Duration::from_millis(100)))?;
            for ev in events.iter() {
                let c = &mut conns[ev.token().0];
                loop {
                    let got = match c.stream.read(&mut buf) {
                        Ok(0) => return Err("the server closed a connection".into()),
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Err(format!("read: {e}").into()),
                    };
                    c.partial.extend_from_slice(&buf[..got]);
                    let mut partial = std::mem::take(&mut c.partial);
                    let (_, used) = c.take_echoes(&partial, p.size)?;
                    partial.drain(..used);
                    c.partial = partial;
                }
                if !c.out.is_empty() {
                    c.flush()?;
                }
            }
        }
        for k in 0..n {
            let sel = conns.iter().filter(|c| c.server == k);
            let (e, f) = sel.fold((0, 0), |(e, f), c| (e + c.received, f + c.frames));
            println!("GATED server={k} echoes={e} frames={f}");
        }
        fs::write(g.join("done"), "")?;
        eprintln!(
            "echo_throughput: gate: done, waiting for {}",
            g.join("stop").display()
        );
        while !g.join("stop").exists() {
            thread::sleep(Duration::from_millis(20));
        }
    }
    for k in 0..n {
        let sel = conns.iter().filter(|c| c.server == k);
        let (e, f) = sel.fold((0, 0), |(e, f), c| (e + c.received, f + c.frames));
        println!(
            "TOTALS server={k} echoes={e} frames={f} frames_per_echo={:.3}",
            f as f64 / e.max(1) as f64
        );
    }
    // Close our side first, so the servers have no connections to wind down.
    drop(conns);
    report(p, &first.expect("sampled before the end"), &last, &loaded);
    Ok(())
}

fn report(p: &Params, first: &Sample, last: &Sample, loaded: &[Duration]) {
    let hz = clock_ticks();
    let secs = (last.at - first.at).as_secs_f64();
    let msgs: Vec<u64> = (0..p.bins.len())
        .map(|k| last.echoes[k] - first.echoes[k])
        .collect();
    let total: u64 = msgs.iter().sum();
    let server_ticks: Vec<u64> = (0..p.bins.len())
        .map(|k| last.server_ticks[k] - first.server_ticks[k])
        .collect();
    let client_ticks = last.client_ticks - first.client_ticks;
    let client_cpu = client_ticks as f64 / hz;
    let client_us = client_cpu * 1e6 / total.max(1) as f64;
    // Other processes' CPU (and the hypervisor's steal) over the window, in cores: the
    // noise the run saw. Tick sampling makes it a little ragged; it is never negative.
    let ours = server_ticks.iter().sum::<u64>() + client_ticks;
    let other_busy = (last.host.busy - first.host.busy).saturating_sub(ours);
    let steal = last.host.steal - first.host.steal;
    let other_util = (other_busy + steal) as f64 / hz / secs;
    let cpu = |c: Option<usize>| c.map_or("none".to_string(), |c| c.to_string());
    println!(
        "echo_throughput: {} connections x {} in flight per server, {} B binary messages, \
         servers on CPU {}, client on CPU {}{}",
        p.conns,
        p.window,
        p.size,
        cpu(p.server_cpu),
        cpu(p.client_cpu),
        if p.bins.len() > 1 {
            format!(", alternating every {} s", p.slice)
        } else {
            String::new()
        }
    );
    println!(
        "  window {secs:.3} s after {} s warm-up; client CPU {client_cpu:.2} s ({:.0}%): \
         {client_us:.3} us/msg; other processes and steal: {:.0}% of a core (of {})",
        p.warmup,
        100.0 * client_cpu / secs,
        100.0 * other_util,
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }
    );
    let mut rates = Vec::new();
    for (k, bin) in p.bins.iter().enumerate() {
        let t = loaded[k].as_secs_f64();
        let rate = msgs[k] as f64 / t;
        let server_cpu = server_ticks[k] as f64 / hz;
        let server_us = server_cpu * 1e6 / msgs[k].max(1) as f64;
        rates.push((rate, server_us));
        println!(
            "  server {k} {}: {} echoes in {t:.3} s loaded: {rate:.0} msgs/s; \
             CPU {server_cpu:.2} s ({:.0}% of a core while loaded): {server_us:.3} us/msg",
            bin.display(),
            msgs[k],
            100.0 * server_cpu / t
        );
        println!(
            "RESULT server={k} conns={} window={} size={} secs={t:.3} msgs={} \
             msgs_per_sec={rate:.1} server_cpu_s={server_cpu:.3} server_us_per_msg={server_us:.4} \
             server_util={:.3} client_us_per_msg={client_us:.4} client_util={:.3} \
             other_util={other_util:.3}",
            p.conns,
            p.window,
            p.size,
            msgs[k],
            server_cpu / t,
            client_cpu / secs
        );
    }
    if let [(ra, ua), (rb, ub)] = rates[..] {
        println!(
            "  server 1 / server 0: msgs/s {:.3}, server us/msg {:.3}",
            rb / ra,
            ub / ua
        );
    }
}
