//! Warnings about conditions that repeat for every client while they last (out of
//! descriptors, over the memory budget): logged at most once a [`WARN_INTERVAL`], so a
//! flood of clients cannot flood the log too.

use std::time::{Duration, Instant};

use log::warn;

/// How often one kind of trouble may be logged.
pub const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// When a warning was last logged.
#[derive(Debug, Default)]
pub struct Warnings {
    last: Option<Instant>,
}

impl Warnings {
    /// Logs `message()` unless a warning was logged within the last [`WARN_INTERVAL`]
    /// (the message is not even formatted then).
    pub fn warn(&mut self, message: impl FnOnce() -> String) {
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= WARN_INTERVAL)
        {
            warn!("{}", message());
            self.last = Some(now);
        }
    }
}
