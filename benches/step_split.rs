//! Where a training step's time goes: the tutorial CNN under fulmen's Trainer, one warm-up epoch
//! then one measured epoch per batch size, split into the step's phases (from the Trainer's hooks)
//! and, inside them, fulmen's own ops (`fulmen::kernels::timing`): waiting for data, conv / relu /
//! max-pool / linear forward, the rest of the forward (loss, log-softmax, metrics, `log`, autodiff
//! bookkeeping), conv / relu / max-pool backward, the rest of the backward (Burn's linear and
//! elementwise gradients, autodiff), the optimizer update and the rest of the optimizer step, the
//! loop and logging between batches; then how busy the cores were (idle = threads waiting).
//! Prints the CPU model and the instruction sets the kernels use.
//!
//! `cargo bench --bench step_split` (env: BENCH_IMAGES per epoch, default 4096; BENCH_BATCHES,
//! default "32,128"; BENCH_WORKERS, the loader's threads, default 2; BENCH_PRECISION, default
//! 32-true).

#[path = "../tests/common/seed_cnn.rs"]
mod seed_cnn;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fulmen::kernels::timing::{self, Op};
use fulmen::prelude::*;
use fulmen::usage::{Span, Usage};
use seed_cnn::{SeedCnn, SeedConfig};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A step's phases, between the Trainer's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// on_train_batch_end → on_train_batch_start: the loop, logging, the next batch.
    Between,
    /// on_train_batch_start → on_before_backward: training_step.
    Forward,
    /// on_before_backward → on_after_backward.
    Backward,
    /// on_after_backward → on_train_batch_end: gradients to the optimizer, the update.
    Optimizer,
}

const PHASES: [Phase; 4] = [Phase::Between, Phase::Forward, Phase::Backward, Phase::Optimizer];

#[derive(Default)]
struct Split {
    phase: [Duration; 4],
    ops: Vec<(Op, Phase, Duration)>,
    steps: usize,
    epoch: Option<Span>,
}

/// Records the phases of every batch of the second epoch.
struct Recorder {
    split: Arc<Mutex<Split>>,
    last: Option<(Phase, Instant)>,
    measuring: bool,
    epoch_start: Option<Usage>,
}

impl Recorder {
    /// Closes the running phase (its wall time and the ops timed in it) and opens `next`.
    fn mark(&mut self, next: Option<Phase>) {
        let now = Instant::now();
        let ops = timing::take();
        if let (true, Some((phase, since))) = (self.measuring, self.last) {
            let mut split = self.split.lock().unwrap();
            split.phase[phase as usize] += now - since;
            for (op, d) in ops {
                split.ops.push((op, phase, d));
            }
        }
        self.last = next.map(|p| (p, now));
    }
}

impl Callback<SeedCnn> for Recorder {
    fn on_train_epoch_start(&mut self, trainer: &mut TrainerView<'_, SeedCnn>) -> fulmen::Result<()> {
        self.measuring = trainer.state().epoch == 1;
        timing::set_enabled(self.measuring);
        let _ = timing::take();
        self.epoch_start = Some(Usage::now());
        self.last = Some((Phase::Between, Instant::now()));
        Ok(())
    }
    fn on_train_epoch_end(&mut self, _: &mut TrainerView<'_, SeedCnn>) -> fulmen::Result<()> {
        self.mark(None);
        if self.measuring {
            self.split.lock().unwrap().epoch = self.epoch_start.map(|u| u.since());
        }
        timing::set_enabled(false);
        Ok(())
    }
    fn on_train_batch_start(&mut self, _: &mut TrainerView<'_, SeedCnn>, _: usize) -> fulmen::Result<()> {
        self.mark(Some(Phase::Forward));
        Ok(())
    }
    fn on_before_backward(&mut self, _: &mut TrainerView<'_, SeedCnn>, _: &Tensor<1>) -> fulmen::Result<()> {
        self.mark(Some(Phase::Backward));
        Ok(())
    }
    fn on_after_backward(&mut self, _: &mut TrainerView<'_, SeedCnn>) -> fulmen::Result<()> {
        self.mark(Some(Phase::Optimizer));
        Ok(())
    }
    fn on_train_batch_end(&mut self, _: &mut TrainerView<'_, SeedCnn>, _: usize) -> fulmen::Result<()> {
        self.mark(Some(Phase::Between));
        if self.measuring {
            self.split.lock().unwrap().steps += 1;
        }
        Ok(())
    }
}

