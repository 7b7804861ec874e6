//! fulmen's flex kernels against Burn's own conv2d and max-pool on the same inputs: outputs and
//! input/weight/bias gradients, across strides, paddings, dilations, groups, batch 1 and odd
//! sizes; and the tutorial CNN trained both ways from one seed.

use fulmen::burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use fulmen::burn::tensor::{Device, Tensor, TensorData};
use fulmen::kernels;

fn values(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32 * 0.61 + seed).sin() * 3.1).fract()).collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: f32, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values(shape.iter().product(), seed), shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// The largest difference relative to the reference's largest magnitude (gradients are sums
/// of thousands of products, so each element carries rounding of the tensor's scale).
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().map(|v| v.abs()).fold(1.0, f32::max);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

/// Output and gradients of `Σ c · conv(x, w, b)` with one conv implementation.
fn conv_run(fast: bool, xs: [usize; 4], ws: [usize; 4], bias: bool, options: &ConvOptions<2>) -> Vec<Vec<f32>> {
    let device = Device::flex().autodiff();
    let x = tensor(xs, 0.3, &device).require_grad();
    let w = tensor(ws, 1.1, &device).require_grad();
    let b = bias.then(|| tensor([ws[0]], 2.3, &device).require_grad());
    let y = if fast {
        kernels::conv2d(x.clone(), w.clone(), b.clone(), options.clone())
    } else {
        fulmen::burn::tensor::module::conv2d(x.clone(), w.clone(), b.clone(), options.clone())
    };
    let c = tensor(y.dims(), 0.7, &device);
    let grads = (y.clone() * c).sum().backward();
    let mut out = vec![host(y), host(x.grad(&grads).unwrap()), host(w.grad(&grads).unwrap())];
    if let Some(b) = b {
        out.push(host(b.grad(&grads).unwrap()));
    }
    out
}

/// A conv case: input, weight, stride, padding (before, after) per axis, dilation, groups.
type ConvCase = ([usize; 4], [usize; 4], [usize; 2], [(usize, usize); 2], [usize; 2], usize);

/// A max-pool case: input, kernel, stride, padding, dilation.
type PoolCase = ([usize; 4], [usize; 2], [usize; 2], [usize; 2], [usize; 2]);

