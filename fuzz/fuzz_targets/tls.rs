#![no_main]
//! See `wsreactor::testkit::tls` for the input layout and the checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsreactor::testkit::tls::tls(data));