fn measure(batch: usize, images: usize, workers: usize, precision: Precision) -> Split {
    let root = std::env::temp_dir().join(format!("fulmen-step-split-{}", std::process::id()));
    let split = Arc::new(Mutex::new(Split::default()));
    let recorder = Recorder { split: split.clone(), last: None, measuring: false, epoch_start: None };
    let mut trainer = Trainer::builder()
        .max_epochs(2)
        .accelerator(fulmen::Accelerator::Cpu)
        .precision(precision)
        .limit_val_batches(0)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .default_root_dir(&root)
        .callback(recorder)
        .build()
        .expect("trainer");
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10), trainer.device()).expect("model");
    let mut dm = SyntheticDataModule::new(7).sizes(images, batch, batch).batch_size(batch).num_workers(workers).in_memory(true);
    trainer.fit(model, &mut dm).expect("fit");
    let _ = std::fs::remove_dir_all(root);
    std::mem::take(&mut *split.lock().unwrap())
}

fn instruction_sets() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let has = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bf16", std::arch::is_x86_feature_detected!("avx512bf16")),
            ("avx512fp16", std::arch::is_x86_feature_detected!("avx512fp16")),
        ];
        let list: Vec<&str> = has.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect();
        let kernels = if std::arch::is_x86_feature_detected!("avx512f") { "AVX-512 (x86-64-v4)" } else { "AVX2 + FMA (x86-64-v3)" };
        format!("CPU has {}; gemm and the kernels' transforms run {kernels}", list.join(" "))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "not x86-64".to_string()
    }
}

fn main() {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let threads =
        std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("{model}, {threads} threads; {}", instruction_sets());
    let images: usize = env("BENCH_IMAGES", "4096").parse().expect("BENCH_IMAGES");
    let workers: usize = env("BENCH_WORKERS", "2").parse().expect("BENCH_WORKERS");
    let precision: Precision = env("BENCH_PRECISION", "32-true").parse().expect("BENCH_PRECISION: a precision name");
    for batch in env("BENCH_BATCHES", "32,128").split(',').map(|b| b.trim().parse::<usize>().expect("a batch size")) {
        let split = measure(batch, images, workers, precision);
        let steps = split.steps.max(1) as f64;
        let epoch = split.epoch.expect("the measured epoch ran");
        let step_ms = |d: Duration| d.as_secs_f64() * 1e3 / steps;
        let total: Duration = split.phase.iter().sum();
        println!(
            "\nbatch {batch}, {}: {} steps, {:.2} ms/step, {:.0} img/s, CPU use {:.0}% of {threads} threads",
            precision.name(),
            split.steps,
            step_ms(total),
            steps * batch as f64 / total.as_secs_f64(),
            epoch.cpu_percent()
        );
        println!("{:<34} {:>9} {:>7}", "part of the step", "ms/step", "share");
        let row = |name: &str, d: Duration| println!("{name:<34} {:>9.3} {:>6.1}%", step_ms(d), 100.0 * d.as_secs_f64() / total.as_secs_f64());
        for phase in PHASES {
            let ops: Vec<(Op, Duration)> = Op::ALL
                .iter()
                .map(|op| (*op, split.ops.iter().filter(|(o, p, _)| o == op && *p == phase).map(|(_, _, d)| *d).sum::<Duration>()))
                .filter(|(_, d)| !d.is_zero())
                .collect();
            let inside: Duration = ops.iter().map(|(_, d)| *d).sum();
            for (op, d) in &ops {
                row(op.name(), *d);
            }
            let rest = split.phase[phase as usize].saturating_sub(inside);
            row(
                match phase {
                    Phase::Between => "loop, logging, batch hand-over",
                    Phase::Forward => "rest of forward (loss, metrics, log)",
                    Phase::Backward => "rest of backward (Burn's ops)",
                    Phase::Optimizer => "rest of optimizer step",
                },
                rest,
            );
        }
        let idle = (epoch.wall.as_secs_f64() * threads as f64 - epoch.cpu.as_secs_f64()).max(0.0);
        println!(
            "{:<34} {:>9.3} {:>6.1}% of the threads' time",
            "idle (threads waiting)",
            idle * 1e3 / steps,
            100.0 * idle / (epoch.wall.as_secs_f64() * threads as f64)
        );
    }
}
