//! `wsreactor load`: the load generator. Its arguments, their checks, and the run: in
//! this process when one process has descriptors enough, else across worker processes.
//!
//! It opens N real WebSocket connections to a loopback server (random key, accept value
//! checked, masked frames), verifies each with an echo, holds them all open together
//! (periodic echoes, pongs), closes them cleanly, and reports counts by outcome and
//! latency percentiles. Exit status 0 only if every connection was established and
//! verified and nothing failed.
//!
//! Chat mode (`--chat ROOM`) measures a room's fan-out instead: every connection joins
//! `/chat?room=ROOM`, one of them sends `--chat-messages` numbered messages, and every
//! member must receive every one, in order and byte for byte; the report adds
//! deliveries expected and received, deliveries per second and delivery latency. It
//! runs in one process (see `chat.rs` for why).
//!
//! Workloads (`--echo-window W` closed-loop echo, `--churn` connect-echo-close cycles)
//! measure what servers are compared by: after `--warmup`, for `--duration`, operations
//! per second, their latencies, and with `--server-pid` the server's CPU time per
//! operation (`workload.rs`; the connection's part in `window.rs`, CPU time from
//! `/proc` in `cpu.rs`). They run in one process.
//!
//! Files: `addr` (loopback rule, sources), `plan` (process split), `pacing`, `socket`,
//! `conn` (one connection's lifecycle over the shared protocol core and socket IO),
//! `verify` (what it sends and how it checks what comes back), `env` (what a process's
//! connections share), `driver` (one process's loop), `worker` / `procs` (child /
//! parent of a multi-process run), `failure` (why a connection failed, by name), `wire`
//! (counters and histograms, the worker-to-parent messages), `report`, `timeline`
//! (`--timeline`: each second of the run, merged over processes),
//! `progress`, `payload`, `rng`, `chat` (chat messages and the room's progress).

mod addr;
mod chat;
mod chat_report;
mod conn;
mod cpu;
mod driver;
mod env;
mod failure;
mod pacing;
mod payload;
mod plan;
mod procs;
mod progress;
mod report;
mod rng;
mod socket;
mod timeline;
mod verify;
mod window;
mod wire;
mod worker;
mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use addr::SourceRange;
use chat_report::ChatInfo;
use driver::{Control, Driver, DriverConfig};
use plan::{Procs, WorkerSlot};
use progress::Progress;
use report::{RunInfo, Tally};
use wire::WorkerMsg;

use crate::chat_route::{RoomName, CHAT_PATH};
use crate::limits::{self, sizing};
use crate::protocol::receiver::{ReceiverConfig, Role};
use crate::signals::{self, Again};

/// The longest time any duration flag may ask for (a day): runs stay bounded.
const MAX_SECS: f64 = 86_400.0;
/// The largest echo payload.
const MAX_MESSAGE: u32 = 1 << 20;
/// The most messages a chat run sends (a sequence number is 8 hex digits; a billion
/// messages is days of fan-out anyway).
const MAX_CHAT_MESSAGES: i64 = 1_000_000_000;

