//! Session tickets under keys the whole server shares, rotated every period (RFC 8446
//! §4.6.1, RFC 5077 §4): a ticket one worker issued resumes on whichever worker the
//! kernel picks for the client's next connection, before and after a rotation. Tickets
//! are stateless: the session is sealed into the ticket itself (AES-256-GCM, a random
//! 96-bit nonce per ticket), so resuming costs no server memory.
//!
//! How the workers agree on the keys without a channel: time is cut into periods
//! (`--tls-ticket-rotation`, aligned to the Unix epoch, so every process on the machine
//! switches at the same instant), and each period's key is a one-way function of the
//! previous one (a hash ratchet, HMAC-SHA256). The supervisor makes a random key, and
//! hands each worker it starts the current period's key as that worker starts (a
//! restarted worker gets the key of its own start, not the first one); from there every
//! process ratchets on its own as periods pass. Tickets sealed under the current key or
//! the previous one open, so a ticket lives between one and two periods; older ones are
//! refused and the client makes a full handshake. Because the ratchet only runs forward,
//! what a process holds (its current and previous keys, and in its environment the key
//! of the period it started in) reveals no key of an earlier period, which is what
//! rotating ticket keys is for (forward secrecy of resumed sessions).

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;

/// The environment variable a worker finds its first key in (`PERIOD_NUMBER:HEX`), set
/// by its supervisor for that worker alone.
pub const TICKET_KEY_ENV: &str = "WSREACTOR_TLS_TICKET_KEY";

/// The longest a ticket may be kept by a client (RFC 8446 §4.6.1: 7 days).
pub const MAX_LIFETIME_SECS: u32 = 7 * 24 * 60 * 60;

/// Additional data bound into every ticket, so that nothing else sealed under a key
/// like it passes for one.
const AAD: &[u8] = b"wsreactor session ticket";

/// What the ratchet hashes, so that its keys are used for nothing else.
const RATCHET_LABEL: &[u8] = b"wsreactor ticket key ratchet";

/// A ticket key: 32 bytes.
pub type TicketKey = [u8; 32];

/// The ticket keys of one process: the current period's and the previous one's.
pub struct TicketKeys {
    period: u32,
    keys: Mutex<Keys>,
}

struct Keys {
    /// The period number `current` belongs to.
    number: u64,
    raw: TicketKey,
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
}

impl Keys {
    fn new(number: u64, raw: TicketKey) -> Keys {
        Keys {
            number,
            current: aead_key(&raw),
            raw,
            previous: None,
        }
    }

    /// On to period `number`, if it is later. A clock that went back changes nothing:
    /// a ratchet cannot return.
    fn advance(&mut self, number: u64) {
        while self.number < number {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.raw), RATCHET_LABEL);
            self.raw.copy_from_slice(tag.as_ref());
            let next = aead_key(&self.raw);
            self.previous = Some(std::mem::replace(&mut self.current, next));
            self.number += 1;
        }
    }
}

fn aead_key(raw: &TicketKey) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).expect("a 32-byte AES-256 key"))
}

/// Seconds since the Unix epoch (0 for a clock set before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TicketKeys {
    /// Keys rotated every `period` seconds (at least 1), starting from a random one.
    pub fn fresh(period: u32) -> Result<TicketKeys, String> {
        let mut raw = [0; 32];
        getrandom::getrandom(&mut raw).map_err(|e| e.to_string())?;
        Ok(TicketKeys::starting(
            period,
            unix_now() / u64::from(period.max(1)),
            raw,
        ))
    }

    /// Keys rotated every `period` seconds whose key for period `number` is `raw`.
    pub fn starting(period: u32, number: u64, raw: TicketKey) -> TicketKeys {
        TicketKeys {
            period: period.max(1),
            keys: Mutex::new(Keys::new(number, raw)),
        }
    }

    /// The keys a supervisor handed down in [`TICKET_KEY_ENV`], if it did.
    pub fn from_env(period: u32) -> Result<Option<TicketKeys>, String> {
        let Ok(value) = std::env::var(TICKET_KEY_ENV) else {
            return Ok(None);
        };
        let (number, raw) =
            parse_handoff(&value).ok_or_else(|| format!("{TICKET_KEY_ENV} is not a key"))?;
        Ok(Some(TicketKeys::starting(period, number, raw)))
    }

    /// The current period's key in the form a worker reads from [`TICKET_KEY_ENV`]. A
    /// secret: for a child's environment only, never a log.
    pub fn handoff(&self) -> String {
        let keys = self.keys_at(unix_now());
        let hex: String = keys.raw.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{hex}", keys.number)
    }

    /// The keys for time `now` (Unix seconds), ratcheted on to its period.
    fn keys_at(&self, now: u64) -> MutexGuard<'_, Keys> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.advance(now / u64::from(self.period));
        keys
    }

    /// A ticket for `plain` at time `now`: nonce ‖ ciphertext ‖ tag.
    fn seal_at(&self, now: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0; NONCE_LEN];
        getrandom::getrandom(&mut nonce).ok()?;
        let mut ticket = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let tag = self
            .keys_at(now)
            .current
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut ticket[NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    /// What `ticket` holds, at time `now`, if the current or the previous key sealed it.
    fn open_at(&self, now: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        let (nonce, sealed) = ticket.split_at_checked(NONCE_LEN)?;
        let keys = self.keys_at(now);
        for key in std::iter::once(&keys.current).chain(keys.previous.as_ref()) {
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut plain = sealed.to_vec();
            if let Ok(opened) = key.open_in_place(nonce, Aad::from(AAD), &mut plain) {
                let len = opened.len();
                plain.truncate(len);
                return Some(plain);
            }
        }
        None
    }
}

