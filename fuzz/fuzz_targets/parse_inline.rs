//! The inline grammar: any line, and quoted argument lists read back exactly.
//! The checks are in `src/checks.rs` (shared with the stable seed test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowkv_fuzz::checks::parse_inline(data));
