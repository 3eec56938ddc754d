//! Reactor counters: what `/stats` returns, what the status line prints, and what a
//! worker reports to its supervisor (which adds them up with [`Stats::merge`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::close::CloseCode;
use crate::protocol::handshake::Refusal;
use crate::protocol::server::Timeout;

/// Counters of one reactor process. Gauges go up and down; totals only up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Sockets held now, in any phase (gauge).
    pub connections: u64,
    /// WebSocket connections past the handshake and not yet closing (gauge).
    pub websockets: u64,
    /// Chat rooms with at least one member (gauge).
    pub rooms: u64,
    /// Connections accepted.
    pub accepted_total: u64,
    /// Successful opening handshakes (101).
    pub handshakes_total: u64,
    /// Refused upgrades and other requests answered with an error status, by reason
    /// (the names of `HttpError`, `HandshakeError`, plus `timeout` and `over_capacity`).
    pub handshake_failures: BTreeMap<String, u64>,
    /// Plain HTTP answers: pages, /stats and every refusal.
    pub http_responses_total: u64,
    /// Whole data messages received from clients.
    pub messages_in_total: u64,
    /// Data messages sent: echoes count once per message, chat deliveries once per member.
    pub messages_out_total: u64,
    /// Bytes read from clients.
    pub bytes_in_total: u64,
    /// Bytes written to clients.
    pub bytes_out_total: u64,
    /// How WebSocket connections ended, by the close code the server sent in its Close
    /// frame (a reply or its own), and `1006` for those that ended without one (the
    /// peer vanished, an IO error, a send timeout or a slow chat member dropped).
    pub closes_by_code: BTreeMap<u16, u64>,
    /// Connections failed with a close code for a protocol violation.
    pub protocol_errors_total: u64,
    /// Connections ended by a deadline: handshake, idle, close or send timeout.
    pub timeouts_total: u64,
    /// Chat members dropped because their unsent output passed the slow-member limit.
    pub slow_members_dropped_total: u64,
    /// Connections dropped because the process was over its memory budget.
    pub memory_shed_total: u64,
    /// accept() failures for lack of descriptors (EMFILE/ENFILE).
    pub accept_emfile_total: u64,
    /// Connections shed without service: over --max-connections or out of descriptors.
    pub shed_total: u64,
    /// Connections the server ended early to make room for a newcomer, by reason
    /// (`request_head`: every descriptor was taken, and this one had waited longest
    /// for its request head).
    pub evictions: BTreeMap<String, u64>,
    /// The process's resident set size when these counters were read (bytes).
    pub rss_bytes: u64,
    /// Processes whose pub/sub bus (Redis, or the workers' mesh) is connected (gauge).
    #[serde(default)]
    pub pubsub_up: u64,
    /// Bytes queued for the bus and not yet sent (gauge).
    #[serde(default)]
    pub pubsub_queued_bytes: u64,
    /// Chat messages published to the bus.
    #[serde(default)]
    pub pubsub_published_total: u64,
    /// Chat messages from other processes received from the bus.
    #[serde(default)]
    pub pubsub_received_total: u64,
    /// Chat messages that could not be published (bus down, or its queue full): local
    /// members got them, members elsewhere did not.
    #[serde(default)]
    pub pubsub_unpublished_total: u64,
    /// Times the bus connected again after losing Redis.
    #[serde(default)]
    pub pubsub_reconnects_total: u64,
}

impl Stats {
    /// Counts a failed handshake under `reason` (see `handshake_failures`).
    pub fn handshake_failed(&mut self, reason: &str) {
        bump(&mut self.handshake_failures, reason);
    }

    /// An HTTP error answer was sent.
    pub fn refused(&mut self, refusal: &Refusal) {
        self.http_responses_total += 1;
        self.handshake_failed(refusal.name);
    }

