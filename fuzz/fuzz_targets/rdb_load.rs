//! A whole .rdb file through the loader; loaded keys round-trip through DUMP/RESTORE.
//! The checks are in `src/checks.rs` (shared with the stable seed test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowkv_fuzz::checks::rdb_load(data));
