//! fulmen's flex kernels against Burn's built-in ops, side by side in one process: per-layer
//! forward+backward times for the tutorial CNN's four convs and two pools (batch 128), and
//! whole training steps (forward, NLL, backward, Adam) in img/s at batch 32 and 128. With
//! `BENCH_PYTHON` set to a Python that has PyTorch, the same step in PyTorch (benches/
//! pytorch_step.py, same thread count) is measured in the same run.
//!
//! Whole steps run in fresh child processes, with glibc malloc's defaults and with the thresholds
//! the Trainer sets (`fulmen::allocator`), each of them once per round.
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

/// One measured configuration of the whole training step.
#[derive(Clone, Copy)]
struct Setup {
    kernels: bool,
    tuned: bool,
}

impl Setup {
    const ALL: [Setup; 4] = [
        Setup { kernels: false, tuned: false },
        Setup { kernels: true, tuned: false },
        Setup { kernels: false, tuned: true },
        Setup { kernels: true, tuned: true },
    ];
}

/// img/s of one `Setup` in a fresh child process (this bench run with `BENCH_CHILD`), so that
/// the allocator starts from its defaults every time, as in a user's training process.
fn child(setup: Setup, batch: usize, steps: usize) -> f64 {
    let exe = std::env::current_exe().expect("the bench's own path");
    let out = std::process::Command::new(exe)
        .env("BENCH_CHILD", format!("{batch} {steps}"))
        .env("FULMEN_FAST_KERNELS", if setup.kernels { "1" } else { "0" })
        .env("FULMEN_TUNE_ALLOCATOR", if setup.tuned { "1" } else { "0" })
        .output()
        .expect("the bench can run itself");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| panic!("child printed {text:?}, stderr {}", String::from_utf8_lossy(&out.stderr)))
}

/// PyTorch's img/s for the same step, with glibc's defaults or with the thresholds fulmen sets.
fn pytorch(batch: usize, steps: usize, tuned: bool) -> Option<f64> {
    let python = std::env::var("BENCH_PYTHON").ok()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_step.py");
    let mut command = std::process::Command::new(python);
    command.args([script, &batch.to_string(), &steps.to_string(), &rayon_threads().to_string()]);
    if tuned {
        let (mmap, trim) = (fulmen::allocator::MMAP_THRESHOLD, fulmen::allocator::TRIM_THRESHOLD);
        command.env("GLIBC_TUNABLES", format!("glibc.malloc.mmap_threshold={mmap}:glibc.malloc.trim_threshold={trim}"));
    }
    let out = command.output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    if let Ok(job) = std::env::var("BENCH_CHILD") {
        let [batch, steps] = [0, 1].map(|i| job.split(' ').nth(i).and_then(|v| v.parse().ok()).expect("BENCH_CHILD = \"batch steps\""));
        fulmen::allocator::tune_unless_opted_out();
        println!("{}", train_steps(batch, steps));
        return;
    }
    let rounds = env("BENCH_ROUNDS", 5);
    let steps = env("BENCH_STEPS", 20);
    println!("threads: {}", rayon_threads());
    fulmen::allocator::tune();
    layers(rounds);
    println!("\nwhole training step of the tutorial CNN, img/s, median of {rounds} rounds of {steps} steps, each in a fresh process;");
    println!("glibc = malloc's defaults, tuned = fulmen::allocator::tune() (what the Trainer sets; GLIBC_TUNABLES for PyTorch):");
    println!("{:>6}{:>8}{:>10}{:>10}{:>10}{:>9}{:>12}", "batch", "malloc", "built-in", "fulmen", "PyTorch", "speedup", "vs PyTorch");
    for batch in [32, 128] {
        let mut runs = vec![Vec::new(); Setup::ALL.len()];
        for _ in 0..rounds {
            for (i, setup) in Setup::ALL.into_iter().enumerate() {
                runs[i].push(child(setup, batch, steps));
            }
        }
        let medians: Vec<f64> = runs.into_iter().map(median).collect();
        for (row, tuned) in [(0, false), (2, true)] {
            let (builtin, fast) = (medians[row], medians[row + 1]);
            let torch = pytorch(batch, steps, tuned);
            let torch_text = torch.map_or("-".to_string(), |t| format!("{t:.0}"));
            let ratio = torch.map_or("-".to_string(), |t| format!("{:.2}×", fast / t));
            let malloc = if tuned { "tuned" } else { "glibc" };
            println!("{batch:>6}{malloc:>8}{builtin:>10.0}{fast:>10.0}{torch_text:>10}{:>8.2}×{ratio:>12}", fast / builtin);
        }
    }
    if std::env::var("BENCH_PYTHON").is_err() {
        println!("(PyTorch: set BENCH_PYTHON to a Python with torch to measure it in the same run)");
    }
}
