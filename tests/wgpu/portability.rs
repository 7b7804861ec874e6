//! Checkpoints are portable across devices: one written on wgpu loads bit-identically and resumes
//! on flex, and one written on flex on wgpu. The resumed epoch follows the uninterrupted run's to
//! the devices' arithmetic (its first step exactly as a forward pass does, see `agreement`).

use fulmen::prelude::*;

use crate::seed_cnn::SeedCnn;
use crate::training::{Run, SEED, curve_difference, data, on_flex, on_wgpu, trainer};
use crate::{probe, seed_cnn, weights, wgpu};

/// Loads `run`'s last checkpoint on `device` and reads the weights back.
fn last_weights_on(run: &Run, device: &Device) -> Vec<Vec<f32>> {
    weights(&SeedCnn::load_from_checkpoint(run.version.join("checkpoints/last.ckpt"), device).unwrap())
}

/// Resumes `run` from its epoch-1 checkpoint on `accelerator` and returns epoch 2's losses.
fn resume(run: &Run, accelerator: fulmen::Accelerator) -> Vec<(u64, f64)> {
    let root = probe::temp_dir(&format!("wgpu-resume-on-{accelerator}"));
    let mut trainer = trainer(accelerator, &root, 2);
    let resumed = trainer.fit_from(seed_cnn(SEED), &mut data(), run.version.join("checkpoints/epoch=0-step=8.ckpt")).unwrap();
    assert_eq!(resumed.devices() == vec![Device::flex()], accelerator == fulmen::Accelerator::Cpu, "{accelerator}: resumed on {:?}", resumed.devices());
    assert_eq!((trainer.state().epoch, trainer.state().global_step), (2, 16));
    probe::column(&probe::read_csv(&root.join("lightning_logs/version_0/metrics.csv")), "train_loss_step")
}

#[test]
fn a_checkpoint_written_on_wgpu_loads_bit_identically_and_resumes_on_flex() {
    let run = on_wgpu();
    assert_eq!(last_weights_on(run, &Device::flex()), run.weights, "last.ckpt holds the wgpu run's final weights");
    let resumed = resume(run, fulmen::Accelerator::Cpu);
    check_resumed(&resumed, run);
}

#[test]
fn a_checkpoint_written_on_flex_loads_bit_identically_and_resumes_on_wgpu() {
    let run = on_flex();
    assert_eq!(last_weights_on(run, &wgpu()), run.weights, "last.ckpt holds the flex run's final weights");
    let resumed = resume(run, fulmen::Accelerator::Wgpu);
    check_resumed(&resumed, run);
}

/// Epoch 2 resumed on the other device against the uninterrupted run's epoch 2.
fn check_resumed(resumed: &[(u64, f64)], run: &Run) {
    let uninterrupted = &run.losses[8..];
    assert_eq!(resumed.len(), 8, "the resumed run trains epoch 2 only: {resumed:?}");
    let first = ((resumed[0].1 - uninterrupted[0].1) / uninterrupted[0].1).abs();
    assert!(first < 1e-4, "the first resumed step's loss {} against {}", resumed[0].1, uninterrupted[0].1);
    let curve = curve_difference(resumed, uninterrupted);
    assert!(curve < 1e-3, "epoch 2 differs by {curve:e}: resumed {resumed:?}, uninterrupted {uninterrupted:?}");
    eprintln!("resumed on the other device: first loss {first:e}, epoch 2 {curve:e}");
}