/// Arguments of `wsreactor load`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct LoadArgs {
    /// Server to load (loopback only: 127.0.0.0/8 or ::1).
    #[arg(long, value_name = "ADDR:PORT")]
    pub addr: SocketAddr,

    /// WebSocket connections to open and hold.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub connections: u32,

    /// Source addresses to spread connections over, round-robin (inclusive IPv4 range
    /// in 127.0.0.0/8). Default for an IPv4 target: 127.0.0.2-127.0.0.40, extended when
    /// needed so that no source uses more than a quarter of the ephemeral port range
    /// (half of the even ports, which `connect()` takes first).
    #[arg(long, value_name = "A-B")]
    pub sources: Option<SourceRange>,

    /// Worker processes; auto = as few as RLIMIT_NOFILE allows.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub procs: Procs,

    /// Connection attempts per second, over all processes (default: unpaced, limited
    /// by --max-pending).
    #[arg(long, value_name = "PER_SEC", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Seconds to hold every connection open once all are established.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub hold: Duration,

    /// Echo on every connection this often from the start of the hold (every connection
    /// verified and open) until it closes, spread over the interval (0 = only the
    /// verification echo).
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_secs)]
    pub echo_every: Duration,

    /// Print the report as one JSON object on stdout (and no progress).
    #[arg(long)]
    pub json: bool,

    /// Request path of the upgrade.
    #[arg(long, value_name = "PATH", default_value = "/", value_parser = parse_path)]
    pub path: String,

    /// Chat mode: every connection joins /chat?room=ROOM, one sends --chat-messages
    /// numbered messages, and every member must receive each one, in order, byte for
    /// byte (no echoes; --hold does not apply). Runs in one process.
    #[arg(long, value_name = "ROOM", value_parser = parse_room,
          conflicts_with_all = ["path", "hold", "echo_every"])]
    pub chat: Option<String>,

    /// Chat: messages the sender sends.
    #[arg(long, value_name = "N", default_value_t = 100, requires = "chat",
          value_parser = clap::value_parser!(u32).range(1..=MAX_CHAT_MESSAGES))]
    pub chat_messages: u32,

    /// Chat: messages per second from the sender (default: as fast as the window
    /// allows).
    #[arg(long, value_name = "PER_SEC", value_parser = parse_rate, requires = "chat")]
    pub chat_rate: Option<f64>,

    /// Chat: messages sent but not yet received by every member, at most. Bounds the
    /// server's queue per member to this many frames.
    #[arg(long, value_name = "N", default_value_t = 16, requires = "chat",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub chat_window: u32,

    /// Bytes in each echo message (chat: in each message, at least 16).
    #[arg(long, value_name = "BYTES", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_MESSAGE)))]
    pub message_size: u32,

    /// Seconds from connect start to a verified 101.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_timeout)]
    pub connect_timeout: Duration,

    /// Seconds an echo may take to come back (chat: a message to reach every member).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_timeout)]
    pub echo_timeout: Duration,

    /// Seconds the server has to answer our Close and close the connection.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_timeout)]
    pub close_timeout: Duration,

    /// Connection attempts (connect start to verified echo), and later closes, in flight
    /// at most over all processes: keeps the server's accept queue from overflowing into
    /// SYN retries, and a mass close from running into close timeouts.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_pending: u32,

    /// Closed-loop echo: every connection keeps W messages of --message-size in flight
    /// and sends a new one as each echo returns (each checked byte for byte), for
    /// --warmup and then --duration; reports echoes/s, MB/s and round trips over the
    /// measured --duration (no --hold). Runs in one process.
    #[arg(long, value_name = "W", group = "workload",
          value_parser = clap::value_parser!(u32).range(1..=4096),
          conflicts_with_all = ["chat", "hold", "echo_every"])]
    pub echo_window: Option<u32>,

    /// Churn: every one of --connections slots loops connect, handshake, one echo, clean
    /// close, for --warmup and then --duration; reports cycles (handshakes) per second
    /// and handshake latency over the measured --duration. Runs in one process.
    #[arg(long, group = "workload", conflicts_with_all = ["chat", "hold", "echo_every"])]
    pub churn: bool,

    /// Workload: seconds measured, after the warm-up [default: 5].
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, requires = "workload")]
    pub duration: Option<Duration>,

    /// Workload: seconds of load before the measured window (connections are open
    /// and the load runs; nothing counts yet) [default: 1].
    #[arg(long, value_name = "SECS", value_parser = parse_secs, requires = "workload")]
    pub warmup: Option<Duration>,

    /// Workload: also report this server process's CPU time (utime + stime, with its
    /// descendants') over the measured window, per operation.
    #[arg(long, value_name = "PID", requires = "workload")]
    pub server_pid: Option<u32>,

    /// The handshake latency the ramp steers under: each process lets fewer attempts be
    /// in flight (down to an eighth of its share of --max-pending) while more than one
    /// handshake in ten takes longer, and more again while none does. 0 = a fixed
    /// --max-pending.
    #[arg(long, value_name = "SECS", default_value = "0.05", value_parser = parse_secs)]
    pub ramp_target: Duration,

    /// Write what happened in each second (connections, handshakes, echoes, latency
    /// p50/p99, failures, load CPU), merged over every process, to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,

    /// Internal: run as worker K of P of a multi-process run (the parent's command line
    /// with this appended, so every other setting is the parent's).
    #[arg(long, value_name = "K/P", hide = true)]
    pub worker: Option<WorkerSlot>,
}