/// `NUMBER:HEX` (see [`TicketKeys::handoff`]).
fn parse_handoff(value: &str) -> Option<(u64, TicketKey)> {
    let (number, hex) = value.split_once(':')?;
    let mut raw = [0; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in raw.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((number.parse().ok()?, raw))
}

impl fmt::Debug for TicketKeys {
    /// Never a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKeys")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl rustls::server::ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        true
    }

    /// A ticket opens for one to two periods after it was sealed; like rustls' own
    /// rotator, clients are told the longer, and a ticket offered too late costs a
    /// full handshake.
    fn lifetime(&self) -> u32 {
        self.period.saturating_mul(2).min(MAX_LIFETIME_SECS)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal_at(unix_now(), plain)
    }

    /// `None` for anything the current or previous key did not seal (another server's
    /// ticket, one two periods old, garbage): the client then makes a full handshake.
    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        self.open_at(unix_now(), ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: u32 = 100;
    /// A time in the middle of a period.
    const T: u64 = 1_000_050;

    fn keys() -> TicketKeys {
        TicketKeys::starting(PERIOD, T / 100, [7; 32])
    }

    #[test]
    fn a_ticket_opens_under_the_same_keys_only() {
        let (a, b) = (keys(), keys());
        let ticket = a.seal_at(T, b"session state").unwrap();
        assert_eq!(
            b.open_at(T, &ticket).unwrap(),
            b"session state",
            "another worker"
        );
        let other = TicketKeys::starting(PERIOD, T / 100, [8; 32]);
        assert_eq!(other.open_at(T, &ticket), None);
        let mut forged = ticket.clone();
        forged[NONCE_LEN] ^= 1;
        assert_eq!(a.open_at(T, &forged), None);
        assert_eq!(a.open_at(T, &ticket[..10]), None);
        assert_ne!(
            a.seal_at(T, b"x"),
            a.seal_at(T, b"x"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn a_ticket_lives_one_to_two_periods() {
        let keys = keys();
        let ticket = keys.seal_at(T, b"s").unwrap();
        // The last second of the next period still opens it; the one after does not.
        assert!(keys.open_at(T + 100 + 49, &ticket).is_some());
        assert_eq!(keys.open_at(T + 100 + 50, &ticket), None);
        // Once rotated on, a ratchet never comes back, even if the clock does.
        assert_eq!(keys.open_at(T, &ticket), None);
    }

    #[test]
    fn workers_handed_keys_at_different_times_agree() {
        // The supervisor's keys, and a worker started two periods later with the
        // supervisor's key of that moment: each ratchets on its own.
        let supervisor = keys();
        let later = T + 200;
        let handed = {
            let keys = supervisor.keys_at(later);
            (keys.number, keys.raw)
        };
        let worker = TicketKeys::starting(PERIOD, handed.0, handed.1);
        let ticket = supervisor.seal_at(later + 100, b"s").unwrap();
        assert_eq!(worker.open_at(later + 100, &ticket).unwrap(), b"s");
        let ticket = worker.seal_at(later + 100, b"t").unwrap();
        assert_eq!(supervisor.open_at(later + 150, &ticket).unwrap(), b"t");
    }

    #[test]
    fn the_handoff_survives_its_text_form() {
        let keys = TicketKeys::fresh(PERIOD).unwrap();
        let (number, raw) = parse_handoff(&keys.handoff()).unwrap();
        let guard = keys.keys_at(unix_now());
        assert_eq!((number, raw), (guard.number, guard.raw));
        assert_eq!(parse_handoff("1:00"), None);
        assert_eq!(parse_handoff(&format!("x:{}", "00".repeat(32))), None);
        assert_eq!(parse_handoff(&format!("1:{}", "zz".repeat(32))), None);
    }
}
