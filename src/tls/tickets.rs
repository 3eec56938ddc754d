//! Session tickets under one key for the whole server (RFC 8446 §4.6.1, RFC 5077 §4):
//! the `--workers` supervisor makes the key and hands it to every worker, so a ticket
//! one worker issued resumes on whichever worker the kernel picks for the client's next
//! connection. Tickets are stateless: the session is sealed into the ticket itself
//! (AES-256-GCM, a random 96-bit nonce per ticket), so resuming costs no server memory.

use std::fmt;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The environment variable a worker finds the key in (hex), set by its supervisor.
pub const TICKET_KEY_ENV: &str = "WSREACTOR_TLS_TICKET_KEY";

/// How long a ticket may be used: rustls' own ticketer's lifetime, 6 hours.
const LIFETIME_SECS: u32 = 6 * 60 * 60;

/// Additional data bound into every ticket, so that nothing else sealed under a key
/// like it passes for one.
const AAD: &[u8] = b"wsreactor session ticket";

/// A ticket key: 32 random bytes.
pub type TicketKey = [u8; 32];

/// A fresh random key (for the supervisor to hand down).
pub fn new_ticket_key() -> Result<TicketKey, String> {
    let mut key = [0; 32];
    getrandom::getrandom(&mut key).map_err(|e| e.to_string())?;
    Ok(key)
}

/// The key as the supervisor puts it in the environment.
pub fn key_to_hex(key: &TicketKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key from its hex form, if it is one.
pub fn key_from_hex(hex: &str) -> Option<TicketKey> {
    let mut key = [0; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Seals and opens tickets under one key.
pub struct SharedTickets(LessSafeKey);

impl SharedTickets {
    /// Tickets under `key`.
    pub fn new(key: &TicketKey) -> SharedTickets {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key");
        SharedTickets(LessSafeKey::new(key))
    }
}

impl fmt::Debug for SharedTickets {
    /// Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedTickets")
    }
}

impl rustls::server::ProducesTickets for SharedTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECS
    }

    /// nonce ‖ ciphertext ‖ tag.
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0; NONCE_LEN];
        getrandom::getrandom(&mut nonce).ok()?;
        let mut ticket = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut ticket[NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    /// `None` for anything this key did not seal (another server's ticket, an old
    /// key's, garbage): the client then makes a full handshake.
    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let (nonce, sealed) = ticket.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut plain = sealed.to_vec();
        let len = self
            .0
            .open_in_place(nonce, Aad::from(AAD), &mut plain)
            .ok()?
            .len();
        plain.truncate(len);
        Some(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    #[test]
    fn a_ticket_opens_under_the_same_key_only() {
        let key = new_ticket_key().unwrap();
        let (a, b) = (SharedTickets::new(&key), SharedTickets::new(&key));
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(
            b.decrypt(&ticket).unwrap(),
            b"session state",
            "another worker"
        );
        let other = SharedTickets::new(&new_ticket_key().unwrap());
        assert_eq!(other.decrypt(&ticket), None);
        let mut forged = ticket.clone();
        forged[NONCE_LEN] ^= 1;
        assert_eq!(a.decrypt(&forged), None);
        assert_eq!(a.decrypt(&ticket[..10]), None);
        assert_ne!(a.encrypt(b"x"), a.encrypt(b"x"), "a fresh nonce each time");
    }

    #[test]
    fn the_key_survives_its_hex_form() {
        let key = new_ticket_key().unwrap();
        assert_eq!(key_from_hex(&key_to_hex(&key)), Some(key));
        assert_eq!(key_from_hex("00"), None);
        assert_eq!(key_from_hex(&"zz".repeat(32)), None);
    }
}
