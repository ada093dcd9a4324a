//! The fuzz targets' checks on stable Rust: every seed in `fuzz/seeds/<target>/` and every
//! input a fuzzer once crashed on, saved in `tests/fuzz-regressions/<target>/`, goes
//! through the same function the cargo-fuzz binary calls (`fuzz/src/checks.rs`, included
//! here), so `cargo test` keeps the targets' code paths and their invariants honest
//! without nightly or libFuzzer. See docs/FUZZING.md.

#[path = "../../../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

/// Runs every file of `dir/<target>/` through its target; returns how many ran.
fn run_dir(dir: &Path) -> usize {
    let mut ran = 0;
    for target in checks::TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let data = std::fs::read(&path).expect("input file");
            let outcome = std::panic::catch_unwind(|| checks::run(target, &data));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            ran += 1;
        }
    }
    ran
}

#[test]
fn seeds_pass_every_target() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    for target in checks::TARGETS {
        assert!(seeds.join(target).is_dir(), "no seeds for {target}");
    }
    assert!(run_dir(&seeds) >= checks::TARGETS.len());
}

#[test]
fn saved_fuzz_crashes_stay_fixed() {
    run_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions"));
}
