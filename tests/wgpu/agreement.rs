//! The derived tutorial CNN computes the same forward pass, loss and gradients on wgpu as on
//! flex.
//!
//! Tolerance: both devices compute in f32 (unit roundoff u = 2^-24 ≈ 6e-8) but sum in different
//! orders. A dot product of length K then differs by about √K·u relative to its scale; along
//! the CNN's layers (K = 27, 288, 288, 576, 1600, 512, 128) that adds up to about 137·u ≈ 8e-6,
//! and the backward pass goes through the same layers again: ≈ 2e-5. We allow 1e-4 of each
//! tensor's largest magnitude, 5× that estimate; a wrong kernel, a lost bias or a transposed
//! weight differs at order 1.

use fulmen::loss::nll_loss;
use fulmen::prelude::*;

use crate::{relative_difference, seed_cnn, weights, wgpu};

const TOLERANCE: f32 = 1e-4;

/// A batch of 8 images with a smooth pattern, and labels 0..8.
fn batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let n = 8 * 3 * 32 * 32;
    let pixels: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Tensor::<1>::from_floats(pixels.as_slice(), device).reshape([8, 3, 32, 32]);
    let y = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 4, 5, 6, 7], device);
    (x, y)
}

/// Log-probabilities, loss, and every parameter's gradient, in the parameters' visiting order.
fn run(device: &Device) -> (Vec<f32>, f32, Vec<Vec<f32>>) {
    let device = device.clone().autodiff();
    let model = seed_cnn(11).to_device(&device).train();
    let (x, y) = batch(&device);
    let log_probs = model.forward(x);
    let loss = nll_loss(log_probs.clone(), y).mean();
    let grads = loss.backward();
    let grads = fulmen::burn::optim::GradientsParams::from_grads(grads, &model);
    let gradient_of = GradientReader { grads: &grads, out: Vec::new() };
    let out = read_gradients(&model, gradient_of);
    let host = |t: Tensor<2>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    (host(log_probs.detach()), loss.into_scalar::<f32>(), out)
}

struct GradientReader<'a> {
    grads: &'a fulmen::burn::optim::GradientsParams,
    out: Vec<Vec<f32>>,
}

impl fulmen::burn::module::ModuleVisitor for GradientReader<'_> {
    fn visit_float<const D: usize>(&mut self, param: &fulmen::burn::module::Param<Tensor<D>>) {
        let grad = self.grads.get::<D>(param.id).unwrap_or_else(|| panic!("no gradient for parameter {:?}", param.id));
        self.out.push(grad.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
    }
}

fn read_gradients<M: Module>(model: &M, mut reader: GradientReader<'_>) -> Vec<Vec<f32>> {
    model.visit(&mut reader);
    reader.out
}

#[test]
fn the_tutorial_cnn_has_flex_s_forward_loss_and_gradients_on_wgpu() {
    let (flex_out, flex_loss, flex_grads) = run(&Device::flex());
    let (wgpu_out, wgpu_loss, wgpu_grads) = run(&wgpu());
    let out = relative_difference(&wgpu_out, &flex_out);
    assert!(out < TOLERANCE, "log-probabilities differ by {out:e} of their scale");
    let loss = ((wgpu_loss - flex_loss) / flex_loss).abs();
    assert!(loss < TOLERANCE, "loss {wgpu_loss} on wgpu, {flex_loss} on flex");
    assert_eq!(wgpu_grads.len(), 14, "7 layers, a weight and a bias each");
    for (i, (w, f)) in wgpu_grads.iter().zip(&flex_grads).enumerate() {
        let d = relative_difference(w, f);
        assert!(d < TOLERANCE, "gradient of parameter {i} differs by {d:e} of its scale");
    }
    eprintln!(
        "wgpu vs flex: log-probs {out:e}, loss {loss:e}, worst gradient {:e}",
        wgpu_grads.iter().zip(&flex_grads).map(|(w, f)| relative_difference(w, f)).fold(0.0, f32::max)
    );
}

#[test]
fn weights_moved_to_wgpu_and_back_are_bit_identical() {
    let model = seed_cnn(12);
    let back = model.clone().to_device(&wgpu()).to_device(&Device::flex());
    assert_eq!(weights(&back), weights(&model));
}
