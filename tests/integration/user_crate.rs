//! A crate outside the workspace, depending on `fulmen` by path and on nothing else, defines its
//! own hyperparameters and derived model and fits it: proof that user crates need no other
//! dependency (no `burn`, no `serde`). It builds into this workspace's target folder, so only the
//! user crate itself is compiled.

use std::process::Command;

use crate::probe::temp_dir;

const MAIN: &str = r#"
use fulmen::prelude::*;

#[hyperparameters]
pub struct TinyConfig {
    pub input_shape: [usize; 3],
    pub num_classes: usize,
    #[hparam(default = 3e-3, range = 1e-6..=1.0)]
    pub learning_rate: f64,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = TinyConfig, metrics(accuracy), optimizer = adam(lr = learning_rate))]
pub struct Tiny {
    #[layer(conv2d(3 -> 8, kernel = 3, stride = 2), relu, max_pool(2))]
    conv: Conv2d,
    #[layer(linear(auto -> num_classes))]
    head: Linear,
    #[module(skip)]
    hparams: TinyConfig,
}

fn main() -> fulmen::Result<()> {
    let root = std::env::args().nth(1).expect("root dir");
    let mut trainer = Trainer::builder()
        .max_epochs(2)
        .accelerator(Accelerator::Cpu)
        .enable_progress_bar(false)
        .default_root_dir(root)
        .build()?;
    let model = Tiny::new(TinyConfig::new([3, 32, 32], 10), trainer.device())?;
    let mut dm = SyntheticDataModule::new(1).sizes(256, 64, 64).batch_size(32);
    let model = trainer.fit(model, &mut dm)?;
    let metrics = trainer.test(&model, &mut dm)?;
    println!("steps={} test_acc={}", trainer.state().global_step, metrics["test_acc"]);
    Ok(())
}
"#;

/// Builds `main_rs` as the binary of a crate `name` outside the workspace that depends on
/// `fulmen` alone (by path, default features) and returns the binary's path.
pub fn build(name: &str, main_rs: &str) -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir(name);
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nfulmen = {{ path = {:?} }}\n\n[workspace]\n",
        workspace.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.rs"), main_rs).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", workspace.join("target"))
        .args(["build", "--release", "--offline", "--quiet"])
        .output()
        .unwrap();
    assert!(output.status.success(), "the user crate {name} does not build:\n{}", String::from_utf8_lossy(&output.stderr));
    let _ = std::fs::remove_dir_all(dir);
    workspace.join("target/release").join(name)
}

#[test]
fn a_crate_outside_the_workspace_needs_only_fulmen() {
    let dir = temp_dir("user-crate-run");
    let logs = dir.join("logs");
    let output = Command::new(build("user_model", MAIN)).arg(&logs).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the user crate failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find(|l| l.starts_with("steps=")).unwrap_or_else(|| panic!("no result line in:\n{stdout}"));
    assert!(line.starts_with("steps=16 "), "{line}");
    let acc: f64 = line.rsplit('=').next().unwrap().parse().unwrap();
    assert!(acc > 0.2, "the user crate's model did not learn: {line}");
    assert!(logs.join("lightning_logs/version_0/hparams.yaml").is_file());
    let _ = std::fs::remove_dir_all(dir);
}
