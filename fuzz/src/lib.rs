//! Shared bodies of the fuzz targets (see [`checks`]); the binaries in `fuzz_targets/`
//! only hand libFuzzer's input to them.
pub mod checks;