#[test]
fn conv2d_matches_burns_outputs_and_gradients() {
    let cases: [ConvCase; 9] = [
        ([4, 3, 32, 32], [32, 3, 3, 3], [1, 1], [(0, 0), (0, 0)], [1, 1], 1), // the tutorial's conv1
        ([2, 32, 14, 14], [64, 32, 3, 3], [1, 1], [(0, 0), (0, 0)], [1, 1], 1), // conv3 (Winograd)
        ([3, 16, 9, 11], [8, 16, 3, 3], [1, 1], [(1, 1), (0, 2)], [1, 1], 1), // Winograd: odd sizes, asymmetric padding
        ([1, 5, 11, 9], [7, 5, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1], 1),   // batch 1, odd sizes, stride 2
        ([3, 4, 10, 13], [6, 4, 5, 3], [1, 2], [(2, 2), (1, 1)], [2, 1], 1),  // dilation, mixed stride
        ([2, 6, 9, 9], [9, 2, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 3),    // groups
        ([2, 4, 8, 8], [4, 1, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 4),    // depthwise
        ([2, 3, 7, 8], [5, 3, 4, 4], [1, 1], [(1, 2), (1, 2)], [1, 1], 1),    // "same" with an even kernel
        ([3, 2, 6, 5], [4, 2, 1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),    // 1×1
    ];
    for (xs, ws, stride, padding, dilation, groups) in cases {
        let options = ConvOptions::new_with_padding(stride, padding, dilation, groups);
        for bias in [true, false] {
            let fast = conv_run(true, xs, ws, bias, &options);
            let burn = conv_run(false, xs, ws, bias, &options);
            for (what, (f, b)) in ["output", "input grad", "weight grad", "bias grad"].iter().zip(fast.iter().zip(&burn)) {
                let d = max_diff(f, b);
                assert!(
                    d < 5e-6,
                    "{what} differs by {d} for x {xs:?} w {ws:?} stride {stride:?} padding {padding:?} dilation {dilation:?} groups {groups} bias {bias}"
                );
            }
        }
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let device = Device::flex();
    let (xs, ws) = ([1, 2, 5, 6], [3, 2, 3, 3]);
    let options = ConvOptions::new([1, 2], [1, 1], [1, 1], 1);
    let grads = conv_run(true, xs, ws, false, &options);
    let (x0, w0) = (values(60, 0.3), values(54, 1.1));
    // The loss conv_run differentiated: Σ c · conv(x, w), c from seed 0.7.
    let reference = |x: &[f32], w: &[f32]| -> f64 {
        let xt = Tensor::<4>::from_data(TensorData::new(x.to_vec(), xs), &device);
        let wt = Tensor::<4>::from_data(TensorData::new(w.to_vec(), ws), &device);
        let y = kernels::conv2d(xt, wt, None, options.clone());
        let weights = tensor(y.dims(), 0.7, &device);
        host((y * weights).sum())[0] as f64
    };
    let h = 1e-2f32;
    for i in (0..x0.len()).step_by(7) {
        let (mut up, mut down) = (x0.clone(), x0.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (reference(&up, &w0) - reference(&down, &w0)) / (2.0 * h as f64);
        assert!((numeric - grads[1][i] as f64).abs() < 5e-3, "dx[{i}]: {} vs {numeric}", grads[1][i]);
    }
    for i in (0..w0.len()).step_by(5) {
        let (mut up, mut down) = (w0.clone(), w0.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (reference(&x0, &up) - reference(&x0, &down)) / (2.0 * h as f64);
        assert!((numeric - grads[2][i] as f64).abs() < 5e-3, "dw[{i}]: {} vs {numeric}", grads[2][i]);
    }
}

fn pool_run(fast: bool, xs: [usize; 4], options: &MaxPoolOptions<2>) -> Vec<Vec<f32>> {
    let device = Device::flex().autodiff();
    let x = tensor(xs, 0.5, &device).require_grad();
    let y = if fast { kernels::max_pool2d(x.clone(), options.clone()) } else { fulmen::burn::tensor::module::max_pool2d(x.clone(), options.clone()) };
    let c = tensor(y.dims(), 1.9, &device);
    let grads = (y.clone() * c).sum().backward();
    vec![host(y), host(x.grad(&grads).unwrap())]
}

#[test]
fn max_pool_matches_burns_outputs_and_gradients() {
    let cases: [PoolCase; 5] = [
        ([4, 32, 28, 28], [2, 2], [2, 2], [0, 0], [1, 1]), // the tutorial's pool after conv2
        ([1, 3, 7, 9], [3, 3], [2, 2], [1, 1], [1, 1]),    // odd sizes, padding, overlapping windows
        ([2, 2, 10, 11], [2, 3], [1, 2], [0, 1], [2, 1]),  // dilation, mixed strides
        ([2, 1, 5, 5], [5, 5], [1, 1], [0, 0], [1, 1]),    // one window covers everything
        ([3, 2, 6, 6], [3, 3], [3, 3], [0, 0], [1, 1]),
    ];
    for (xs, kernel, stride, padding, dilation) in cases {
        let options = MaxPoolOptions::new(kernel).with_stride(stride).with_padding(padding).with_dilation(dilation);
        let (fast, burn) = (pool_run(true, xs, &options), pool_run(false, xs, &options));
        assert_eq!(fast[0], burn[0], "outputs differ for {xs:?} kernel {kernel:?}");
        assert!(max_diff(&fast[1], &burn[1]) < 1e-6, "input grads differ for {xs:?} kernel {kernel:?}");
    }
}

#[test]
fn other_options_and_plain_tensors_take_burns_path_with_the_same_result() {
    // Without autodiff (inference), and ceil mode (not in the fast path) still agree with Burn.
    let device = Device::flex();
    let x = tensor([2, 3, 9, 9], 0.2, &device);
    let w = tensor([4, 3, 3, 3], 0.4, &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let fast = host(kernels::conv2d(x.clone(), w.clone(), None, options.clone()));
    let burn = host(fulmen::burn::tensor::module::conv2d(x.clone(), w, None, options));
    assert!(max_diff(&fast, &burn) < 2e-5);
    let ceil = MaxPoolOptions::new([2, 2]).with_ceil_mode(true);
    assert_eq!(host(kernels::max_pool2d(x.clone(), ceil.clone())), host(fulmen::burn::tensor::module::max_pool2d(x, ceil)));
}

#[test]
fn bf16_and_f16_convs_compute_in_f32_and_round_once() {
    use fulmen::burn::tensor::{DType, FloatDType};
    let device = Device::flex().autodiff();
    let options = ConvOptions::new([2, 1], [1, 1], [1, 1], 1);
    for (dtype, ulp) in [(FloatDType::BF16, 2f32.powi(-8)), (FloatDType::F16, 2f32.powi(-11))] {
        let low = |t: Tensor<4>| t.cast(dtype).detach().require_grad();
        let (x, w) = (low(tensor([2, 3, 9, 8], 0.3, &device)), low(tensor([5, 3, 3, 3], 1.1, &device)));
        let y = kernels::conv2d(x.clone(), w.clone(), None, options.clone());
        assert_eq!(y.dtype(), DType::from(dtype));
        // The same values in f32 through the f32 kernel, rounded once: bit for bit.
        let wide = |t: &Tensor<4>| t.clone().cast(FloatDType::F32).detach().require_grad();
        let (xf, wf) = (wide(&x), wide(&w));
        let yf = kernels::conv2d(xf.clone(), wf.clone(), None, options.clone());
        assert_eq!(host(y.clone()), host(yf.clone().cast(dtype)), "{dtype:?}: one rounding of the f32 result");
        // Gradients come back in the low dtype, within one rounding of the f32 ones.
        let c = tensor(y.dims(), 0.7, &device);
        let grads = (y.cast(FloatDType::F32) * c.clone()).sum().backward();
        let grads_f = (yf * c).sum().backward();
        for (what, low, wide) in
            [("input", x.grad(&grads).unwrap(), xf.grad(&grads_f).unwrap()), ("weight", w.grad(&grads).unwrap(), wf.grad(&grads_f).unwrap())]
        {
            assert_eq!(low.dtype(), DType::from(dtype), "{what} gradient");
            assert!(max_diff(&host(low), &host(wide)) <= ulp, "{dtype:?}: {what} gradient within one rounding");
        }
        // Max pooling picks one of the values: the same as Burn's pooling in the low dtype.
        let pool = MaxPoolOptions::new([2, 2]).with_stride([2, 2]);
        assert_eq!(host(kernels::max_pool2d(x.clone(), pool.clone())), host(fulmen::burn::tensor::module::max_pool2d(x, pool)));
    }
}

const MODEL_CHILD_ROOT: &str = "FULMEN_TEST_KERNELS_MODEL_ROOT";

/// In a child process: trains the tutorial CNN for 8 steps from seed 11, logging every step.
fn train_as_child() -> bool {
    use crate::seed_cnn::{SeedCnn, SeedConfig};
    use fulmen::prelude::*;
    let Ok(root) = std::env::var(MODEL_CHILD_ROOT) else { return false };
    let mut trainer = Trainer::builder()
        .max_epochs(1)
        .seed(11)
        .accelerator(fulmen::Accelerator::Cpu)
        .default_root_dir(&root)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .num_sanity_val_steps(0)
        .log_every_n_steps(1)
        .logger(CsvLogger::default_root())
        .build()
        .unwrap();
    fulmen::seed_everything(11, trainer.device());
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10).with_learning_rate(1e-3), trainer.device()).unwrap();
    let mut dm = SyntheticDataModule::new(2).sizes(256, 32, 32).batch_size(32).num_workers(0);
    trainer.fit(model, &mut dm).unwrap();
    true
}

#[test]
fn the_tutorial_cnn_trains_the_same_with_and_without_the_fast_kernels() {
    if train_as_child() {
        return;
    }
    let root = crate::probe::temp_dir("kernels-model");
    let losses = |fast: &str| {
        let dir = root.join(format!("fast-{fast}"));
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "kernels::the_tutorial_cnn_trains_the_same_with_and_without_the_fast_kernels", "--test-threads=1"])
            .env(MODEL_CHILD_ROOT, &dir)
            .env("FULMEN_FAST_KERNELS", fast)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the training child (FULMEN_FAST_KERNELS={fast}) failed");
        crate::probe::column(&crate::probe::read_csv(&dir.join("lightning_logs/version_0/metrics.csv")), "train_loss_step")
    };
    let (fast, burn) = (losses("1"), losses("0"));
    assert_eq!(fast.len(), 8, "{fast:?}");
    assert_eq!(fast.iter().map(|r| r.0).collect::<Vec<_>>(), burn.iter().map(|r| r.0).collect::<Vec<_>>());
    for ((step, a), (_, b)) in fast.iter().zip(&burn) {
        assert!((a - b).abs() < 1e-4, "step {step}: loss {a} with the fast kernels, {b} with Burn's");
    }
    assert!(fast.last().unwrap().1 < fast[0].1, "the loss did not go down: {fast:?}");
    let _ = std::fs::remove_dir_all(root);
}
