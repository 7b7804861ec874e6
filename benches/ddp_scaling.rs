//! Data-parallel scaling on this machine: the tutorial's CNN on generated images, one process
//! with every core against `mpirun -np 2` with one core each (the same global batch of 32, and
//! 2 × 32), and what the gradient all-reduce costs per step.
//!
//! `cargo bench --features mpi --bench ddp_scaling` (env: BENCH_IMAGES per epoch, BENCH_EPOCHS;
//! the first epoch is warm-up). Needs Open MPI's `mpirun`.

#[path = "../tests/common/seed_cnn.rs"]
mod seed_cnn;

use std::process::Command;
use std::time::Instant;

use fulmen::prelude::*;
use seed_cnn::{SeedCnn, SeedConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Wall time of every training epoch.
#[derive(Default)]
struct EpochTimer {
    start: Option<Instant>,
    seconds: Vec<f64>,
}

impl Callback<SeedCnn> for EpochTimer {
    fn on_train_epoch_start(&mut self, _: &mut TrainerView<'_, SeedCnn>) -> fulmen::Result<()> {
        self.start = Some(Instant::now());
        Ok(())
    }
    fn on_train_epoch_end(&mut self, trainer: &mut TrainerView<'_, SeedCnn>) -> fulmen::Result<()> {
        self.seconds.push(self.start.take().map_or(0.0, |s| s.elapsed().as_secs_f64()));
        let state = trainer.state();
        if state.epoch + 1 == env("BENCH_EPOCHS", 3) as u64 && state.is_global_zero() {
            let timed = &self.seconds[1..];
            let images = env("BENCH_IMAGES", 2048) as f64 * timed.len() as f64;
            let seconds: f64 = timed.iter().sum();
            let sync = state.gradient_sync.as_secs_f64() * 1000.0 / state.global_step.max(1) as f64;
            println!("RESULT {:.0} {sync:.2}", images / seconds);
        }
        Ok(())
    }
}

/// One rank: `batch` images per step on this rank.
fn worker(batch: usize) -> fulmen::Result<()> {
    let images = env("BENCH_IMAGES", 2048);
    let mut dm = SyntheticDataModule::new(7).sizes(images, batch, batch).batch_size(batch);
    let mut trainer = Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .max_epochs(env("BENCH_EPOCHS", 3) as u64)
        .limit_val_batches(0)
        .num_sanity_val_steps(0)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .no_logger()
        .seed(1)
        .callback(EpochTimer::default())
        .build()?;
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10), trainer.device())?;
    trainer.fit(model, &mut dm)?;
    Ok(())
}

/// Runs one configuration; returns (img/s, ms of gradient all-reduce per step).
fn measure(processes: usize, batch: usize) -> (f64, f64) {
    let exe = std::env::current_exe().expect("this binary");
    let mut command = if processes == 1 {
        let mut c = Command::new(&exe);
        c.env("RAYON_NUM_THREADS", std::thread::available_parallelism().map_or(1, |n| n.get()).to_string());
        c
    } else {
        let mut c = Command::new("mpirun");
        c.args(["--allow-run-as-root", "--oversubscribe", "-np", &processes.to_string()]).arg(&exe);
        c
    };
    let output = command.args(["worker", &batch.to_string()]).output().expect("mpirun starts (is Open MPI installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line =
        stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| panic!("no result:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    let mut fields = line.split(' ').map(|f| f.parse::<f64>().expect("a number"));
    (fields.next().unwrap_or(0.0), fields.next().unwrap_or(0.0))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        if let Err(e) = worker(args[2].parse().expect("a batch size")) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("ddp scaling, the tutorial CNN on generated images, {cores} cores, {} images per epoch", env("BENCH_IMAGES", 2048));
    let (base, _) = measure(1, 32);
    println!("{:<52} {:>8} {:>8} {:>18}", "configuration", "img/s", "ratio", "all-reduce ms/step");
    println!("{:<52} {base:>8.0} {:>8.2} {:>18}", format!("1 process × {cores} threads, batch 32"), 1.0, "-");
    for (batch, label) in [(16, "global batch 32"), (32, "global batch 64")] {
        let (rate, sync) = measure(2, batch);
        println!("{:<52} {rate:>8.0} {:>8.2} {sync:>18.2}", format!("2 processes × 1 thread, {batch} each ({label})"), rate / base);
    }
}
