//! The memory budget of one reactor process (`--memory-budget`): the bytes all its
//! connections hold together (kept input, gathered chat messages, unsent output), kept
//! up to date by the connections themselves (`Spilled::settle`), and what follows from
//! it. Under half the budget memory is plentiful, and a connection in the middle of a
//! message may run further behind (see `ServerConnection::pause_if_backed_up`); past
//! the whole budget, the connections holding the most are dropped until nine tenths of
//! it is left. Their bytes are what is over budget, so they cannot be told with a Close
//! frame queued behind them.

use mio::Token;
use slab::Slab;

use super::connection::Connection;

#[derive(Debug)]
pub struct Budget {
    /// Bytes every connection holds now.
    pub held: usize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            held: 0,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        }
    }

    /// Whether memory is plentiful: under half the budget.
    pub fn relaxed(&self) -> bool {
        self.held < self.limit / 2
    }

    pub fn is_over(&self) -> bool {
        self.held > self.limit
    }

    /// The connections to drop, most bytes first, until nine tenths of the budget is
    /// left (counting what each holds now).
    pub fn largest_holders(&self, conns: &Slab<Connection>) -> Vec<Token> {
        let mut holders: Vec<(usize, Token)> = conns
            .iter()
            .map(|(i, conn)| (conn.held(), Token(i)))
            .filter(|&(held, _)| held > 0)
            .collect();
        holders.sort_unstable_by_key(|&(held, _)| std::cmp::Reverse(held));
        let mut left = self.held;
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

    pub fn limit(&self) -> usize {
        self.limit
    }
}
