//! Metrics computed on the tensors' device.

use burn::tensor::{Int, Tensor};

/// Fraction of rows of `scores` `[batch, classes]` whose arg-max equals `targets` `[batch]`.
/// Stays on the device: the result is a one-element tensor, read only when it is written or shown.
pub fn accuracy(scores: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [batch, _] = scores.dims();
    let predicted = scores.argmax(1).reshape([batch]);
    predicted.equal(targets).int().sum().float().div_scalar(batch as f64)
}
