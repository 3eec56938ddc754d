//! The counts one load process keeps, and the parent sums: attempts, outcomes, gauges
//! and the failures by reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::failure::Failure;

/// Counts kept by one process (and, summed, by the parent). `open` and `pending` are
/// gauges; everything else only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Connection attempts started (a socket was created, or creating it failed).
    pub attempted: u64,
    /// Handshakes completed: 101 with the right accept value.
    pub established: u64,
    /// Connections whose first echo came back byte for byte.
    pub verified: u64,
    /// Established and not yet ended, now.
    pub open: u64,
    /// Attempted and not yet verified or ended, now.
    pub pending: u64,
    /// Closes we started and still wait on, now.
    pub closing: u64,
    /// Echoes that came back intact (the verification echo included).
    pub echoes: u64,
    /// Chat: messages the sender sent.
    pub chat_sent: u64,
    /// Chat: messages members received whole and intact (one per member per message).
    pub deliveries: u64,
    /// Closes we started that ended with the server's Close and then its EOF.
    pub closed_clean: u64,
    /// Closes we started that the server did not finish within `--close-timeout`.
    pub close_timeout: u64,
    /// Closes we started that ended in EOF without a Close frame, or in an error.
    pub close_unclean: u64,
    /// Connections dropped unfinished because the run was interrupted.
    pub aborted: u64,
    /// permessage-deflate: handshakes that agreed context takeover both ways.
    pub takeover: u64,
    /// Connections that failed, by reason (the sum is [`Counters::failed`]).
    pub failures: BTreeMap<Failure, u64>,
}

impl Counters {
    /// Counts one failed connection.
    pub fn fail(&mut self, why: Failure) {
        *self.failures.entry(why).or_default() += 1;
    }

    /// Failed connections, all reasons together.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Adds another process's counters to these.
    pub fn merge(&mut self, other: &Counters) {
        self.attempted += other.attempted;
        self.established += other.established;
        self.verified += other.verified;
        self.open += other.open;
        self.pending += other.pending;
        self.closing += other.closing;
        self.echoes += other.echoes;
        self.chat_sent += other.chat_sent;
        self.deliveries += other.deliveries;
        self.closed_clean += other.closed_clean;
        self.close_timeout += other.close_timeout;
        self.close_unclean += other.close_unclean;
        self.aborted += other.aborted;
        self.takeover += other.takeover;
        for (why, n) in &other.failures {
            *self.failures.entry(*why).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_merge_and_serialize_with_named_reasons() {
        let mut a = Counters {
            attempted: 3,
            established: 2,
            verified: 2,
            ..Counters::default()
        };
        a.fail(Failure::ConnectRefused);
        let mut b = Counters {
            attempted: 5,
            open: 4,
            ..Counters::default()
        };
        b.fail(Failure::ConnectRefused);
        b.fail(Failure::HandshakeRejected(503));
        a.merge(&b);
        assert_eq!((a.attempted, a.established, a.open), (8, 2, 4));
        assert_eq!(a.failed(), 3);
        assert_eq!(a.failures[&Failure::ConnectRefused], 2);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains(r#""handshake_rejected_503":1"#), "{json}");
        assert_eq!(serde_json::from_str::<Counters>(&json).unwrap(), a);
    }
}
