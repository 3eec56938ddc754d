//! The `serve` options (a CLI contract: tests and scripts rely on their names) and the
//! limits derived from them.

use std::net::SocketAddr;

use clap::Args;

use crate::protocol::deadline::{Timeouts, CLOSE_TIMEOUT_SECS};
use crate::protocol::handshake::Policy;
use crate::protocol::server::ServerConfig;

/// `wsreactor [serve] ...`
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on; port 0 picks an ephemeral port.
    // The last one given wins: a worker runs its supervisor's command line with the
    // resolved address appended.
    #[arg(long, default_value = "127.0.0.1:9001", overrides_with = "listen")]
    pub listen: SocketAddr,

    /// PEM certificate chain, leaf first (e.g. Let's Encrypt's fullchain.pem): the
    /// --listen address then speaks TLS only (wss://, https://). Needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert: PKCS#8, RSA or EC (e.g. privkey.pem).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Seconds between rotations of the session-ticket key every worker shares; a
    /// ticket resumes for one to two of them, then the client makes a full handshake.
    #[arg(long, value_name = "SECS", default_value_t = 6 * 60 * 60,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::tls::tickets::MAX_LIFETIME_SECS / 2)))]
    pub tls_ticket_rotation: u32,

    /// Reactor processes sharing the port through SO_REUSEPORT (1 = this process only).
    #[arg(long, default_value_t = 1)]
    pub workers: u32,

    /// Most open WebSocket connections per process; further handshakes get 503.
    /// Default: bounded only by the descriptor limit.
    #[arg(long)]
    pub max_connections: Option<usize>,

    /// Largest message accepted, summed over fragments; larger ones are closed with 1009.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = crate::byte_size::parse)]
    pub max_message_size: u64,

    /// Largest chat message: a room's messages are gathered whole before they are
    /// relayed, so they get a limit of their own (at most --max-message-size).
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = crate::byte_size::parse)]
    pub chat_max_message_size: u64,

    /// Bytes every connection of a process may hold together (kept input, gathered
    /// chat messages, unsent output); past it, the connections holding the most are
    /// dropped. Default: a quarter of the machine's memory, shared by the workers.
    #[arg(long, value_name = "BYTES", value_parser = crate::byte_size::parse)]
    pub memory_budget: Option<u64>,

    /// Unsent echo that connections in the middle of a message may hold, together,
    /// beyond the 256 KiB at which any other connection pauses reading (a client may
    /// write a whole message before it reads the echo). Once it is taken, every
    /// connection pauses at 256 KiB. Default: four messages of --max-message-size, at
    /// most half the memory budget.
    #[arg(long, value_name = "BYTES", value_parser = crate::byte_size::parse)]
    pub message_pool: Option<u64>,

    /// Seconds a client has to complete its request head (slowloris guard); 408 after.
    #[arg(long, default_value_t = 10)]
    pub handshake_timeout: u32,

    /// Seconds without any frame from the client before closing with 1001 (0 = never).
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u32,

    /// Seconds of silence before the server sends a Ping (0 = never).
    #[arg(long, default_value_t = 30)]
    pub ping_interval: u32,

    /// Seconds a connection may stay paused for backpressure (256 KiB unsent) before
    /// it is dropped, unless it drains below 64 KiB and so resumes (0 = never drop).
    #[arg(long, default_value_t = 30)]
    pub send_timeout: u32,

    /// Seconds open connections get, after SIGINT/SIGTERM, to answer the server's
    /// Close 1001 before the process exits anyway.
    #[arg(long, default_value_t = 5)]
    pub shutdown_timeout: u32,

    /// Seconds between status lines in the log (0 = none).
    #[arg(long, default_value_t = 10)]
    pub stats_interval: u32,

    /// Accept upgrades only from these origins (repeatable; default: any). With a list,
    /// an upgrade without an Origin is refused too (403).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// A subprotocol the server speaks (repeatable): the first one a client offers in
    /// Sec-WebSocket-Protocol that is listed here is selected in the 101.
    #[arg(long = "protocol", value_name = "NAME")]
    pub protocols: Vec<String>,

    /// Accept permessage-deflate (RFC 7692) offers. Without context takeover in either
    /// direction: each process keeps one compressor and one decompressor for all its
    /// connections (about 430 KiB), and an idle connection costs nothing more.
    #[arg(long)]
    pub deflate: bool,

    /// permessage-deflate with context takeover (implies --deflate): each side keeps
    /// the last 2^BITS bytes of what it sent (9 to 15) where the client's offer allows
    /// it, and the server keeps them per connection, priming the shared compressor and
    /// decompressor with them per message (measured at 9 bits: 714 B per echo
    /// connection, 1,260 B when both directions' windows are kept). A client that does
    /// not offer client_max_window_bits is asked to compress without context.
    #[arg(long, value_name = "BITS", value_parser = clap::value_parser!(u8).range(9..=15))]
    pub deflate_window: Option<u8>,

    /// Rooms across workers and hosts through Redis pub/sub (`redis://HOST:PORT`): each
    /// room is the channel `wsreactor:room:NAME`. Without it, the workers of one server
    /// relay rooms to each other over Unix sockets.
    #[arg(long, value_name = "redis://HOST:PORT")]
    pub pubsub: Option<String>,

    /// Set by the supervisor on the workers it starts: this process is worker N.
    #[arg(long, hide = true)]
    pub worker_id: Option<u32>,
}

