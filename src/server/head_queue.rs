//! The connections still waiting for their request head, oldest first: when every
//! descriptor is taken, the oldest of them gives way to a newcomer, so connections that
//! send half a head and stall (slowloris) cannot lock others out for the handshake
//! timeout, and open WebSockets are never the ones to go.
//!
//! Entries are pushed at accept and go stale as connections finish their head or
//! close; a stale one is skipped when it comes up, and all are swept out whenever the
//! queue has doubled since the last sweep, and its allocation shrinks with it. So the
//! queue stays proportional to the connections still in their head, whatever the accept
//! rate (a ramp of a million connections leaves it as small as it found it), at an
//! amortized constant cost per accept; an entry is 8 bytes.
//!
//! Only a connection accepted before the current accept pass may give way: one admitted
//! in the same pass has had no turn to read its head yet (its request may be waiting,
//! whole, in the kernel), and evicting it would only trade one newcomer for another.

use std::collections::VecDeque;

use mio::Token;

use crate::protocol::deadline::Tick;

/// Entries below which the queue is never swept (sweeping a short queue costs more
/// than the few stale entries it would free).
const MIN_SWEEP: usize = 1024;

/// Connections in their request head, by accept time.
#[derive(Debug, Default)]
pub struct HeadQueue {
    /// Each connection's token with the time it was accepted at: a slot reused by a
    /// later connection is told apart by its accept time (to the second; one accepted
    /// in the same second is as old).
    queue: VecDeque<(u32, Tick)>,
    /// The queue's length after the last sweep.
    swept: usize,
    /// How many entries at the front were pushed before the current accept pass: the
    /// only ones that may give way.
    before_pass: usize,
}

impl HeadQueue {
    /// A connection accepted at `since` waits for its head. `waiting(token, since)`
    /// says whether an entry is still current.
    pub fn push(&mut self, token: Token, since: Tick, waiting: impl Fn(Token, Tick) -> bool) {
        let Ok(slot) = u32::try_from(token.0) else {
            return; // beyond four billion connections: not a slot to give way
        };
        if self.queue.len() >= MIN_SWEEP.max(2 * self.swept) {
            self.sweep(&waiting);
        }
        self.queue.push_back((slot, since));
    }

    /// An accept pass begins: what is queued now may give way during it, what it admits
    /// may not.
    pub fn begin_pass(&mut self) {
        self.before_pass = self.queue.len();
    }

    /// Drops the stale entries, and gives back what a burst of handshakes grew once
    /// they are done. The reactor calls it once a second too, so that a ramp that has
    /// ended leaves no allocation behind for the idle connections.
    pub fn sweep(&mut self, waiting: impl Fn(Token, Tick) -> bool) {
        let (mut index, mut kept_before_pass) = (0, 0);
        let before_pass = self.before_pass;
        self.queue.retain(|&(slot, since)| {
            let keep = waiting(Token(slot as usize), since);
            if keep && index < before_pass {
                kept_before_pass += 1;
            }
            index += 1;
            keep
        });
        self.before_pass = kept_before_pass;
        self.swept = self.queue.len();
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        } else if self.queue.capacity() > 4 * self.swept {
            self.queue.shrink_to(2 * self.swept);
        }
    }

    /// Takes out the connection that has waited longest and still waits, if it was
    /// accepted before the current pass.
    pub fn pop_oldest(&mut self, waiting: impl Fn(Token, Tick) -> bool) -> Option<Token> {
        while self.before_pass > 0 {
            let (slot, since) = self.queue.pop_front()?;
            self.before_pass -= 1;
            self.swept = self.swept.saturating_sub(1);
            let token = Token(slot as usize);
            if waiting(token, since) {
                return Some(token);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_oldest_still_waiting_comes_first() {
        let mut q = HeadQueue::default();
        // token -> accept time, for connections still in their head.
        let mut waiting: HashMap<usize, Tick> = HashMap::new();
        for (t, since) in [(1, 10), (2, 11), (3, 12)] {
            waiting.insert(t, since);
            q.push(Token(t), since, |_, _| true);
        }
        waiting.remove(&1); // finished its head
        waiting.insert(2, 20); // slot 2 closed and reused by a later connection
        let is = |w: &HashMap<usize, Tick>| {
            let w = w.clone();
            move |t: Token, s: Tick| w.get(&t.0) == Some(&s)
        };
        assert_eq!(q.pop_oldest(is(&waiting)), None, "all came in this pass");
        q.begin_pass();
        assert_eq!(q.pop_oldest(is(&waiting)), Some(Token(3)));
        assert_eq!(q.pop_oldest(is(&waiting)), None);
    }

    #[test]
    fn a_connection_admitted_in_the_current_pass_never_gives_way() {
        let mut q = HeadQueue::default();
        q.push(Token(1), 0, |_, _| true);
        q.begin_pass();
        q.push(Token(2), 0, |_, _| true);
        q.push(Token(3), 0, |_, _| true);
        assert_eq!(q.pop_oldest(|_, _| true), Some(Token(1)));
        assert_eq!(q.pop_oldest(|_, _| true), None, "2 and 3 came in this pass");
        // A sweep keeps the count of older entries right.
        q.push(Token(4), 0, |_, _| true);
        q.begin_pass();
        q.sweep(|t, _| t.0 != 2);
        assert_eq!(q.pop_oldest(|_, _| true), Some(Token(3)));
        assert_eq!(q.pop_oldest(|_, _| true), Some(Token(4)));
        assert_eq!(q.pop_oldest(|_, _| true), None);
    }

    #[test]
    fn stale_entries_do_not_pile_up() {
        let mut q = HeadQueue::default();
        // A million connections that all finish their heads: the queue stays small.
        for t in 0..1_000_000usize {
            q.push(Token(t), 0, |token, _| token.0 + 1 >= t);
        }
        assert!(q.queue.len() <= 2 * MIN_SWEEP, "{} entries", q.queue.len());
        // A burst of handshakes in flight grows the queue; once they are done, a sweep
        // gives the allocation back.
        let mut q = HeadQueue::default();
        for t in 0..100_000usize {
            q.push(Token(t), 0, |_, _| true);
        }
        for t in 0..150_000usize {
            q.push(Token(t), 1, |_, _| false);
        }
        assert!(
            q.queue.capacity() <= 4 * MIN_SWEEP,
            "{}",
            q.queue.capacity()
        );
        q.sweep(|_, _| false);
        assert_eq!(q.queue.capacity(), 0, "nothing left once none waits");
        // Ten thousand that stay in their head are all kept.
        let mut q = HeadQueue::default();
        for t in 0..10_000usize {
            q.push(Token(t), 0, |_, _| true);
        }
        assert_eq!(q.queue.len(), 10_000);
    }
}