    /// A deadline came due (see `ServerConnection::handle_timeout` for what each one does).
    pub fn timed_out(&mut self, timeout: Timeout) {
        match timeout {
            Timeout::Ping => return,
            Timeout::Handshake => self.refused(&Refusal::TIMEOUT),
            Timeout::Idle => self.closed_with(CloseCode::GOING_AWAY.0),
            Timeout::Send | Timeout::Close => {}
        }
        self.timeouts_total += 1;
    }

    /// A connection was ended early to make room (see [`Stats::evictions`]).
    pub fn evicted(&mut self, reason: &str) {
        bump(&mut self.evictions, reason);
    }

    /// Counts a connection that ended with close code `code`.
    pub fn closed_with(&mut self, code: u16) {
        *self.closes_by_code.entry(code).or_default() += 1;
    }

    /// Adds another process's counters to these (the supervisor's aggregate).
    pub fn merge(&mut self, other: &Stats) {
        // Destructured so that a new counter cannot be forgotten here.
        let Stats {
            connections,
            websockets,
            rooms,
            accepted_total,
            handshakes_total,
            handshake_failures,
            http_responses_total,
            messages_in_total,
            messages_out_total,
            bytes_in_total,
            bytes_out_total,
            closes_by_code,
            protocol_errors_total,
            timeouts_total,
            slow_members_dropped_total,
            memory_shed_total,
            accept_emfile_total,
            shed_total,
            evictions,
            rss_bytes,
            pubsub_up,
            pubsub_queued_bytes,
            pubsub_published_total,
            pubsub_received_total,
            pubsub_unpublished_total,
            pubsub_reconnects_total,
        } = other;
        self.connections += connections;
        self.websockets += websockets;
        self.rooms += rooms;
        self.accepted_total += accepted_total;
        self.handshakes_total += handshakes_total;
        for (reason, n) in handshake_failures {
            *self.handshake_failures.entry(reason.clone()).or_default() += n;
        }
        self.http_responses_total += http_responses_total;
        self.messages_in_total += messages_in_total;
        self.messages_out_total += messages_out_total;
        self.bytes_in_total += bytes_in_total;
        self.bytes_out_total += bytes_out_total;
        for (code, n) in closes_by_code {
            *self.closes_by_code.entry(*code).or_default() += n;
        }
        self.protocol_errors_total += protocol_errors_total;
        self.timeouts_total += timeouts_total;
        self.slow_members_dropped_total += slow_members_dropped_total;
        self.memory_shed_total += memory_shed_total;
        self.accept_emfile_total += accept_emfile_total;
        self.shed_total += shed_total;
        for (reason, n) in evictions {
            *self.evictions.entry(reason.clone()).or_default() += n;
        }
        self.rss_bytes += rss_bytes;
        self.pubsub_up += pubsub_up;
        self.pubsub_queued_bytes += pubsub_queued_bytes;
        self.pubsub_published_total += pubsub_published_total;
        self.pubsub_received_total += pubsub_received_total;
        self.pubsub_unpublished_total += pubsub_unpublished_total;
        self.pubsub_reconnects_total += pubsub_reconnects_total;
    }

