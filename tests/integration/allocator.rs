//! The Trainer raises glibc's malloc thresholds when it is built (unless told not to), so a
//! step's large buffers come from the reused heap instead of fresh mappings. Checked in child
//! processes, since the setting is process-wide: after `build()`, does a 24 MiB block get its
//! own mapping?

use fulmen::prelude::*;

use crate::seed_cnn::SeedCnn;

const CHILD: &str = "FULMEN_TEST_ALLOCATOR_CHILD";
const BLOCK: usize = 24 << 20;

/// In a child: builds a Trainer (`builder-off`: with `tune_allocator(false)`), allocates one
/// block and fails unless it was mapped on its own exactly when `expect-mapped` says so.
fn allocate_as_child() -> bool {
    let Ok(mode) = std::env::var(CHILD) else { return false };
    let builder = Trainer::<SeedCnn>::builder().accelerator(fulmen::Accelerator::Cpu).no_logger().enable_progress_bar(false);
    let builder = if mode.contains("builder-off") { builder.tune_allocator(false) } else { builder };
    let _trainer = builder.build().unwrap();
    let before = fulmen::allocator::mmapped_bytes().unwrap();
    let block = std::hint::black_box(vec![1u8; BLOCK]);
    let mapped = fulmen::allocator::mmapped_bytes().unwrap() - before;
    drop(block);
    let expect_mapped = mode.contains("expect-mapped");
    assert_eq!(mapped >= BLOCK, expect_mapped, "{mode}: {mapped} bytes newly mapped for a {BLOCK}-byte block");
    true
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_trainer_keeps_large_buffers_on_the_heap_unless_told_not_to() {
    if allocate_as_child() {
        return;
    }
    for (mode, env) in [("tuned", None), ("env-off expect-mapped", Some("0")), ("builder-off expect-mapped", None)] {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command.args(["--exact", "allocator::the_trainer_keeps_large_buffers_on_the_heap_unless_told_not_to", "--test-threads=1"]).env(CHILD, mode);
        match env {
            Some(value) => command.env("FULMEN_TUNE_ALLOCATOR", value),
            None => command.env_remove("FULMEN_TUNE_ALLOCATOR"),
        };
        let out = command.output().unwrap();
        assert!(out.status.success(), "child {mode}: {}", String::from_utf8_lossy(&out.stdout));
    }
}
