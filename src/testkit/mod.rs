//! Test scaffolding, compiled only with the `testkit` feature (off by default, so none
//! of it is in the library's public API): the bodies of the fuzz targets in `fuzz/`,
//! kept here so that `tests/fuzz_corpus.rs` replays the checked-in corpus through
//! exactly the same checks on every test run (CI does not run the fuzzer), and the
//! in-memory server session that they, unit tests and the timer benchmark drive.
//!
//! Every target reads the same input layout, so a corpus file means the same thing to
//! the fuzzer and to the replay test:
//!
//! ```text
//! byte 0        flags (each target says what its bits choose)
//! byte 1        n: how many step bytes follow (taken mod 16)
//! bytes 2..2+n  steps: chunk lengths, used in turn and cyclically, that cut the
//!               payload into the pieces a socket might deliver (0 = an empty read)
//! the rest      the payload: the bytes on the wire
//! ```
//!
//! Each target checks that the code under test never panics, never claims more bytes
//! than it was given, and reaches the same result whether the payload arrives whole,
//! one byte at a time, or in the pieces the steps choose. A failed check panics, which
//! is what the fuzzer reports as a crash.

pub mod connection;
pub mod frame;
pub mod http_head;
mod input;
pub mod memory;
pub mod tls;

pub use input::Input;
