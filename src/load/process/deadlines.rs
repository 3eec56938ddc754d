//! The deadlines of one load process's connections, on a hashed timer wheel: which
//! connections may be due at a driver tick, without visiting the others.
//!
//! Why not sweep the slab: every tick (100 ms) a sweep read every connection's deadline.
//! At a million connections over 51 processes that is ten million reads a second, most
//! of them cache misses, whatever the connections do; during a hold of one echo a
//! minute it was the largest piece of the load's user time (`perf`, see
//! docs/benchmarks.md, "What a connection costs at a million"). The wheel's work is
//! proportional to the deadlines set, not to the connections held.
//!
//! An entry is (slab key, deadline in ms) in the slot of its deadline's tick. Entries are
//! never removed when a connection's deadline moves or the connection ends: a slot's
//! entry whose deadline is no longer its connection's is stale and dropped when the slot
//! comes round (the caller checks). A deadline farther than the wheel reaches is
//! parked in its last slot and placed again from there.

use super::env::NEVER;

/// Milliseconds per slot: the driver's tick.
pub const SLOT_MS: u32 = 100;
/// Slots in the wheel: it reaches 102.4 s ahead (the default echo interval is 60 s).
const SLOTS: u32 = 1024;

/// A slot's connections that may be due, as (slab key, the deadline they were filed
/// under).
pub type Entries = Vec<(u32, u32)>;

/// The wheel; see the module header.
#[derive(Debug)]
pub struct Deadlines {
    slots: Box<[Entries]>,
    /// The first tick not yet taken completely: `take` starts here.
    next: u32,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            next: 0,
        }
    }
}

impl Deadlines {
    /// Files `key` under `deadline_ms` (nothing for [`NEVER`]). A deadline already past
    /// goes into the next slot taken; one beyond the wheel's reach into its last slot.
    pub fn file(&mut self, key: usize, deadline_ms: u32) {
        if deadline_ms == NEVER {
            return;
        }
        let tick = (deadline_ms / SLOT_MS).clamp(self.next, self.next + SLOTS - 1);
        self.slots[(tick % SLOTS) as usize].push((key as u32, deadline_ms));
    }

    /// Moves the entries of every tick up to `now_ms`'s into `out`, for the caller to
    /// check against each connection's deadline now, fire the due and [`Deadlines::file`]
    /// again those filed too far ahead (their deadline is still theirs, not yet due).
    /// The tick of `now_ms` is taken again next time: deadlines later in it are not due.
    pub fn take(&mut self, now_ms: u32, out: &mut Entries) {
        let now = now_ms / SLOT_MS;
        // Never more than one turn of the wheel: a late tick must not visit a slot twice.
        let first = self.next.max(now.saturating_sub(SLOTS - 1));
        for tick in first..=now {
            out.append(&mut self.slots[(tick % SLOTS) as usize]);
        }
        self.next = now;
    }

    /// Entries filed and not yet taken (stale ones too).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(d: &mut Deadlines, now_ms: u32) -> Entries {
        let mut out = Vec::new();
        d.take(now_ms, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn an_entry_is_taken_at_its_tick_not_before() {
        let mut d = Deadlines::default();
        d.file(7, 1_250);
        d.file(8, 1_299);
        d.file(9, 1_300);
        assert!(taken(&mut d, 1_199).is_empty());
        // The tick of 1,250 ms is 1,200..1,300: both of its entries come out, 8's not
        // yet due, for the caller to file again.
        assert_eq!(taken(&mut d, 1_250), vec![(7, 1_250), (8, 1_299)]);
        d.file(8, 1_299);
        assert_eq!(taken(&mut d, 1_299), vec![(8, 1_299)]);
        assert_eq!(taken(&mut d, 1_300), vec![(9, 1_300)]);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn never_is_not_filed_and_a_past_deadline_comes_out_next() {
        let mut d = Deadlines::default();
        d.file(1, NEVER);
        assert_eq!(d.len(), 0);
        assert!(taken(&mut d, 5_000).is_empty());
        d.file(2, 10);
        assert_eq!(taken(&mut d, 5_000), vec![(2, 10)]);
    }

    #[test]
    fn a_late_take_collects_every_tick_it_missed() {
        let mut d = Deadlines::default();
        for (key, ms) in [(1, 100), (2, 900), (3, 2_000), (4, 2_100)] {
            d.file(key, ms);
        }
        assert_eq!(taken(&mut d, 2_050), vec![(1, 100), (2, 900), (3, 2_000)]);
        assert_eq!(taken(&mut d, 2_100), vec![(4, 2_100)]);
    }

    #[test]
    fn a_deadline_beyond_the_wheel_is_parked_in_its_last_slot() {
        let mut d = Deadlines::default();
        let far = 500_000; // 500 s: beyond 102.4 s
        d.file(3, far);
        let reach = (SLOTS - 1) * SLOT_MS;
        assert!(taken(&mut d, reach - 1).is_empty());
        // Out at the wheel's last slot, not due: filed again, it parks further on.
        assert_eq!(taken(&mut d, reach), vec![(3, far)]);
        d.file(3, far);
        let mut now = reach;
        let mut rounds = 0;
        loop {
            now += SLOT_MS;
            let out = taken(&mut d, now);
            if out.is_empty() {
                continue;
            }
            assert_eq!(out, vec![(3, far)]);
            rounds += 1;
            if now >= far {
                break;
            }
            d.file(3, far);
        }
        assert_eq!((now / SLOT_MS, rounds), (far / SLOT_MS, 4));
    }

    #[test]
    fn one_entry_per_filing_however_late_the_take() {
        // A take a whole turn late visits each slot once: nothing is doubled.
        let mut d = Deadlines::default();
        for key in 0..SLOTS {
            d.file(key as usize, key * SLOT_MS);
        }
        let out = taken(&mut d, 10 * SLOTS * SLOT_MS);
        assert_eq!(out.len(), SLOTS as usize);
    }
}
