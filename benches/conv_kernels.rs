//! fulmen's flex kernels against Burn's built-in ops, side by side in one process: per-layer
//! forward+backward times for the tutorial CNN's four convs and two pools (batch 128), and
//! whole training steps (forward, NLL, backward, Adam) in img/s at batch 32 and 128. With
//! `BENCH_PYTHON` set to a Python that has PyTorch, the same step in PyTorch (benches/
//! pytorch_step.py, same thread count) is measured in the same run.
//!
//! `cargo bench --bench conv_kernels` (env: BENCH_ROUNDS, BENCH_STEPS, BENCH_PYTHON).

#[path = "../tests/common/seed_cnn.rs"]
mod seed_cnn;

use std::time::Instant;

use fulmen::burn::optim::{AdamConfig, GradientsParams};
use fulmen::burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use fulmen::burn::tensor::{Int, TensorData};
use fulmen::kernels;
use fulmen::loss::nll_loss;
use fulmen::prelude::*;
use seed_cnn::{SeedCnn, SeedConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn input<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    Tensor::from_data(TensorData::new((0..n).map(|i| ((i as f32) * 0.37).sin()).collect::<Vec<f32>>(), shape), device)
}

/// Milliseconds for one forward + backward of `op` on `x` (median of `rounds`, after a warm-up).
fn time_op(rounds: usize, x: &Tensor<4>, op: &dyn Fn(Tensor<4>) -> Tensor<4>) -> f64 {
    let run = || {
        let x = x.clone().require_grad();
        let start = Instant::now();
        let y = op(x.clone());
        let grads = y.sum().backward();
        let _ = x.grad(&grads).expect("a gradient").into_data();
        start.elapsed().as_secs_f64() * 1e3
    };
    run();
    median((0..rounds).map(|_| run()).collect())
}

fn layers(rounds: usize) {
    let device = Device::flex().autodiff();
    println!("per layer, batch 128, forward + backward (ms, median of {rounds}):");
    println!("{:<34}{:>10}{:>10}{:>8}", "layer", "built-in", "fulmen", "ratio");
    let convs = [("conv1 3→32 @32×32", 3, 32, 32), ("conv2 32→32 @30×30", 32, 32, 30), ("conv3 32→64 @14×14", 32, 64, 14), ("conv4 64→64 @12×12", 64, 64, 12)];
    for (name, cin, cout, size) in convs {
        let x = input([128, cin, size, size], &device);
        let w = input([cout, cin, 3, 3], &device).require_grad();
        let b = input([cout], &device).require_grad();
        let op = |x: Tensor<4>| kernels::conv2d(x, w.clone(), Some(b.clone()), ConvOptions::new([1, 1], [0, 0], [1, 1], 1));
        report(name, rounds, &x, &op);
    }
    for (name, channels, size) in [("max_pool(2) 32 @28×28", 32, 28), ("max_pool(2) 64 @10×10", 64, 10)] {
        let x = input([128, channels, size, size], &device);
        report(name, rounds, &x, &|x| kernels::max_pool2d(x, MaxPoolOptions::new([2, 2])));
    }
}

fn report(name: &str, rounds: usize, x: &Tensor<4>, op: &dyn Fn(Tensor<4>) -> Tensor<4>) {
    kernels::set_enabled(false);
    let builtin = time_op(rounds, x, op);
    kernels::set_enabled(true);
    let fast = time_op(rounds, x, op);
    println!("{name:<34}{builtin:>10.1}{fast:>10.1}{:>7.2}×", builtin / fast);
}

/// img/s of `steps` training steps of the tutorial CNN at `batch`.
fn train_steps(batch: usize, steps: usize) -> f64 {
    let device = Device::flex().autodiff();
    fulmen::seed_everything(5, &device);
    let mut model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10), &device).expect("valid model");
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let x = input([batch, 3, 32, 32], &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new((0..batch as i64).map(|i| i % 10).collect::<Vec<_>>(), [batch]), &device);
    let mut step = |model: SeedCnn| {
        let loss = nll_loss(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (optim.step(1e-3, model, grads), loss)
    };
    model = step(model).0; // warm-up
    let start = Instant::now();
    let mut last = None;
    for _ in 0..steps {
        let (next, loss) = step(model);
        model = next;
        last = Some(loss);
    }
    let _ = last.map(|l| l.into_data()); // wait for the last step
    (batch * steps) as f64 / start.elapsed().as_secs_f64()
}

/// Median img/s with Burn's ops and with fulmen's kernels, in alternating rounds.
fn both_ways(batch: usize, rounds: usize, steps: usize) -> (f64, f64) {
    let (mut builtin, mut fast) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        kernels::set_enabled(false);
        builtin.push(train_steps(batch, steps));
        kernels::set_enabled(true);
        fast.push(train_steps(batch, steps));
    }
    (median(builtin), median(fast))
}

fn pytorch(batch: usize, steps: usize) -> Option<f64> {
    let python = std::env::var("BENCH_PYTHON").ok()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_step.py");
    let out = std::process::Command::new(python)
        .args([script, &batch.to_string(), &steps.to_string(), &rayon_threads().to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    let rounds = env("BENCH_ROUNDS", 5);
    let steps = env("BENCH_STEPS", 20);
    println!("threads: {}", rayon_threads());
    layers(rounds);
    println!("\nwhole training step of the tutorial CNN (img/s, median of {rounds} rounds of {steps} steps):");
    println!("{:>6}{:>10}{:>10}{:>10}{:>9}{:>12}", "batch", "built-in", "fulmen", "PyTorch", "speedup", "vs PyTorch");
    for batch in [32, 128] {
        let (builtin, fast) = both_ways(batch, rounds, steps);
        let torch = pytorch(batch, steps);
        let torch_text = torch.map_or("-".to_string(), |t| format!("{t:.0}"));
        let ratio = torch.map_or("-".to_string(), |t| format!("{:.2}×", fast / t));
        println!("{batch:>6}{builtin:>10.0}{fast:>10.0}{torch_text:>10}{:>8.2}×{ratio:>12}", fast / builtin);
    }
    // The allocator effect: the same comparison with glibc's thresholds raised (what the Trainer does).
    println!("\nwith fulmen::allocator::tune() (mmap threshold 32 MiB, trim 1 GiB): {}", fulmen::allocator::tune());
    for batch in [32, 128] {
        let (builtin, fast) = both_ways(batch, rounds, steps);
        println!("{batch:>6}{builtin:>10.0}{fast:>10.0}{:>20.2}×", fast / builtin);
    }
    if std::env::var("BENCH_PYTHON").is_err() {
        println!("(PyTorch: set BENCH_PYTHON to a Python with torch to measure it in the same run)");
    }
}
