//! Compile errors of the macros, pinned by trybuild snapshots (`tests/ui/<category>/*.stderr`),
//! and pass cases built under `#![deny(warnings)]` and run.
//! Regenerate snapshots after an intended change with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    // Without debug info: each pass case links all of Burn, 0.4-1 GiB per binary with full debug
    // info, which filled CI's disk.
    // SAFETY: this binary's one test sets the variable before trybuild starts cargo, and nothing
    // else in the process reads or writes the environment.
    unsafe { std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false") };
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/hparams/*.rs");
    t.compile_fail("tests/ui/layers/*.rs");
    t.compile_fail("tests/ui/lightning/*.rs");
    t.compile_fail("tests/ui/shapes/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
