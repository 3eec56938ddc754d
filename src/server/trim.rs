//! Gives memory back to the system once connections have let go of a lot of it. glibc's
//! malloc keeps what is freed for reuse: after a flood of half-sent messages has come
//! and gone, a process would go on holding its peak for good (measured: 1.1 GB at 0
//! connections, 10 s after). `malloc_trim` returns the free pages of every arena.
//!
//! It walks the heap, so it runs only when the bytes connections hold have fallen by
//! [`TRIM_AFTER`] from their high mark since the last trim, checked once a sweep: an
//! idle or steady server never pays for it. With another allocator (the
//! `alloc-mimalloc` and `alloc-jemalloc` features) it does nothing.

/// How far the bytes held must fall from their high mark before memory is returned.
pub const TRIM_AFTER: usize = 32 << 20;

/// The high mark of the bytes held since the last trim.
#[derive(Debug, Default)]
pub struct Trim {
    high: usize,
}

impl Trim {
    /// Notes the bytes all connections hold now (once a turn: a max, nothing more).
    pub fn observe(&mut self, held: usize) {
        self.high = self.high.max(held);
    }

    /// Returns freed memory to the system if the bytes held fell far enough since the
    /// high mark; returns whether it did.
    pub fn maybe_trim(&mut self, held: usize) -> bool {
        if self.high.saturating_sub(held) < TRIM_AFTER {
            return false;
        }
        self.high = held;
        release_free_memory();
        true
    }
}

#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    not(feature = "alloc-mimalloc"),
    not(feature = "alloc-jemalloc")
))]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks and trims glibc's own arenas; it takes their
    // locks and touches no memory of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(
    target_os = "linux",
    target_env = "gnu",
    not(feature = "alloc-mimalloc"),
    not(feature = "alloc-jemalloc")
)))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_a_large_fall() {
        let mut trim = Trim::default();
        trim.observe(10 << 20);
        assert!(!trim.maybe_trim(0), "a fall under TRIM_AFTER");
        trim.observe(100 << 20);
        trim.observe(50 << 20);
        assert!(trim.maybe_trim(60 << 20));
        assert!(
            !trim.maybe_trim(40 << 20),
            "the high mark starts again from the trim"
        );
    }
}