impl LoadArgs {
    /// The request path of every upgrade: the chat room's, or `--path`.
    pub fn request_path(&self) -> String {
        match &self.chat {
            Some(room) => format!("{CHAT_PATH}?room={room}"),
            None => self.path.clone(),
        }
    }
}

/// A duration in seconds with millisecond resolution, from 0 to a day.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=MAX_SECS).contains(&secs) {
        return Err(format!("{s} s is out of range (0 to {MAX_SECS})"));
    }
    Ok(Duration::from_millis((secs * 1000.0).round() as u64))
}

/// Like [`parse_secs`], but at least a millisecond.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_secs(s)?;
    if d.is_zero() {
        return Err("a timeout must be at least 0.001 s".to_owned());
    }
    Ok(d)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e9 => Ok(r),
        _ => Err(format!("{s:?}: want a positive rate per second")),
    }
}

/// A room name the server accepts (the rule both share, [`RoomName`]).
fn parse_room(s: &str) -> Result<String, String> {
    match RoomName::parse(s) {
        Some(room) => Ok(room.as_str().to_owned()),
        None => Err(format!(
            "{s:?}: want 1 to {} letters, digits, '-', '.', '_' or '~'",
            RoomName::MAX_LEN
        )),
    }
}

/// An origin-form request target: `/`, then visible ASCII only (no room for a header
/// injection through CR/LF or spaces).
fn parse_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && s.len() <= 2048 && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?}: want a path starting with / (visible ASCII, no spaces)"
        ))
    }
}

/// Runs `wsreactor load`; the exit status says whether every connection was
/// established and verified (0), not (1), the run was interrupted (130), or the
/// arguments or environment were unusable (2).
pub fn run(args: LoadArgs) -> ExitCode {
    match try_run(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("wsreactor load: {msg}");
            ExitCode::from(2)
        }
    }
}

