//! A DUMP payload (valid trailer appended) through RESTORE's decoder, and back.
//! The checks are in `src/checks.rs` (shared with the stable seed test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowkv_fuzz::checks::restore_payload_roundtrip(data));
