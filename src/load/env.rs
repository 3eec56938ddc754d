//! What every connection of one load process shares: the settings they follow, the
//! clock the driver sets, the scratch buffer frames are built in, the measurements.

use hdrhistogram::Histogram;

use super::chat::{ChatConfig, Room};
use super::pacing::Window;
use super::rng::Rng;
use super::timeline::Recorder;
use super::wire::{new_histogram, Counters};
use super::workload::{Workload, WorkloadConfig};
use crate::protocol::receiver::ReceiverConfig;

/// A deadline that never comes.
pub const NEVER: u32 = u32::MAX;

/// What every connection of a process shares: settings, clock, scratch, measurements.
pub struct Env {
    pub cfg: ConnConfig,
    /// Microseconds since the driver started; set by the driver before each call.
    pub now_us: u64,
    pub rng: Rng,
    /// Scratch for one outgoing frame (reused; never per connection).
    pub out: Vec<u8>,
    pub stats: Stats,
    /// Chat mode: the room every connection joins.
    pub chat: Option<Room>,
    /// Echo window or churn: the workload and its measured window.
    pub workload: Option<Workload>,
    /// How many attempts may be in flight; handshake latencies steer it.
    pub ramp: Window,
}

impl Env {
    pub fn new(cfg: ConnConfig, sources: usize, ramp: Window) -> Env {
        let mut rng = Rng::from_os();
        Env {
            out: Vec::with_capacity(cfg.message_size as usize + 14),
            chat: cfg.chat.clone().map(|c| Room::new(c, rng.next_u32())),
            workload: cfg.workload.clone().map(Workload::new),
            ramp,
            cfg,
            now_us: 0,
            rng,
            stats: Stats {
                counters: Counters::default(),
                handshake_us: new_histogram(),
                echo_rtt_us: new_histogram(),
                hold_us: None,
                hold_echo_rtt_us: new_histogram(),
                per_source: vec![0; sources],
                timeline: None,
            },
        }
    }

    /// Milliseconds since the driver started (fits `u32` for 49 days).
    pub fn now_ms(&self) -> u32 {
        (self.now_us / 1000).min(u64::from(NEVER - 1)) as u32
    }

    /// The clock in wrapping microseconds: differences are right for spans under 71
    /// minutes, and every timed span here is bounded by a timeout far below that.
    pub fn now_us32(&self) -> u32 {
        self.now_us as u32
    }

    pub(super) fn after_ms(&self, ms: u32) -> u32 {
        self.now_ms().saturating_add(ms).min(NEVER - 1)
    }
}

/// Settings every connection of a process follows.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// The `Host` header value (the target address as given).
    pub host: String,
    pub path: String,
    /// Bytes of each echo payload (chat: of each message).
    pub message_size: u32,
    /// Connect start → 101 received.
    pub connect_timeout_ms: u32,
    /// Echo sent → echo back (chat: a message sent → received by every member).
    pub echo_timeout_ms: u32,
    /// Our Close sent → server's Close and EOF.
    pub close_timeout_ms: u32,
    /// Periodic echo interval; 0 sends only the verification echo.
    pub echo_every_ms: u32,
    pub receiver: ReceiverConfig,
    /// The most unsent output a connection may hold before it counts as stalled.
    pub max_spill: usize,
    /// Chat mode instead of echoes.
    pub chat: Option<ChatConfig>,
    /// A workload (echo window or churn) instead of holding.
    pub workload: Option<WorkloadConfig>,
}

/// What a process measures; sent to the parent at the end.
pub struct Stats {
    pub counters: Counters,
    pub handshake_us: Histogram<u64>,
    pub echo_rtt_us: Histogram<u64>,
    /// The hold (every connection open), as microseconds since the driver started: from
    /// its start to the drain (`u64::MAX` until then). Echoes *sent* in it are the
    /// steady state, apart from the ramp's verification echoes and the closes' queue;
    /// by send time, so a slow echo answered after the hold still counts.
    pub hold_us: Option<(u64, u64)>,
    pub hold_echo_rtt_us: Histogram<u64>,
    /// Established connections per source index.
    pub per_source: Vec<u64>,
    /// With `--timeline`: the second under way.
    pub timeline: Option<Box<Recorder>>,
}

impl Stats {
    /// A handshake's latency (connect start → 101 verified), for the run and its second.
    pub fn record_handshake(&mut self, us: u64) {
        self.handshake_us.saturating_record(us);
        if let Some(t) = &mut self.timeline {
            t.handshake_us.saturating_record(us);
        }
    }

    /// An echo's round trip, returned at `now_us`, for the run and its second.
    pub fn record_echo(&mut self, us: u64, now_us: u64) {
        self.echo_rtt_us.saturating_record(us);
        let sent = now_us.saturating_sub(us);
        if matches!(self.hold_us, Some((start, end)) if (start..end).contains(&sent)) {
            self.hold_echo_rtt_us.saturating_record(us);
        }
        if let Some(t) = &mut self.timeline {
            t.echo_rtt_us.saturating_record(us);
        }
    }
}