    /// These counters without the gauges: what a worker that has exited leaves to the
    /// server's totals (its connections, rooms and memory went with it).
    pub fn totals_only(&self) -> Stats {
        // Every field named, so that a new one is sorted into gauge or total here.
        let Stats {
            connections: _,
            websockets: _,
            rooms: _,
            accepted_total,
            handshakes_total,
            handshake_failures,
            http_responses_total,
            messages_in_total,
            messages_out_total,
            bytes_in_total,
            bytes_out_total,
            closes_by_code,
            protocol_errors_total,
            timeouts_total,
            slow_members_dropped_total,
            memory_shed_total,
            accept_emfile_total,
            shed_total,
            evictions,
            rss_bytes: _,
            pubsub_up: _,
            pubsub_queued_bytes: _,
            pubsub_published_total,
            pubsub_received_total,
            pubsub_unpublished_total,
            pubsub_reconnects_total,
        } = self;
        Stats {
            connections: 0,
            websockets: 0,
            rooms: 0,
            accepted_total: *accepted_total,
            handshakes_total: *handshakes_total,
            handshake_failures: handshake_failures.clone(),
            http_responses_total: *http_responses_total,
            messages_in_total: *messages_in_total,
            messages_out_total: *messages_out_total,
            bytes_in_total: *bytes_in_total,
            bytes_out_total: *bytes_out_total,
            closes_by_code: closes_by_code.clone(),
            protocol_errors_total: *protocol_errors_total,
            timeouts_total: *timeouts_total,
            slow_members_dropped_total: *slow_members_dropped_total,
            memory_shed_total: *memory_shed_total,
            accept_emfile_total: *accept_emfile_total,
            shed_total: *shed_total,
            evictions: evictions.clone(),
            rss_bytes: 0,
            pubsub_up: 0,
            pubsub_queued_bytes: 0,
            pubsub_published_total: *pubsub_published_total,
            pubsub_received_total: *pubsub_received_total,
            pubsub_unpublished_total: *pubsub_unpublished_total,
            pubsub_reconnects_total: *pubsub_reconnects_total,
        }
    }

    /// The one-line summary logged every `--stats-interval` seconds.
    pub fn status_line(&self) -> String {
        let failed: u64 = self.handshake_failures.values().sum();
        let mut line = format!(
            "{} connections ({} websocket, {} rooms) | {} handshakes, {failed} refused | \
             {} messages in, {} out | {} MiB rss",
            self.connections,
            self.websockets,
            self.rooms,
            self.handshakes_total,
            self.messages_in_total,
            self.messages_out_total,
            self.rss_bytes >> 20
        );
        if self.accept_emfile_total > 0 {
            line += &format!(" | {} EMFILE", self.accept_emfile_total);
        }
        line
    }
}

/// Counts one more under `key`, allocating the key only the first time it is seen.
fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// The resident set size of this process in bytes, from /proc/self/statm (Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * crate::limits::page_size()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_counter_and_breakdown() {
        let mut a = Stats {
            connections: 2,
            handshakes_total: 5,
            rss_bytes: 100,
            ..Stats::default()
        };
        a.handshake_failed("timeout");
        a.closed_with(1000);
        let mut b = a.clone();
        b.handshake_failed("not_found");
        b.closed_with(1001);
        a.merge(&b);
        assert_eq!(a.connections, 4);
        assert_eq!(a.handshakes_total, 10);
        assert_eq!(a.rss_bytes, 200);
        assert_eq!(a.handshake_failures["timeout"], 2);
        assert_eq!(a.handshake_failures["not_found"], 1);
        assert_eq!(a.closes_by_code[&1000], 2);
        assert_eq!(a.closes_by_code[&1001], 1);
    }

    #[test]
    fn totals_only_drops_the_gauges_and_keeps_the_rest() {
        let mut a = Stats {
            connections: 3,
            websockets: 2,
            rooms: 1,
            rss_bytes: 4096,
            accepted_total: 9,
            bytes_out_total: 77,
            ..Stats::default()
        };
        a.closed_with(1000);
        a.handshake_failed("timeout");
        let kept = a.totals_only();
        assert_eq!(
            (
                kept.connections,
                kept.websockets,
                kept.rooms,
                kept.rss_bytes
            ),
            (0, 0, 0, 0)
        );
        let gauges = Stats {
            connections: 3,
            websockets: 2,
            rooms: 1,
            rss_bytes: 4096,
            ..kept
        };
        assert_eq!(gauges, a);
    }

    #[test]
    fn stats_survive_the_trip_to_the_supervisor() {
        let mut a = Stats {
            messages_out_total: 7,
            ..Stats::default()
        };
        a.closed_with(1006);
        a.handshake_failed("origin_forbidden");
        let line = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Stats>(&line).unwrap(), a);
    }
}
