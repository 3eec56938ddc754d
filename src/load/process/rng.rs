//! A small, fast pseudo-random generator (SplitMix64) seeded from the OS, for frame mask
//! keys, payload seeds and echo spreading.
//!
//! Why not the OS source per frame: a million connections echoing would make a syscall
//! per frame. RFC 6455 §5.3 wants mask keys a page script cannot predict; a load
//! generator has no hostile script, and an OS-seeded SplitMix64 stream is unpredictable
//! enough to exercise a server's unmasking with varied keys.

/// SplitMix64 (Steele, Lea, Flood 2014): one add and a mixing function per output.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the OS random source.
    pub fn from_os() -> Rng {
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed).expect("the OS random source is available");
        Rng(u64::from_ne_bytes(seed))
    }

    /// A fixed seed, for tests that need a known stream.
    #[cfg(test)]
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 bits of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// The next 32 bits of the stream (the high half of a 64-bit output, the better
    /// mixed one).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// 16 bytes for a `Sec-WebSocket-Key` (§4.1 item 7 asks for a random nonce; a
    /// load generator needs it unpredictable to no one, only fresh per connection).
    pub fn nonce(&mut self) -> [u8; 16] {
        let mut nonce = [0; 16];
        nonce[..8].copy_from_slice(&self.next_u64().to_ne_bytes());
        nonce[8..].copy_from_slice(&self.next_u64().to_ne_bytes());
        nonce
    }

    /// A value in `0..n` (`n > 0`); the bias of a plain modulo is below 2^-32 for the
    /// small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The SplitMix64 output function: a bijective 64-bit mix with full avalanche, also
/// used on its own to derive payload bytes from (seed, sequence, block).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_splitmix_sequence() {
        // Reference values of SplitMix64 seeded with 0.
        let mut r = Rng::from_seed(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::from_os();
        for n in [1u64, 2, 7, 1000] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
        assert_eq!(r.below(0), 0);
    }
}
