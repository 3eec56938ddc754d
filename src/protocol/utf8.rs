//! Incremental UTF-8 validation for text messages that arrive in pieces (RFC 6455 §8.1).
//!
//! A message may be split anywhere, even inside a code point, by fragmentation or by TCP.
//! The validator fails as soon as the bytes seen so far cannot begin any valid UTF-8
//! string ("fail fast"), not only at the end of the message. It keeps at most the three
//! bytes of an unfinished code point, so it fits in a connection's inline state.

use super::error::ProtocolError;

/// Validates a byte stream piece by piece. `Default` is the start of a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The leading bytes of a code point that the previous piece ended inside.
    pending: [u8; 3],
    pending_len: u8,
}

/// The length of the code point a valid leading byte starts.
fn char_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Checks a piece: `Ok(None)` if it is all valid, `Ok(Some(i))` if it is valid up to
/// `i` and the rest is the unfinished start of a code point, `Err` otherwise.
fn check(bytes: &[u8]) -> Result<Option<usize>, ProtocolError> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(None),
        // `error_len() == None`: the input ended inside a sequence that is valid so far.
        Err(e) if e.error_len().is_none() => Ok(Some(e.valid_up_to())),
        Err(_) => Err(ProtocolError::InvalidUtf8),
    }
}

impl Utf8Validator {
    /// Validates the next piece of the stream.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        if self.pending_len > 0 {
            let have = usize::from(self.pending_len);
            let width = char_width(self.pending[0]);
            let take = (width - have).min(input.len());
            let mut cp = [0u8; 4];
            cp[..have].copy_from_slice(&self.pending[..have]);
            cp[have..have + take].copy_from_slice(&input[..take]);
            input = &input[take..];
            if have + take < width {
                // Still unfinished: it must remain a valid prefix.
                check(&cp[..have + take])?;
                self.pending[..have + take].copy_from_slice(&cp[..have + take]);
                self.pending_len = (have + take) as u8;
                return Ok(());
            }
            if check(&cp[..width])?.is_some() {
                return Err(ProtocolError::InvalidUtf8);
            }
            self.pending_len = 0;
        }
        if let Some(valid) = check(input)? {
            let tail = &input[valid..];
            self.pending[..tail.len()].copy_from_slice(tail);
            self.pending_len = tail.len() as u8;
        }
        Ok(())
    }

    /// Ends the message: an unfinished code point at the end is an error.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let unfinished = self.pending_len != 0;
        *self = Utf8Validator::default();
        if unfinished {
            Err(ProtocolError::InvalidUtf8)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_split(bytes: &[u8], cuts: &[usize]) -> Result<(), ProtocolError> {
        let mut v = Utf8Validator::default();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.finish()
    }

    const SAMPLES: &[&[u8]] = &[
        b"",
        b"hello",
        "κόσμε".as_bytes(),
        "a€b𝄞c".as_bytes(),
        b"\xf4\x8f\xbf\xbf",
        b"\xce\xba\xe1\xbd", // unfinished at the end
        b"\xed\xa0\x80",     // a UTF-16 surrogate
        b"\xf4\x90\x80\x80", // above U+10FFFF
        b"\xc0\xaf",         // overlong
        b"abc\xffdef",       // a byte that never appears
        b"\xe0\x80\xaf",     // overlong three-byte form
    ];

    #[test]
    fn every_split_into_three_pieces_agrees_with_std() {
        for sample in SAMPLES {
            let expected = std::str::from_utf8(sample).is_ok();
            for a in 0..=sample.len() {
                for b in a..=sample.len() {
                    assert_eq!(
                        validate_split(sample, &[a, b]).is_ok(),
                        expected,
                        "{sample:x?} cut at {a},{b}"
                    );
                }
            }
        }
    }

    #[test]
    fn fails_fast_on_the_first_impossible_byte() {
        // Autobahn 6.4.x: the prefix \xf4\x90 can never become valid; reject it before
        // the rest of the message arrives.
        let mut v = Utf8Validator::default();
        v.feed("κόσμε".as_bytes()).unwrap();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(ProtocolError::InvalidUtf8));
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"ab\xed\xa0"), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn finish_resets_for_the_next_message() {
        let mut v = Utf8Validator::default();
        v.feed(b"\xe2\x82").unwrap();
        assert!(v.finish().is_err());
        v.feed(b"ok").unwrap();
        assert!(v.finish().is_ok());
    }
}
