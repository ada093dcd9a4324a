//! RESP and inline requests through the parser, whole and in arbitrary splits.
//! The checks are in `src/checks.rs` (shared with the stable seed test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowkv_fuzz::checks::parse_request(data));
