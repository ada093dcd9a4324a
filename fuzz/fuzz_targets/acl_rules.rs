//! ACL SETUSER rules; the ACL LIST text reloads to the same user.
//! The checks are in `src/checks.rs` (shared with the stable seed test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowkv_fuzz::checks::acl_rules(data));
