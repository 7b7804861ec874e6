//! The tutorial binary, built with `--features wgpu`, trains on the wgpu device when asked.

use std::process::Command;

use crate::probe::{same_features, temp_dir};

#[test]
fn the_tutorial_trains_on_wgpu_when_asked() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(temp_dir("wgpu-example"))
        .env("CARGO_TARGET_DIR", workspace.join("target"))
        .args(["run", "--release", "--offline", "--quiet", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .args(same_features())
        .args(["--example", "cifar", "--", "fit", "--data.synthetic", "true", "--trainer.fast_dev_run", "1", "--trainer.accelerator", "wgpu"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let summary = stdout.lines().find(|l| l.starts_with("GPU available: ")).unwrap_or_else(|| panic!("no device summary in {stdout}"));
    assert!(summary.contains("used: True (wgpu: ") || summary.contains("used: False (wgpu on the software device"), "{summary}");
    assert!(stdout.contains("test_acc") && stdout.contains("Trained 1 epochs (1 steps)"), "{stdout}");
}