impl Config {
    /// Bytes the pub/sub bus may queue for other processes (a sixteenth of the memory
    /// budget, between 1 MiB and 64 MiB): counted in the budget; past it, messages are
    /// fanned out locally only, and counted as unpublished.
    pub fn bus_limit(&self) -> usize {
        let limit = (self.memory_budget() / 16).clamp(1 << 20, 64 << 20);
        usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// The certificate and key, when the server speaks TLS.
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }

    /// What `route` needs of the configuration.
    pub fn policy(&self) -> Policy<'_> {
        Policy {
            allowed_origins: &self.allowed_origins,
            protocols: &self.protocols,
            deflate: self.deflates(),
            deflate_window: self.deflate_window,
        }
    }

    /// Whether permessage-deflate offers are accepted (`--deflate`, or
    /// `--deflate-window`, which implies it).
    pub fn deflates(&self) -> bool {
        self.deflate || self.deflate_window.is_some()
    }

    /// The memory budget of one process: `--memory-budget`, or a quarter of the
    /// machine's memory shared by `--workers` processes.
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget.unwrap_or_else(|| {
            let total = crate::limits::mem_total_bytes().unwrap_or(4 << 30);
            total / 4 / u64::from(self.workers.max(1))
        })
    }

    /// The pool for messages in progress of one process: `--message-pool`, or four
    /// messages of the largest size, at most half the memory budget.
    pub fn message_pool(&self) -> u64 {
        self.message_pool.unwrap_or_else(|| {
            self.max_message_size
                .saturating_mul(4)
                .min(self.memory_budget() / 2)
        })
    }

    /// The waits these options allow.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            handshake: self.handshake_timeout,
            idle: self.idle_timeout,
            ping: self.ping_interval,
            send: self.send_timeout,
            close: CLOSE_TIMEOUT_SECS,
        }
    }

    /// What the protocol core needs of these options.
    pub fn server(&self) -> ServerConfig<'_> {
        ServerConfig {
            policy: self.policy(),
            max_message_size: self.max_message_size,
            timeouts: self.timeouts(),
        }
    }

    /// The configuration `serve` gets from these options (tests and the testkit).
    pub fn from_args(args: &[&str]) -> Config {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        Cli::parse_from(std::iter::once("serve").chain(args.iter().copied())).config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_command_line_is_the_supervisors_with_listen_overridden() {
        let supervisor = [
            "--listen=127.0.0.1:0",
            "--workers",
            "3",
            "--protocol",
            "a",
            "--protocol=b",
            "--allowed-origin",
            "http://x",
            "--idle-timeout",
            "7",
        ];
        let worker: Vec<&str> = supervisor
            .iter()
            .copied()
            .chain(["--listen=127.0.0.1:4567", "--worker-id=2"])
            .collect();
        let (s, w) = (Config::from_args(&supervisor), Config::from_args(&worker));
        assert_eq!(w.listen, "127.0.0.1:4567".parse().unwrap());
        assert_eq!((s.worker_id, w.worker_id), (None, Some(2)));
        assert_eq!(
            w.protocols,
            ["a", "b"],
            "repeated options are not overridden"
        );
        assert_eq!(w.allowed_origins, ["http://x"]);
        assert_eq!((w.workers, w.idle_timeout), (3, 7));
    }

    #[test]
    fn byte_flags_take_units() {
        let c = Config::from_args(&["--memory-budget", "256MiB", "--max-message-size=1GiB"]);
        assert_eq!(c.memory_budget(), 256 << 20);
        assert_eq!(c.max_message_size, 1 << 30);
        assert_eq!(c.message_pool(), 128 << 20, "at most half the budget");
        let c = Config::from_args(&["--message-pool", "64 MiB"]);
        assert_eq!((c.message_pool(), c.max_message_size), (64 << 20, 16 << 20));
    }
}