fn try_run(args: LoadArgs) -> Result<ExitCode, String> {
    addr::check_target(args.addr)?;
    let ports = limits::port_range()
        .unwrap_or(limits::PortRange::LINUX_DEFAULT)
        .count;
    let sources = addr::sources_for(args.addr, args.sources, args.connections, ports)?;
    let nofile = limits::raise_nofile().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    if let Some(slot) = args.worker {
        return Ok(worker::run(driver_config(&args, sources, slot, true)));
    }
    // The soft limit, now raised to the hard one: what every process of the run gets.
    let procs = plan::process_count(args.procs, args.connections, nofile.soft);
    if args.chat.is_some() {
        check_chat(&args, procs, nofile.soft)?;
    }
    if let Some(w) = workload::config(&args) {
        workload::check(&w, procs, nofile.soft)?;
    }
    preflight(&args, sources, procs, nofile, ports);

    let started = Instant::now();
    let stop = signals::stop_flag(Again::Exits).map_err(|e| format!("signal handlers: {e}"))?;
    let mut tally = Tally::new(procs as usize, started);
    if let Some(path) = &args.timeline {
        let timeline = timeline::Timeline::create(path, procs as usize, timeline::unix_ms())
            .map_err(|e| format!("--timeline {}: {e}", path.display()))?;
        tally.timeline = Some(timeline);
    }
    let mut progress = Progress::new(args.json, u64::from(args.connections));
    let mut error = None;
    if procs == 1 {
        if let Some(t) = &mut tally.timeline {
            t.started(0, timeline::unix_ms());
        }
        let cfg = driver_config(&args, sources, WorkerSlot { index: 0, count: 1 }, false);
        if let Err(e) = run_here(cfg, &stop, &mut tally, &mut progress) {
            error = Some(e);
        }
    } else {
        error = procs::run(procs, args.close_timeout, &stop, &mut tally, &mut progress).error;
    }
    progress.finish();
    if let Some(t) = &mut tally.timeline {
        t.finish();
    }
    let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed);
    let report = tally.report(RunInfo {
        target: args.addr.to_string(),
        path: args.request_path(),
        requested: u64::from(args.connections),
        processes: procs,
        sources: sources.map(|s| s.to_string()),
        source_count: sources.map_or(0, |s| s.len()),
        elapsed: started.elapsed(),
        interrupted,
        chat: args.chat.as_ref().map(|room| ChatInfo {
            room: room.clone(),
            window: args.chat_window,
            rate: args.chat_rate,
        }),
    });
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(e) = error {
        eprintln!("wsreactor load: {e}");
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the whole load in this process (no workers, no barrier).
fn run_here(
    cfg: DriverConfig,
    stop: &Arc<AtomicBool>,
    tally: &mut Tally,
    progress: &mut Progress,
) -> Result<(), String> {
    let control = Control {
        stop: Arc::clone(stop),
        go: Arc::new(AtomicBool::new(true)),
    };
    let driver = Driver::new(cfg).map_err(|e| format!("poll: {e}"))?;
    let fin = driver
        .run(&control, &mut |msg| {
            tally.on_msg(0, msg);
            progress.update(&tally.totals());
            true
        })
        .map_err(|e| format!("poll: {e}"))?;
    tally.on_msg(0, WorkerMsg::Final(Box::new(fin)));
    Ok(())
}

/// Refuses a chat run that cannot work: more than one process (the window needs every
/// member in one), or messages too short for their header.
fn check_chat(args: &LoadArgs, procs: u32, nofile: u64) -> Result<(), String> {
    if procs > 1 {
        return Err(format!(
            "--chat runs in one process: at most {} connections here (RLIMIT_NOFILE \
             {nofile}), and --procs 1",
            sizing::per_process(nofile)
        ));
    }
    if (args.message_size as usize) < chat::HEADER_LEN {
        return Err(format!(
            "--chat needs --message-size of at least {} bytes (sequence number and time)",
            chat::HEADER_LEN
        ));
    }
    Ok(())
}

/// Warns about limits the run will hit before it hits them.
fn preflight(
    args: &LoadArgs,
    sources: Option<SourceRange>,
    procs: u32,
    nofile: limits::NofileLimit,
    ports: u64,
) {
    let per_process = u64::from(args.connections).div_ceil(u64::from(procs));
    if per_process > sizing::per_process(nofile.soft) {
        log::warn!(
            "{per_process} connections per process but RLIMIT_NOFILE is {}: expect \
             fd_limit failures (use --procs auto)",
            nofile.soft
        );
    }
    let per_source = match sources {
        Some(range) => range.max_per_source(u64::from(args.connections)),
        None => u64::from(args.connections),
    };
    if per_source > ports {
        log::warn!(
            "{per_source} connections per source address but only {ports} ephemeral \
             ports per destination: expect ports_exhausted (widen --sources)"
        );
    } else if per_source > sizing::per_source_limit(ports) {
        log::warn!(
            "{per_source} connections per source address fill over a quarter of the {ports} \
             ephemeral ports: connects will cost more kernel CPU (widen --sources)"
        );
    }
}

/// The driver settings of worker `slot` (or of the single in-process run).
fn driver_config(
    args: &LoadArgs,
    sources: Option<SourceRange>,
    slot: WorkerSlot,
    wait_for_go: bool,
) -> DriverConfig {
    let ms = |d: Duration| d.as_millis().min(u128::from(u32::MAX - 1)) as u32;
    let chat = args.chat.as_ref().map(|_| chat::ChatConfig {
        messages: args.chat_messages,
        rate: args.chat_rate,
        window: args.chat_window,
    });
    // The sender may have a whole window of messages unsent when the server is slow to
    // read; a member only ever sends pongs and the Close. So may an echo window.
    let frame = args.message_size as usize + 14;
    let window = chat
        .as_ref()
        .map_or(args.echo_window.unwrap_or(1), |c| c.window);
    let unsent = frame * window as usize;
    let workload = workload::config(args);
    DriverConfig {
        target: args.addr,
        sources,
        share: plan::share(args.connections, args.rate, args.max_pending, slot),
        hold: workload
            .as_ref()
            .map_or(args.hold, |w| w.warmup + w.duration),
        conn: env::ConnConfig {
            host: args.addr.to_string(),
            path: args.request_path(),
            message_size: args.message_size,
            connect_timeout_ms: ms(args.connect_timeout),
            echo_timeout_ms: ms(args.echo_timeout),
            close_timeout_ms: ms(args.close_timeout),
            echo_every_ms: ms(args.echo_every),
            // No size limit here: a message larger than the echo fails the byte-for-byte
            // check at its first excess chunk, and nothing is ever buffered whole.
            receiver: ReceiverConfig {
                role: Role::Client,
                max_message_size: u64::MAX >> 1,
            },
            max_spill: unsent + 64 * 1024,
            chat,
            workload,
        },
        wait_for_go,
        progress_every: Duration::from_millis(if wait_for_go { 500 } else { 250 }),
        timeline: args.timeline.is_some(),
        ramp_target: args.ramp_target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied())).map(|c| c.load)
    }

    #[test]
    fn defaults_are_sane() {
        let a = parse(&["--addr", "127.0.0.1:9001", "--connections", "10"]).unwrap();
        assert_eq!(a.procs, Procs::Auto);
        assert_eq!(a.hold, Duration::from_secs(10));
        assert_eq!(a.echo_every, Duration::ZERO);
        assert_eq!(
            (a.path.as_str(), a.message_size, a.max_pending),
            ("/", 32, 1000)
        );
        assert_eq!(
            (a.rate, a.sources, a.worker, a.json),
            (None, None, None, false)
        );
    }

    #[test]
    fn a_worker_command_line_is_the_parents_with_its_slot_appended() {
        let parent = [
            "--addr",
            "127.0.0.1:9001",
            "--connections",
            "5000",
            "--sources",
            "127.0.0.3-127.0.0.9",
            "--procs",
            "3",
            "--rate",
            "1234.5",
            "--hold",
            "2.5",
            "--json",
            "--message-size",
            "77",
        ];
        let a = parse(&parent).unwrap();
        let slot = WorkerSlot { index: 2, count: 3 };
        let worker: Vec<&str> = parent.iter().copied().chain(["--worker", "2/3"]).collect();
        let back = parse(&worker).unwrap();
        assert_eq!(
            back,
            LoadArgs {
                worker: Some(slot),
                ..a
            }
        );
    }

    #[test]
    fn bad_values_are_refused_at_parse_time() {
        let base = ["--addr", "127.0.0.1:9001", "--connections", "10"];
        for extra in [
            &["--hold", "-1"][..],
            &["--hold", "1e9"],
            &["--rate", "0"],
            &["--rate", "inf"],
            &["--path", "no-slash"],
            &["--path", "/a b"],
            &["--message-size", "0"],
            &["--connect-timeout", "0"],
            &["--procs", "0"],
            &["--sources", "10.0.0.1-10.0.0.2"],
        ] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            assert!(parse(&args).is_err(), "{extra:?}");
        }
        assert!(parse(&["--addr", "127.0.0.1:9001", "--connections", "0"]).is_err());
    }

    #[test]
    fn chat_options_go_together() {
        let base = ["--addr", "127.0.0.1:9001", "--connections", "10"];
        let with = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            parse(&args)
        };
        let a = with(&["--chat", "room-1"]).unwrap();
        assert_eq!(a.request_path(), "/chat?room=room-1");
        assert_eq!(
            (a.chat_messages, a.chat_window, a.chat_rate),
            (100, 16, None)
        );
        for extra in [
            &["--chat", "x", "--path", "/y"][..],
            &["--chat", "x", "--hold", "1"],
            &["--chat", "x", "--echo-every", "1"],
            &["--chat-messages", "5"],
            &["--chat-rate", "5"],
            &["--chat-window", "5"],
            &["--chat", "a b"],
            &["--chat", ""],
            &["--chat", "x", "--chat-messages", "0"],
            &["--chat", "x", "--chat-window", "0"],
        ] {
            assert!(with(extra).is_err(), "{extra:?}");
        }
    }

    #[test]
    fn chat_runs_that_cannot_work_are_refused_before_any_socket() {
        let chat = [
            "--addr",
            "127.0.0.1:9",
            "--connections",
            "10",
            "--chat",
            "x",
        ];
        let run = |extra: &[&str]| {
            let args: Vec<&str> = chat.iter().chain(extra).copied().collect();
            try_run(parse(&args).unwrap()).unwrap_err()
        };
        assert!(run(&["--procs", "2"]).contains("one process"));
        assert!(run(&["--message-size", "15"]).contains("at least 16"));
    }

    #[test]
    fn non_loopback_targets_fail_before_any_socket() {
        let a = parse(&["--addr", "10.1.2.3:80", "--connections", "1"]).unwrap();
        let err = try_run(a).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }
}
