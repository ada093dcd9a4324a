//! redis.conf text and `--name value` overrides; CONFIG SET and CONFIG REWRITE round trips.
//! The checks are in `src/checks.rs` (shared with the stable seed test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowkv_fuzz::checks::config(data));
