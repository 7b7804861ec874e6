//! Fast CPU kernels for flex: conv2d (forward and the three gradients by im2col + gemm, images in
//! parallel) and max-pool (window bounds computed once per row and column), with hand-written
//! backward passes through Burn's backend-extension mechanism. Burn's generic conv backward and
//! flex's scalar max-pool are where CPU training time goes (see the README's performance notes).
//!
//! [`conv2d`] and [`max_pool2d`] take the fast path when the tensor lives on flex and
//! `FULMEN_FAST_KERNELS` is not `0` (bf16 and f16 tensors widened to f32 around the kernel),
//! and call Burn's own ops otherwise (other devices, f64), so models stay device-agnostic.
//! The derive's generated `forward` calls them through `fulmen::nn`.

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::{DType, Dispatch, DispatchDevice};
use burn::tensor::Tensor;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};

mod adam;
mod cast;
pub mod conv2d;
mod elementwise;
mod extension;
mod matmul;
pub mod max_pool;
pub mod timing;
mod winograd;

pub use adam::FusedAdam;
pub use extension::FastOps;

/// 0: not decided yet (read `FULMEN_FAST_KERNELS`), 1: on, 2: off.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Whether the fast kernels are on: by default yes, unless `FULMEN_FAST_KERNELS=0`.
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var("FULMEN_FAST_KERNELS").map_or(true, |v| v.trim() != "0");
            STATE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
    }
}

/// Turns the fast kernels on or off for the whole process (for comparisons; ops already
/// recorded for a backward pass keep the path they took).
pub fn set_enabled(on: bool) {
    STATE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether `x` can take the fast path: flex (with or without autodiff), f32, kernels enabled.
fn fast_path(x: &Tensor<4>) -> bool {
    enabled() && x.dtype() == DType::F32 && on_flex(x)
}

/// Whether `x` is a bf16 or f16 tensor on flex, which the f32 kernels compute after widening:
/// flex has no low-precision arithmetic of its own (it converts each element to f32 and back),
/// so the f32 kernel with one widening of the inputs and one rounding of the output is both
/// faster and as exact (the sums accumulate in f32, as tensor cores accumulate them).
fn widened_path(x: &Tensor<4>) -> bool {
    widens(x)
}

/// Whether an op on `x` computes in f32 and rounds once: a bf16 or f16 tensor on flex, with the
/// fast kernels on.
pub fn widens<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && matches!(x.dtype(), DType::BF16 | DType::F16) && on_flex(x)
}

fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    matches!(x.device().without_autodiff().as_dispatch(), DispatchDevice::Flex(_))
}

/// conv2d as `burn::tensor::module::conv2d`: input `[N, C, H, W]`, weight `[C_out, C / groups,
/// KH, KW]`, optional bias `[C_out]`.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    if widened_path(&x) && weight.dtype() == x.dtype() {
        let dtype = x.dtype();
        let out = conv2d(cast(x, DType::F32), cast(weight, DType::F32), bias.map(|b| cast(b, DType::F32)), options);
        return cast(out, dtype);
    }
    let fits = conv2d::Geometry::new(x.dims(), weight.dims(), options.stride, options.padding, options.dilation, options.groups).is_ok()
        && bias.as_ref().is_none_or(|b| b.dims() == [weight.dims()[0]] && b.dtype() == DType::F32);
    if !fast_path(&x) || weight.dtype() != DType::F32 || !fits {
        // Burn's op, also for shapes that do not fit (it reports them in its own words).
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let out = match bias {
        Some(bias) => <Dispatch as FastOps>::fulmen_conv2d(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), options),
        None => <Dispatch as FastOps>::fulmen_conv2d_no_bias(x.into_dispatch(), weight.into_dispatch(), options),
    };
    Tensor::from_dispatch(out)
}

