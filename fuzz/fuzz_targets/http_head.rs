#![no_main]
//! See `wsreactor::fuzzing::http_head` for the input layout and the checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsreactor::fuzzing::http_head(data));
