//! A short seeded fit on wgpu — metrics, `log`, callbacks, a checkpoint per epoch — then test and
//! predict, side by side with the same run on flex.

use std::path::PathBuf;
use std::sync::OnceLock;

use fulmen::Metrics;
use fulmen::prelude::*;

use crate::probe::{column, read_csv, temp_dir};
use crate::seed_cnn::SeedCnn;
use crate::{relative_difference, seed_cnn, weights};

/// The weights' seed, shared by every run here and in `portability`.
pub const SEED: u64 = 21;

/// What one run left.
pub struct Run {
    /// `lightning_logs/version_0` of the run.
    pub version: PathBuf,
    /// The trained weights, read back from the run's device.
    pub weights: Vec<Vec<f32>>,
    /// train_loss_step per global step.
    pub losses: Vec<(u64, f64)>,
    /// The test stage's metrics.
    pub test: Metrics,
    /// The predict stage's outputs, read to the host.
    pub predictions: Vec<Vec<f32>>,
}

/// 256 training, 64 validation, 64 test images, batch 32: 8 steps per epoch.
pub fn data() -> SyntheticDataModule {
    SyntheticDataModule::new(5).sizes(256, 64, 64).batch_size(32).num_workers(1)
}

/// A Trainer on `accelerator` for `max_epochs`, logging every step to CSV, a checkpoint per epoch.
pub fn trainer(accelerator: fulmen::Accelerator, root: &std::path::Path, max_epochs: u64) -> Trainer<SeedCnn> {
    Trainer::builder()
        .accelerator(accelerator)
        .max_epochs(max_epochs)
        .log_every_n_steps(1)
        .default_root_dir(root)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .logger(CsvLogger::default_root())
        .callback(EarlyStopping::new("val_loss").patience(3))
        .callback(ModelCheckpoint::monitor("val_loss").save_top_k(-1).save_last(true))
        .build()
        .unwrap()
}

fn run(accelerator: fulmen::Accelerator) -> Run {
    let root = temp_dir(&format!("wgpu-run-{accelerator}"));
    let mut trainer = trainer(accelerator, &root, 2);
    let mut dm = data();
    let fitted = trainer.fit(seed_cnn(SEED), &mut dm).unwrap();
    let on_cpu = fitted.devices() == vec![Device::flex()];
    assert_eq!(on_cpu, accelerator == fulmen::Accelerator::Cpu, "{accelerator}: trained on {:?}", fitted.devices());
    let test = trainer.test(&fitted, &mut dm).unwrap();
    let predictions = trainer.predict(&fitted, &mut dm).unwrap().into_iter().map(|p| p.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()).collect();
    let version = root.join("lightning_logs/version_0");
    let losses = column(&read_csv(&version.join("metrics.csv")), "train_loss_step");
    Run { version, weights: weights(&fitted), losses, test, predictions }
}

/// The wgpu run, made once for the tests that read it.
pub fn on_wgpu() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run(fulmen::Accelerator::Wgpu))
}

/// The same run on flex.
pub fn on_flex() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run(fulmen::Accelerator::Cpu))
}

/// The largest relative difference between two loss curves, step by step.
pub fn curve_difference(a: &[(u64, f64)], b: &[(u64, f64)]) -> f64 {
    assert_eq!(a.iter().map(|s| s.0).collect::<Vec<_>>(), b.iter().map(|s| s.0).collect::<Vec<_>>(), "the same steps");
    a.iter().zip(b).map(|(x, y)| ((x.1 - y.1) / y.1).abs()).fold(0.0, f64::max)
}

#[test]
fn a_seeded_fit_on_wgpu_logs_checkpoints_and_predicts_as_on_flex() {
    let (wgpu, flex) = (on_wgpu(), on_flex());
    // Every step logged, in order, with a finite loss; a checkpoint per epoch and last.ckpt.
    assert_eq!(wgpu.losses.iter().map(|s| s.0).collect::<Vec<_>>(), (0..16).collect::<Vec<_>>());
    let checkpoints = wgpu.version.join("checkpoints");
    for name in ["epoch=0-step=8.ckpt", "epoch=1-step=16.ckpt", "last.ckpt"] {
        assert!(checkpoints.join(name).is_file(), "{name} in {}", checkpoints.display());
    }
    let csv = read_csv(&wgpu.version.join("metrics.csv"));
    assert_eq!(column(&csv, "val_acc").len(), 2, "validation after each epoch");
    // Training follows flex's. The first step's loss is a forward pass (1e-4, see `agreement`).
    // Adam's first steps then amplify rounding: a near-zero gradient's sign decides a step of
    // the full learning rate, so the curves part slowly (measured: 2e-5 after 8 steps, 6e-3
    // after 16, while a run resumed from one checkpoint on both devices stays within 3e-7, see
    // `portability`). We hold epoch 1 to 1e-3 and the test metrics after epoch 2 to 2e-2; a
    // broken op or optimizer step is off by more than 1e-2 within the first steps.
    let first = ((wgpu.losses[0].1 - flex.losses[0].1) / flex.losses[0].1).abs();
    assert!(first < 1e-4, "first loss {} on wgpu, {} on flex", wgpu.losses[0].1, flex.losses[0].1);
    let curve = curve_difference(&wgpu.losses[..8], &flex.losses[..8]);
    assert!(curve < 1e-3, "epoch 1's losses differ by {curve:e}: wgpu {:?}, flex {:?}", wgpu.losses, flex.losses);
    let loss = (wgpu.test["test_loss"] - flex.test["test_loss"]).abs() / flex.test["test_loss"];
    assert!(loss < 2e-2, "test_loss {} on wgpu, {} on flex", wgpu.test["test_loss"], flex.test["test_loss"]);
    assert!((wgpu.test["test_acc"] - flex.test["test_acc"]).abs() <= 2.0 / 64.0, "test_acc {} vs {}", wgpu.test["test_acc"], flex.test["test_acc"]);
    // predict on wgpu gives what the same weights give on flex, to the forward pass's tolerance.
    assert_eq!(wgpu.predictions.len(), 2, "64 predict images in batches of 32");
    let on_flex = SeedCnn::load_from_checkpoint(wgpu.version.join("checkpoints/last.ckpt"), &Device::flex()).unwrap();
    let mut cpu = Trainer::builder().accelerator(fulmen::Accelerator::Cpu).no_logger().enable_progress_bar(false).build().unwrap();
    let flex_predictions = cpu.predict(&on_flex, &mut data()).unwrap();
    for (w, f) in wgpu.predictions.iter().zip(flex_predictions) {
        let d = relative_difference(w, &f.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        assert!(d < 1e-4, "predictions differ by {d:e}");
    }
    eprintln!("wgpu vs flex: first loss {first:e}, loss curve {curve:e}, test_loss {loss:e}");
}
