//! The memory budget of one reactor process: what all its connections hold together
//! (kept input, gathered chat messages, unsent output), kept up to date by the
//! connections themselves (`Spilled::settle`), and what follows from it.
//!
//! Two bounds. The *message pool* (`--message-pool`) is what connections in the middle
//! of a message may hold beyond the high-water mark, together: a client may write a
//! whole message before it reads its echo (Autobahn's does), so such a connection keeps
//! reading past the mark while the pool lasts, and pauses like any other once it is
//! taken. A flood of half-sent messages that never read their echoes thus takes the pool
//! and no more. The *budget* (`--memory-budget`) bounds everything: past it, the
//! connections holding the most are dropped until nine tenths of it is left. Their bytes
//! are what is over budget, so they cannot be told with a Close frame queued behind them.
//! The bounds together, innermost first: docs/design.md#memory-budget.

use mio::Token;
use slab::Slab;

use super::connection::Connection;
use super::transport::Transport;
use crate::stream::Held;

/// The budget, the pool, and what connections hold now.
#[derive(Debug)]
pub struct Budget {
    /// What every connection holds now.
    pub held: Held,
    limit: usize,
    pool: usize,
}

impl Budget {
    /// A budget of `limit` bytes, with `pool` of them for messages in progress.
    pub fn new(limit: u64, pool: u64) -> Budget {
        Budget {
            held: Held::default(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            pool: usize::try_from(pool).unwrap_or(usize::MAX),
        }
    }

    /// Whether the pool for messages in progress has room left: a connection in the
    /// middle of a message may then run behind past the high-water mark.
    pub fn pool_has_room(&self) -> bool {
        self.held.pooled < self.pool
    }

    /// Whether connections hold more than the budget.
    pub fn is_over(&self) -> bool {
        self.held.bytes > self.limit
    }

    /// The connections to drop, most bytes first, until nine tenths of the budget is
    /// left (counting what each holds now).
    pub fn largest_holders<T: Transport>(&self, conns: &Slab<Connection<T>>) -> Vec<Token> {
        let mut holders: Vec<(usize, Token)> = conns
            .iter()
            .map(|(i, conn)| (conn.held(), Token(i)))
            .filter(|&(held, _)| held > 0)
            .collect();
        holders.sort_unstable_by_key(|&(held, _)| std::cmp::Reverse(held));
        let mut left = self.held.bytes;
        let target = self.limit / 10 * 9;
        holders
            .into_iter()
            .take_while(|&(held, _)| {
                let over = left > target;
                left = left.saturating_sub(held);
                over
            })
            .map(|(_, token)| token)
            .collect()
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}
