//! The arguments of `wsreactor load` ([`LoadArgs`]): every flag, its default and its
//! value check, so a bad value is refused before anything starts. The flag names are a
//! contract (scripts and tests use them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::process::addr::SourceRange;
use super::process::hosts::LoadHost;
use super::process::plan::{Procs, WorkerSlot};
use super::process::Payload;
use crate::chat_route::{RoomName, CHAT_PATH};
use crate::protocol::deflate::Offer;

/// The longest time any duration flag may ask for (a day): runs stay bounded.
const MAX_SECS: f64 = 86_400.0;
/// The largest echo payload.
const MAX_MESSAGE: u32 = 1 << 20;
/// The most warm-up bytes a connection sends (`--warmup-bytes`).
const MAX_WARMUP: u32 = 64 << 20;
/// The most messages a chat run sends (a sequence number is 8 hex digits; a billion
/// messages is days of fan-out anyway).
const MAX_CHAT_MESSAGES: i64 = 1_000_000_000;

/// Arguments of `wsreactor load`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct LoadArgs {
    /// Server to load (loopback only: 127.0.0.0/8 or ::1; with --hosts, any address
    /// they reach).
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

    /// More servers: connection i goes to the (i mod n)-th of --addr and these, so one
    /// chat room spreads over several servers (the sender, the first connection, is on
    /// --addr's). The same address rule as --addr.
    #[arg(long, value_name = "ADDR:PORT,...", value_delimiter = ',')]
    pub also_addr: Vec<SocketAddr>,

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
    #[arg(long, value_name = "BYTES", default_value = "32", value_parser = parse_message_size)]
    pub message_size: u32,

    /// What echo payloads are made of: printable ASCII of 6 random bits a byte, text
    /// that deflate compresses several-fold, or random bytes it cannot (always Binary).
    #[arg(long, value_enum, default_value_t = Payload::Ascii, conflicts_with = "chat")]
    pub payload: Payload,

    /// permessage-deflate (RFC 7692): every connection offers it with no context
    /// takeover either way, compresses every message it sends and inflates and checks
    /// every compressed echo, with one compressor and decompressor per process. A server
    /// that declines it fails the connection (`deflate_declined`).
    #[arg(long, conflicts_with = "chat")]
    pub deflate: bool,

    /// permessage-deflate with context takeover both ways (implies `--deflate`): every
    /// connection offers `client_max_window_bits` and `server_max_window_bits` of BITS
    /// (9 to 15, RFC 7692 §7.1.2), compresses after its own last 2^BITS bytes sent and
    /// inflates after the server's, each kept per connection by the process's codec
    /// (2 windows a connection: 1 KiB at 9 bits); a direction the server answers with
    /// `*_no_context_takeover` keeps none.
    #[arg(long, value_name = "BITS", value_parser = clap::value_parser!(u8).range(9..=15),
          conflicts_with = "chat")]
    pub deflate_window: Option<u8>,

    /// Before its verification echo, every connection echoes this many bytes of text
    /// (compressible, in messages of at most 16 KiB, each checked), as a session that
    /// has talked a while has: a hold's one small echo a minute never fills a deflate
    /// window. Not counted as echoes.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = parse_warmup_bytes,
          conflicts_with = "chat")]
    pub warmup_bytes: u32,

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

    /// wss://: every connection speaks TLS (1.3 or 1.2, rustls with ring) to a server
    /// started with --tls-cert/--tls-key; the certificate must be signed by --ca, or
    /// --insecure accepts any (a self-signed one on loopback). Every handshake is a full
    /// one (no resumption: each connection stands for a client of its own; see
    /// --tls-resume); the handshake latency includes it.
    #[arg(long)]
    pub tls: bool,

    /// --tls: resume sessions: each process keeps the session tickets the server sends
    /// (rustls' in-memory store) and offers one on every new connection, so all but the
    /// first handshakes resume (RFC 8446 §2.2): for measuring resumed handshakes, as
    /// returning clients make them.
    #[arg(long, requires = "tls")]
    pub tls_resume: bool,

    /// --tls: offer only this key exchange group, as rustls names it: X25519, secp256r1,
    /// secp384r1, or X25519MLKEM768 (the post-quantum hybrid: a build with the aws-lc
    /// feature). Default: X25519 first, then secp256r1 and secp384r1.
    #[arg(long, value_name = "GROUP", requires = "tls")]
    pub tls_group: Option<String>,

    /// --tls: the PEM file of the certificate(s) the server's must be signed by (it must
    /// name the target's address, e.g. an IP SAN 127.0.0.1).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls",
        conflicts_with = "insecure"
    )]
    pub ca: Option<PathBuf>,

    /// --tls: accept any certificate (its signatures are still checked): for a
    /// self-signed certificate on loopback, never across a network.
    #[arg(long, requires = "tls")]
    pub insecure: bool,

    /// Write what happened in each second (connections, handshakes, echoes, latency
    /// p50/p99, failures, load CPU), merged over every process, to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,

    /// Run the load from these hosts, not this one: NAME or NAME=A-B (the IPv4 source
    /// addresses bound on that host), comma-separated. Each runs an equal share of the
    /// worker processes (at least one), each started through --remote with this binary's
    /// path and command line (the binary must be at the same path there); their results
    /// and --timeline are merged here, on this host's clock. --addr is then any address
    /// the hosts reach (not only loopback).
    #[arg(
        long,
        value_name = "HOSTS",
        value_delimiter = ',',
        conflicts_with = "sources"
    )]
    pub hosts: Vec<LoadHost>,

    /// --hosts: the command prefix that runs a program on a host; {host} is replaced by
    /// its NAME (e.g. 'ssh {host}', 'ip netns exec wsr-{host}').
    #[arg(
        long,
        value_name = "CMD",
        default_value = "ssh {host}",
        requires = "hosts"
    )]
    pub remote: String,

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

    /// The permessage-deflate offer every connection makes, if any (`--deflate`, or
    /// `--deflate-window`, which implies it).
    pub fn offer(&self) -> Option<Offer> {
        match self.deflate_window {
            Some(bits) => Some(Offer::takeover(bits)),
            None => self.deflate.then_some(Offer::SHARED),
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

/// A message size: bytes, with units if wanted (`64KiB`), from 1 to [`MAX_MESSAGE`].
fn parse_message_size(s: &str) -> Result<u32, String> {
    let bytes = crate::byte_size::parse(s)?;
    match u32::try_from(bytes) {
        Ok(n) if (1..=MAX_MESSAGE).contains(&n) => Ok(n),
        _ => Err(format!("{bytes} is not in 1..={MAX_MESSAGE}")),
    }
}

/// A warm-up size: bytes, with units if wanted (`64KiB`), up to [`MAX_WARMUP`].
fn parse_warmup_bytes(s: &str) -> Result<u32, String> {
    let bytes = crate::byte_size::parse(s)?;
    match u32::try_from(bytes) {
        Ok(n) if n <= MAX_WARMUP => Ok(n),
        _ => Err(format!("{bytes} is not in 0..={MAX_WARMUP}")),
    }
}

/// Like [`parse_secs`], but at least a millisecond.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_secs(s)?;
    if d.is_zero() {
        return Err("a timeout must be at least 0.001 s".to_owned());
    }
    Ok(d)
}

/// A positive, finite rate per second, at most a billion.
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

/// `wsreactor load ARGS` as clap parses it, for tests.
#[cfg(test)]
pub(super) fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }
    Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied())).map(|c| c.load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_size_takes_units_within_its_range() {
        let size = |v: &str| {
            parse(&[
                "--addr",
                "127.0.0.1:9001",
                "--connections",
                "1",
                "--message-size",
                v,
            ])
            .map(|a| a.message_size)
        };
        assert_eq!(size("64KiB").unwrap(), 65536);
        assert_eq!(size("1MiB").unwrap(), MAX_MESSAGE);
        assert!(size("0").is_err());
        assert!(size("2MiB").is_err());
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
    fn deflate_options_parse_and_stay_out_of_chat() {
        let base = ["--addr", "127.0.0.1:9001", "--connections", "10"];
        let with = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            parse(&args)
        };
        let a = with(&[]).unwrap();
        assert_eq!(
            (a.deflate, a.payload, a.warmup_bytes),
            (false, Payload::Ascii, 0)
        );
        let a = with(&[
            "--deflate",
            "--payload",
            "random",
            "--warmup-bytes",
            "64KiB",
        ])
        .unwrap();
        assert_eq!(
            (a.deflate, a.payload, a.warmup_bytes),
            (true, Payload::Random, 65536)
        );
        assert_eq!(a.offer(), Some(Offer::SHARED));
        let a = with(&["--deflate-window", "9"]).unwrap();
        assert_eq!(
            (a.deflate_window, a.offer()),
            (Some(9), Some(Offer::takeover(9)))
        );
        assert_eq!(with(&[]).unwrap().offer(), None);
        for extra in [
            &["--deflate-window", "8"][..],
            &["--deflate-window", "16"],
            &["--chat", "x", "--deflate-window", "9"],
            &["--chat", "x", "--deflate"][..],
            &["--chat", "x", "--payload", "random"],
            &["--chat", "x", "--warmup-bytes", "1"],
            &["--payload", "zeros"],
            &["--warmup-bytes", "65MiB"],
        ] {
            assert!(with(extra).is_err(), "{extra:?}");
        }
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
}
