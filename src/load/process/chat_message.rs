//! The chat message format: a header of the sequence number and the send time, then
//! bytes that follow from (room seed, sequence number), so a member checks a message
//! byte for byte, in whatever pieces it arrives, without a copy of what was sent.

use super::payload;
use crate::load::wire::Failure;

/// Bytes of a message's header: the sequence number, then the send time, each as 8
/// lowercase hex digits (ASCII, so a message is valid UTF-8 and may go out as Text).
pub const HEADER_LEN: usize = 16;

fn hex_digit(value: u32, digit: usize) -> u8 {
    b"0123456789abcdef"[(value >> (28 - 4 * digit)) as usize & 15]
}

fn hex_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' => Some(u32::from(b - b'a' + 10)),
        _ => None,
    }
}

/// Writes message `seq`, stamped with the send time `stamp` (wrapping µs), into `out`
/// (at least [`HEADER_LEN`] bytes): the header, then bytes that follow from
/// (`seed`, `seq`), so members check them without a copy of what was sent.
pub fn fill(seed: u32, seq: u32, stamp: u32, out: &mut [u8]) {
    for d in 0..8 {
        out[d] = hex_digit(seq, d);
        out[8 + d] = hex_digit(stamp, d);
    }
    payload::fill(seed, seq, HEADER_LEN as u64, &mut out[HEADER_LEN..]);
}

/// Checks that `got` equals bytes `offset ..` of message `seq`, except for the stamp,
/// whose digits (any lowercase hex) are shifted into `stamp` as they pass: after the
/// whole header, `stamp` holds the send time. A different sequence number is
/// [`Failure::ChatOutOfOrder`]; any other difference [`Failure::ChatMismatch`].
pub fn check(seed: u32, seq: u32, offset: u64, got: &[u8], stamp: &mut u32) -> Result<(), Failure> {
    let mut pos = offset;
    let mut rest = got;
    while pos < HEADER_LEN as u64 {
        let Some((&b, tail)) = rest.split_first() else {
            return Ok(());
        };
        let digit = pos as usize;
        if digit < 8 {
            if b != hex_digit(seq, digit) {
                return Err(Failure::ChatOutOfOrder);
            }
        } else {
            let v = hex_value(b).ok_or(Failure::ChatMismatch)?;
            *stamp = (*stamp << 4) | v;
        }
        pos += 1;
        rest = tail;
    }
    if payload::matches(seed, seq, pos, rest) {
        Ok(())
    } else {
        Err(Failure::ChatMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seed: u32, seq: u32, stamp: u32, len: usize) -> Vec<u8> {
        let mut m = vec![0u8; len];
        fill(seed, seq, stamp, &mut m);
        m
    }

    #[test]
    fn messages_check_in_any_pieces_and_yield_their_stamp() {
        let m = message(9, 0x1234_abcd, 0xdead_beef, 100);
        assert_eq!(&m[..HEADER_LEN], b"1234abcddeadbeef");
        assert!(std::str::from_utf8(&m).is_ok());
        for cut in [0usize, 1, 7, 8, 9, 15, 16, 17, 99, 100] {
            let mut stamp = 0;
            assert_eq!(check(9, 0x1234_abcd, 0, &m[..cut], &mut stamp), Ok(()));
            assert_eq!(
                check(9, 0x1234_abcd, cut as u64, &m[cut..], &mut stamp),
                Ok(())
            );
            assert_eq!(stamp, 0xdead_beef, "cut {cut}");
        }
    }

    #[test]
    fn another_sequence_seed_or_byte_fails_the_check() {
        let m = message(9, 5, 77, 40);
        let mut stamp = 0;
        let order = Err(Failure::ChatOutOfOrder);
        let mismatch = Err(Failure::ChatMismatch);
        assert_eq!(
            check(9, 6, 0, &m, &mut stamp),
            order,
            "another sequence number"
        );
        assert_eq!(
            check(8, 5, 0, &m, &mut stamp),
            mismatch,
            "another run's seed"
        );
        for i in 0..m.len() {
            let mut bad = m.clone();
            bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
            let want = match i {
                0..8 => order,
                // A changed stamp digit is still a stamp: only the other bytes are fixed.
                8..16 => Ok(()),
                _ => mismatch,
            };
            assert_eq!(check(9, 5, 0, &bad, &mut stamp), want, "byte {i}");
        }
        let mut upper = m.clone();
        upper[10] = b'A';
        assert_eq!(
            check(9, 5, 0, &upper, &mut stamp),
            mismatch,
            "stamps are lowercase"
        );
    }
}
