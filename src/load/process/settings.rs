//! What the parent tells each load process to do: the process's part of the run
//! ([`DriverConfig`]), what every one of its connections follows ([`ConnConfig`]), and
//! chat mode's or a workload's own settings. The parent builds them from the command
//! line; a worker rebuilds the same from the same command line and its slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::addr::SourceRange;
use super::payload::Payload;
use super::plan::Share;
use crate::load::wire::WorkloadMode;
use crate::protocol::deflate::Offer;
use crate::protocol::receiver::ReceiverConfig;

/// What one process runs.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The server to load.
    pub target: SocketAddr,
    /// More servers (`--also-addr`): connections are dealt in turn to `target` and these.
    pub more_targets: Vec<SocketAddr>,
    /// Source addresses (by global connection index); `None` lets the kernel choose.
    pub sources: Option<SourceRange>,
    /// This process's part of the connections, the rate and `--max-pending`.
    pub share: Share,
    /// How long all connections are held open before closing.
    pub hold: Duration,
    /// What every connection follows.
    pub conn: ConnConfig,
    /// Wait for the parent's `go` before the hold starts (the multi-process barrier).
    pub wait_for_go: bool,
    /// How often the counters are reported (`WorkerMsg::Progress`).
    pub progress_every: Duration,
    /// Report every second (`WorkerMsg::Second`, `--timeline`).
    pub timeline: bool,
    /// The handshake latency the ramp cap steers under (`--ramp-target`).
    pub ramp_target: Duration,
}

impl DriverConfig {
    /// The server of the connection with this global index.
    pub fn target_for(&self, connection: u64) -> SocketAddr {
        let n = self.more_targets.len() as u64 + 1;
        match (connection % n) as usize {
            0 => self.target,
            k => self.more_targets[k - 1],
        }
    }
}

/// Settings every connection of a process follows.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// The `Host` header value (the target address as given).
    pub host: String,
    /// The request target of the upgrade (path and query).
    pub path: String,
    /// Bytes of each echo payload (chat: of each message).
    pub message_size: u32,
    /// What echo payloads are made of.
    pub payload: Payload,
    /// Bytes of text each connection echoes before its verification echo.
    pub warmup_bytes: u32,
    /// Connect start → 101 received.
    pub connect_timeout_ms: u32,
    /// Echo sent → echo back (chat: a message sent → received by every member).
    pub echo_timeout_ms: u32,
    /// Our Close sent → server's Close and EOF.
    pub close_timeout_ms: u32,
    /// Periodic echo interval; 0 sends only the verification echo.
    pub echo_every_ms: u32,
    /// How the protocol core receives (the client role, no practical size limit).
    pub receiver: ReceiverConfig,
    /// The permessage-deflate offer (then `receiver.deflate` is set).
    pub deflate: Option<Offer>,
    /// The most unsent output a connection may hold before it counts as stalled.
    pub max_spill: usize,
    /// Chat mode instead of echoes.
    pub chat: Option<ChatConfig>,
    /// A workload (echo window or churn) instead of holding.
    pub workload: Option<WorkloadConfig>,
    /// `--tls`: rustls' client configuration (wss://).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The most bytes in one warm-up message (`--warmup-bytes` goes in messages of this).
const WARMUP_MESSAGE: u32 = 16 * 1024;

impl ConnConfig {
    /// How many echoes a connection's warm-up takes (their sequence numbers come
    /// first: 0 to this, less one).
    pub fn warmup_echoes(&self) -> u32 {
        self.warmup_bytes.div_ceil(WARMUP_MESSAGE)
    }

    /// What echo number `seq` is made of, and its length: a warm-up echo is text, of
    /// at most [`WARMUP_MESSAGE`] bytes; every other echo is `--payload` of
    /// `--message-size`.
    pub fn echo_shape(&self, seq: u32) -> (Payload, u32) {
        if seq < self.warmup_echoes() {
            let left = self.warmup_bytes - seq * WARMUP_MESSAGE;
            (Payload::Compressible, left.min(WARMUP_MESSAGE))
        } else {
            (self.payload, self.message_size)
        }
    }
}

/// Settings of a chat run.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatConfig {
    /// Messages the sender sends.
    pub messages: u32,
    /// Messages per second; `None` sends as fast as the chat window allows.
    pub rate: Option<f64>,
    /// The chat window (`--chat-window`): messages outstanding at most (sent, not yet
    /// received by every member).
    pub chat_window: u32,
}

/// A workload's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Echo or churn.
    pub mode: WorkloadMode,
    /// The echo window (`--echo-window`): messages in flight per connection.
    pub echo_window: u32,
    /// Bytes of each echo payload.
    pub message_size: u32,
    /// Load before the measured period starts (`--warmup`).
    pub warmup: Duration,
    /// The measured period (`--duration`).
    pub duration: Duration,
    /// The server process whose CPU time (with its descendants') is measured.
    pub server_pid: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::receiver::Role;

    #[test]
    fn the_warm_up_comes_first_in_text_messages_of_16_kib_at_most() {
        let mut cfg = ConnConfig {
            host: "h".to_owned(),
            path: "/".to_owned(),
            message_size: 32,
            payload: Payload::Random,
            warmup_bytes: 40_000,
            connect_timeout_ms: 1,
            echo_timeout_ms: 1,
            close_timeout_ms: 1,
            echo_every_ms: 0,
            receiver: ReceiverConfig {
                role: Role::Client,
                max_message_size: 1,
                deflate: true,
            },
            deflate: Some(Offer::SHARED),
            max_spill: 1,
            chat: None,
            workload: None,
            tls: None,
        };
        assert_eq!(cfg.warmup_echoes(), 3);
        let shapes: Vec<_> = (0..5).map(|seq| cfg.echo_shape(seq)).collect();
        let text = Payload::Compressible;
        assert_eq!(
            shapes,
            [
                (text, 16_384),
                (text, 16_384),
                (text, 40_000 - 32_768),
                (Payload::Random, 32),
                (Payload::Random, 32)
            ]
        );
        cfg.warmup_bytes = 0;
        assert_eq!(cfg.warmup_echoes(), 0);
        assert_eq!(cfg.echo_shape(0), (Payload::Random, 32));
    }
}
