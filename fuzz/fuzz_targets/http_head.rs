#![no_main]
//! See `wsreactor::testkit::http_head` for the input layout and the checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsreactor::testkit::http_head::http_head(data));
