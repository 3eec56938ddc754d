//! What every connection of one load process shares: the settings they follow, the
//! clock the driver sets, the scratch buffer frames are built in, the chat room or the
//! workload, the ramp cap, TLS's shared state, and the measurements.

use hdrhistogram::Histogram;

use super::chat_progress::Room;
use super::ramp_cap::InFlightCap;
use super::rng::Rng;
use super::seconds::{unix_ms, Recorder};
use super::settings::ConnConfig;
use super::tls::ClientTls;
use super::workload::Workload;
use crate::load::wire::{new_histogram, Counters, Second, WorkerMsg};
use crate::protocol::client::Scratch;
use crate::protocol::deflate::Codec;

/// A deadline that never comes.
pub const NEVER: u32 = u32::MAX;

/// What every connection of a process shares: settings, clock, scratch, measurements.
#[derive(Debug)]
pub struct Env {
    /// What every connection follows.
    pub cfg: ConnConfig,
    /// Microseconds since the driver started; set by the driver before each call.
    pub now_us: u64,
    /// Mask keys, nonces, payload seeds.
    pub rng: Rng,
    /// Scratch for one outgoing frame, and with `--deflate` the process's codec
    /// (reused; never per connection).
    pub out: Scratch,
    /// With `--deflate`: the echo being checked, inflated (reused).
    pub inflated: Vec<u8>,
    /// What the process measures.
    pub stats: Stats,
    /// Chat mode: the room every connection joins.
    pub chat: Option<Room>,
    /// Echo window or churn: the workload and its measured period.
    pub workload: Option<Workload>,
    /// How many attempts may be in flight; handshake latencies steer it.
    pub ramp_cap: InFlightCap,
    /// `--tls`: what every TLS connection shares.
    pub tls: Option<ClientTls>,
}

impl Env {
    /// The shared state of a process whose connections follow `cfg`, spread over
    /// `sources` source addresses, with attempts held under `ramp_cap`.
    pub fn new(cfg: ConnConfig, sources: usize, ramp_cap: InFlightCap) -> Env {
        let mut rng = Rng::from_os();
        Env {
            out: Scratch {
                frame: Vec::with_capacity(cfg.message_size as usize + 14),
                deflate: cfg.receiver.deflate.then(Codec::default),
            },
            inflated: Vec::new(),
            chat: cfg.chat.clone().map(|c| Room::new(c, rng.next_u32())),
            workload: cfg.workload.clone().map(Workload::new),
            ramp_cap,
            tls: cfg
                .tls
                .clone()
                .map(|config| ClientTls::new(config, &cfg.host)),
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

    /// The deadline `ms` from now (never [`NEVER`]).
    pub fn after_ms(&self, ms: u32) -> u32 {
        self.now_ms().saturating_add(ms).min(NEVER - 1)
    }
}

/// What a process measures; sent to the parent at the end.
#[derive(Debug)]
pub struct Stats {
    /// Counts and gauges.
    pub counters: Counters,
    /// Connect start → 101 verified, every connection.
    pub handshake_us: Histogram<u64>,
    /// Every echo's round trip.
    pub echo_rtt_us: Histogram<u64>,
    /// The hold (every connection open), as microseconds since the driver started: from
    /// its start to the drain (`u64::MAX` until then). Echoes *sent* in it are the
    /// steady state, apart from the ramp's verification echoes and the closes' queue;
    /// by send time, so a slow echo answered after the hold still counts.
    pub hold_us: Option<(u64, u64)>,
    /// The round trips of the echoes sent in the hold.
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

    /// Starts recording seconds (`--timeline`; the driver, as its run starts).
    pub fn start_seconds(&mut self) {
        self.timeline = Some(Box::new(Recorder::new(unix_ms(), &self.counters)));
    }

    /// Sends the parent the seconds that have ended (with `last`, the one under way too:
    /// the run is over). Nothing without [`Stats::start_seconds`].
    pub fn send_seconds(&mut self, last: bool, emit: &mut dyn FnMut(WorkerMsg) -> bool) {
        let Some(rec) = &mut self.timeline else {
            return;
        };
        let mut send = |s: Second| emit(WorkerMsg::Second(Box::new(s)));
        rec.roll(unix_ms(), &self.counters, &mut send);
        if last {
            send(rec.finish(&self.counters));
        }
    }
}
