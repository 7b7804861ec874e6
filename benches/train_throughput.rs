//! Training throughput of the tutorial's CNN: fulmen's Trainer against a hand-written Burn loop
//! over the same model, data loader and backend. Prints img/s per batch size and the overhead.
//!
//! `cargo bench --bench train_throughput` (env: BENCH_EPOCHS, BENCH_IMAGES per epoch, BENCH_ROUNDS).
//! Overhead = how much faster the hand-written loop is (negative: the Trainer was faster).
//! Then the Trainer's img/s per precision (`BENCH_PRECISIONS`, default
//! `32-true,bf16-mixed,16-mixed,bf16-true`) at batch 32, against `32-true`.

#[path = "../tests/common/seed_cnn.rs"]
mod seed_cnn;

use std::time::Instant;

use fulmen::burn::optim::GradientsParams;
use fulmen::data::Loader;
use fulmen::loss::nll_loss;
use fulmen::prelude::*;
use seed_cnn::{SeedCnn, SeedConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Records the wall time of every training epoch.
#[derive(Default)]
struct EpochTimer {
    start: Option<Instant>,
    seconds: std::sync::Arc<std::sync::Mutex<Vec<f64>>>,
}

impl Callback<SeedCnn> for EpochTimer {
    fn on_train_epoch_start(&mut self, _: &mut TrainerView<'_, SeedCnn>) -> fulmen::Result<()> {
        self.start = Some(Instant::now());
        Ok(())
    }
    fn on_train_epoch_end(&mut self, _: &mut TrainerView<'_, SeedCnn>) -> fulmen::Result<()> {
        let elapsed = self.start.take().map_or(0.0, |s| s.elapsed().as_secs_f64());
        self.seconds.lock().expect("timer lock").push(elapsed);
        Ok(())
    }
}

fn data(batch: usize, images: usize) -> SyntheticDataModule {
    SyntheticDataModule::new(7).sizes(images, batch, batch).batch_size(batch)
}

fn model(device: &Device) -> SeedCnn {
    SeedCnn::new(SeedConfig::new([3, 32, 32], 10), device).expect("valid model")
}

/// Seconds per epoch with fulmen's Trainer (first epoch is warm-up).
fn trainer_epochs(batch: usize, images: usize, epochs: usize, precision: Precision) -> Vec<f64> {
    let root = std::env::temp_dir().join(format!("fulmen-bench-{}", std::process::id()));
    let timer = EpochTimer::default();
    let seconds = timer.seconds.clone();
    let mut trainer = Trainer::builder()
        .max_epochs(epochs as u64)
        .accelerator(fulmen::Accelerator::Cpu)
        .precision(precision)
        .limit_val_batches(0)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .default_root_dir(&root)
        .callback(timer)
        .build()
        .expect("trainer");
    let m = model(trainer.device());
    trainer.fit(m, &mut data(batch, images)).expect("fit");
    let _ = std::fs::remove_dir_all(root);
    seconds.lock().expect("timer lock").clone()
}

/// Seconds per epoch with a hand-written Burn loop (first epoch is warm-up).
fn hand_epochs(batch: usize, images: usize, epochs: usize) -> Vec<f64> {
    let device = Device::flex();
    let mut dm = data(batch, images);
    dm.setup(SetupStage::Fit).expect("setup");
    let loader: Loader<ClassificationBatch<4>> = dm.train_dataloader().expect("loader").to_device(&device);
    let mut model = model(&device).to_device(&device.clone().autodiff()).train();
    let mut optim = fulmen::adam(2e-4).optimizer;
    let mut seconds = Vec::new();
    for _ in 0..epochs {
        let start = Instant::now();
        for batch in loader.iter() {
            let batch = batch.expect("batch");
            let output = model.forward(batch.inputs);
            let loss = nll_loss(output, batch.targets);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(2e-4, model, grads);
        }
        seconds.push(start.elapsed().as_secs_f64());
    }
    seconds
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn main() {
    let epochs = env("BENCH_EPOCHS", 4).max(2);
    let images = env("BENCH_IMAGES", 2048);
    let rounds = env("BENCH_ROUNDS", 3).max(1);
    // The Trainer tunes malloc when it is built; the hand-written loop gets the same from the start.
    fulmen::allocator::tune();
    println!(
        "seed CNN training throughput, flex backend, {images} images/epoch, {rounds} alternating rounds of {} timed epochs (after 1 warm-up) each",
        epochs - 1
    );
    println!("{:>6} {:>16} {:>16} {:>16} {:>16} {:>9} {:>9}", "batch", "hand med img/s", "Trainer med", "hand best", "Trainer best", "ovh med", "ovh best");
    for batch in [32, 128] {
        let (mut hand, mut lit) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first, so neither always inherits the other's heap.
            if round % 2 == 0 {
                hand.extend(hand_epochs(batch, images, epochs).into_iter().skip(1));
                lit.extend(trainer_epochs(batch, images, epochs, Precision::F32).into_iter().skip(1));
            } else {
                lit.extend(trainer_epochs(batch, images, epochs, Precision::F32).into_iter().skip(1));
                hand.extend(hand_epochs(batch, images, epochs).into_iter().skip(1));
            }
        }
        let n = images as f64;
        let (hm, tm, hb, tb) = (n / median(hand.clone()), n / median(lit.clone()), n / best(&hand), n / best(&lit));
        println!("{batch:>6} {hm:>16.1} {tm:>16.1} {hb:>16.1} {tb:>16.1} {:>8.1}% {:>8.1}%", (hm / tm - 1.0) * 100.0, (hb / tb - 1.0) * 100.0);
    }

    let precisions = std::env::var("BENCH_PRECISIONS").unwrap_or_else(|_| "32-true,bf16-mixed,16-mixed,bf16-true".into());
    let precisions: Vec<Precision> = precisions.split(',').map(|p| p.parse().expect("a precision name")).collect();
    println!("\nTrainer img/s per precision, batch 32, {rounds} rounds of {} timed epochs", epochs - 1);
    println!("{:>12} {:>12} {:>12} {:>14}", "precision", "med img/s", "best img/s", "vs 32-true");
    let mut reference = None;
    for precision in precisions {
        let seconds: Vec<f64> = (0..rounds).flat_map(|_| trainer_epochs(32, images, epochs, precision).into_iter().skip(1)).collect();
        let (med, top) = (images as f64 / median(seconds.clone()), images as f64 / best(&seconds));
        let base = *reference.get_or_insert(med);
        println!("{:>12} {med:>12.1} {top:>12.1} {:>13.2}x", precision.name(), med / base);
    }
}
