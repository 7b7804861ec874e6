//! Gradients by parameter: clipping as Lightning does it — by the global L2 norm over all
//! parameters (`clip_grad_norm_`) or element-wise by value, on the device without reading
//! anything back — and the per-parameter bookkeeping of manual optimization (the gradients of
//! one optimizer's parameters, summed over backward passes, cleared by `zero_grad`).

use std::collections::HashSet;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor};

use crate::trainer::GradientClip;

/// Clips `grads` (the gradients of `model`'s parameters) in place.
pub fn clip<M: Module>(model: &M, grads: &mut GradientsParams, clip: GradientClip) {
    match clip {
        GradientClip::Value(v) => model.visit(&mut Apply { grads, op: Op::Clamp(v) }),
        GradientClip::Norm(max_norm) => {
            let mut squares = SumSquares { grads, total: None };
            model.visit(&mut squares);
            let Some(total) = squares.total else { return };
            // scale = min(1, max_norm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_.
            let scale = total.sqrt().add_scalar(1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);
            model.visit(&mut Apply { grads, op: Op::Scale(Box::new(scale)) });
        }
    }
}

/// Multiplies every gradient by `factor` (a loss scaler's unscale) and counts their elements
/// that are not finite, as one device scalar (`None` when there is no gradient).
pub fn unscale<M: Module>(model: &M, grads: &mut GradientsParams, factor: f64) -> Option<Tensor<1>> {
    let mut visitor = Unscale { grads, factor, non_finite: None };
    model.visit(&mut visitor);
    visitor.non_finite
}

/// `grads` with every gradient of `model`'s parameters in `dtype`.
pub fn cast<M: Module>(model: &M, grads: &mut GradientsParams, dtype: DType) {
    model.visit(&mut Apply { grads, op: Op::Cast(dtype) });
}

/// The gradients of `ids` (every parameter of `model` when `None`), copied out of `grads`.
pub fn select<M: Module>(model: &M, grads: &GradientsParams, ids: Option<&HashSet<ParamId>>) -> GradientsParams {
    let mut out = GradientsParams::new();
    model.visit(&mut Transfer { ids, op: TransferOp::Copy { from: grads, to: &mut out } });
    out
}

/// Removes the gradients of `ids` (every parameter when `None`) from `grads`.
pub fn remove<M: Module>(model: &M, grads: &mut GradientsParams, ids: Option<&HashSet<ParamId>>) {
    model.visit(&mut Transfer { ids, op: TransferOp::Remove(grads) });
}

/// Adds the gradients of `ids` (every parameter when `None`) in `new` to those in `sum`.
pub fn accumulate<M: Module>(model: &M, sum: &mut GradientsParams, mut new: GradientsParams, ids: Option<&HashSet<ParamId>>) {
    model.visit(&mut Transfer { ids, op: TransferOp::Add { from: &mut new, to: sum } });
}

enum TransferOp<'a> {
    Copy { from: &'a GradientsParams, to: &'a mut GradientsParams },
    Remove(&'a mut GradientsParams),
    Add { from: &'a mut GradientsParams, to: &'a mut GradientsParams },
}

/// Applies a [`TransferOp`] to the gradient of every parameter in `ids`.
struct Transfer<'a> {
    ids: Option<&'a HashSet<ParamId>>,
    op: TransferOp<'a>,
}

impl ModuleVisitor for Transfer<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.ids.is_some_and(|ids| !ids.contains(&param.id)) {
            return;
        }
        match &mut self.op {
            TransferOp::Copy { from, to } => {
                if let Some(grad) = from.get::<D>(param.id) {
                    to.register::<D>(param.id, grad);
                }
            }
            TransferOp::Remove(grads) => {
                grads.remove::<D>(param.id);
            }
            TransferOp::Add { from, to } => {
                if let Some(grad) = from.remove::<D>(param.id) {
                    let sum = match to.remove::<D>(param.id) {
                        Some(old) => old + grad,
                        None => grad,
                    };
                    to.register::<D>(param.id, sum);
                }
            }
        }
    }
}

/// Sums the squares of every gradient into one device scalar.
struct SumSquares<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SumSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let sum = grad.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + sum,
                None => sum,
            });
        }
    }
}

/// Scales every gradient and counts the non-finite elements.
struct Unscale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
    non_finite: Option<Tensor<1>>,
}

impl ModuleVisitor for Unscale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let grad = grad.mul_scalar(self.factor);
            let bad = grad.clone().is_finite().bool_not().float().sum();
            self.non_finite = Some(match self.non_finite.take() {
                Some(total) => total + bad,
                None => bad,
            });
            self.grads.register::<D>(param.id, grad);
        }
    }
}

enum Op {
    Clamp(f64),
    Scale(Box<Tensor<1>>),
    Cast(DType),
}

/// Rewrites every gradient with `op`.
struct Apply<'a> {
    grads: &'a mut GradientsParams,
    op: Op,
}

impl ModuleVisitor for Apply<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let clipped = match &self.op {
                Op::Clamp(v) => grad.clamp(-v, *v),
                Op::Scale(scale) => grad * (**scale).clone().unsqueeze::<D>(),
                Op::Cast(dtype) => crate::precision::cast(grad, *dtype),
            };
            self.grads.register::<D>(param.id, clipped);
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::{Initializer, Linear, LinearConfig};
    use burn::tensor::Device;

    use super::*;

    /// A 2×2 linear layer whose weight gradient is all 3 and bias gradient all 4 (norm √68).
    fn setup() -> (Linear, GradientsParams) {
        let device = Device::flex();
        let layer = LinearConfig::new(2, 2).with_initializer(Initializer::Zeros).init(&device);
        let mut grads = GradientsParams::new();
        grads.register::<2>(layer.weight.id, Tensor::full([2, 2], 3.0, &device));
        grads.register::<1>(layer.bias.as_ref().expect("bias").id, Tensor::full([2], 4.0, &device));
        (layer, grads)
    }

    fn values<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<D>>) -> Vec<f32> {
        grads.get::<D>(param.id).expect("gradient").into_data().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn norm_clipping_scales_every_gradient_by_the_global_norm() {
        let (layer, mut grads) = setup();
        clip(&layer, &mut grads, GradientClip::Norm(1.0));
        let scale = 1.0 / (68f64.sqrt() + 1e-6);
        for (got, want) in values(&grads, &layer.weight).iter().zip([3.0 * scale; 4]) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
        let bias = layer.bias.as_ref().expect("bias");
        assert!(values(&grads, bias).iter().all(|g| (*g as f64 - 4.0 * scale).abs() < 1e-6));
        let (layer, mut grads) = setup();
        clip(&layer, &mut grads, GradientClip::Norm(100.0));
        assert_eq!(values(&grads, &layer.weight), [3.0; 4], "below the threshold nothing changes");
    }

    #[test]
    fn value_clipping_clamps_each_element() {
        let (layer, mut grads) = setup();
        clip(&layer, &mut grads, GradientClip::Value(3.5));
        assert_eq!(values(&grads, &layer.weight), [3.0; 4]);
        assert_eq!(values(&grads, layer.bias.as_ref().expect("bias")), [3.5; 2]);
    }
}
