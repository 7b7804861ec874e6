//! Compile errors of the macros, pinned by trybuild snapshots (`tests/ui/<category>/*.stderr`),
//! and pass cases built under `#![deny(warnings)]` and run.
//! Regenerate snapshots after an intended change with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/hparams/*.rs");
    t.compile_fail("tests/ui/layers/*.rs");
    t.compile_fail("tests/ui/lightning/*.rs");
    t.compile_fail("tests/ui/shapes/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