/// `x` in `dtype`, as `Tensor::cast` (differentiable: the gradient is cast back). On flex the
/// casts between f32 and f16 or bf16 run as whole buffers on the threads; others are Burn's.
pub fn cast<const D: usize>(x: Tensor<D>, dtype: DType) -> Tensor<D> {
    let from = x.dtype();
    if from == dtype {
        return x;
    }
    let fast = matches!((from, dtype), (DType::F32, DType::F16 | DType::BF16) | (DType::F16 | DType::BF16, DType::F32));
    if fast && enabled() && on_flex(&x) {
        return Tensor::from_dispatch(<Dispatch as FastOps>::fulmen_cast(x.into_dispatch(), dtype));
    }
    match dtype {
        DType::F64 => x.cast(burn::tensor::FloatDType::F64),
        DType::F32 => x.cast(burn::tensor::FloatDType::F32),
        DType::F16 => x.cast(burn::tensor::FloatDType::F16),
        DType::BF16 => x.cast(burn::tensor::FloatDType::BF16),
        _ => x,
    }
}

/// ReLU as `burn::tensor::activation::relu`, its forward and backward spread over the threads
/// on flex (f32, and f16 / bf16 on their bits without conversions); Burn's op elsewhere.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !(enabled() && matches!(x.dtype(), DType::F32 | DType::F16 | DType::BF16) && on_flex(&x)) {
        return burn::tensor::activation::relu(x);
    }
    Tensor::from_dispatch(<Dispatch as FastOps>::fulmen_relu(x.into_dispatch()))
}

/// 2-D max pooling as `burn::tensor::module::max_pool2d` (the fast path takes symmetric
/// padding without ceil mode; other options go to Burn's).
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    if widened_path(&x) {
        // Exact: every bf16 and f16 value is an f32 value, and the maximum is one of them.
        let dtype = x.dtype();
        return cast(max_pool2d(cast(x, DType::F32), options), dtype);
    }
    let symmetric = options.padding.iter().all(|(before, after)| before == after);
    let fits = max_pool::Geometry::new(x.dims(), options.kernel_size, options.stride, options.padding.map(|p| p.0), options.dilation).is_ok();
    if !fast_path(&x) || options.ceil_mode || !symmetric || !fits {
        return burn::tensor::module::max_pool2d(x, options);
    }
    let MaxPoolOptions { kernel_size, stride, padding, dilation, .. } = options;
    let padding = padding.map(|(before, _)| before);
    Tensor::from_dispatch(<Dispatch as FastOps>::fulmen_max_pool2d(x.into_dispatch(), kernel_size, stride, padding, dilation))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    fn bits(t: Tensor<2>) -> Vec<u32> {
        t.cast(burn::tensor::FloatDType::F32).to_data().try_to_vec::<f32>().expect("f32").iter().map(|v| v.to_bits()).collect()
    }

    /// ReLU and the casts, forward and gradient, equal Burn's ops to the bit in f32, f16 and
    /// bf16 (the fast path runs where the kernels are on: both are compared in one process by
    /// going through `burn::tensor` directly for the reference); an input still held elsewhere
    /// is not overwritten by the in-place ReLU.
    #[test]
    fn relu_and_casts_equal_burns_ops_forward_and_backward() {
        let device = burn::tensor::Device::flex().autodiff();
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let x = Tensor::<2>::random([97, 301], Distribution::Normal(0.0, 3.0), &device).require_grad();
            let weights = Tensor::<2>::random([97, 301], Distribution::Normal(0.0, 1.0), &device);
            let reference = |x: Tensor<2>| {
                let low = if dtype == DType::F32 { x } else { x.cast(burn::tensor::FloatDType::from(dtype)) };
                burn::tensor::activation::relu(low).cast(burn::tensor::FloatDType::F32)
            };
            let fast = |x: Tensor<2>| cast(relu(cast(x, dtype)), DType::F32);
            let (a, b) = (fast(x.clone()), reference(x.clone()));
            assert_eq!(bits(a.clone()), bits(b.clone()), "{dtype:?} forward");
            let grads_a = (a * weights.clone()).sum().backward();
            let grads_b = (b * weights.clone()).sum().backward();
            let (ga, gb) = (x.grad(&grads_a).expect("grad"), x.grad(&grads_b).expect("grad"));
            assert_eq!(bits(ga), bits(gb), "{dtype:?} gradient");
        }
        let held = Tensor::<2>::from_floats([[-1.0, 2.0], [3.0, -4.0]], &burn::tensor::Device::flex());
        let out = relu(held.clone());
        assert_eq!(held.to_data().try_to_vec::<f32>().unwrap(), [-1.0, 2.0, 3.0, -4.0]);
        assert_eq!(out.to_data().try_to_vec::<f32>().unwrap(), [0.0, 2.0, 3.0, 0.0]);
    }
}
