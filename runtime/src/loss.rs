//! Losses with PyTorch's definitions (mean reduction over the batch).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Negative log-likelihood of `log_probs` `[batch, classes]` at `targets` `[batch]`:
/// `torch.nn.functional.nll_loss` with mean reduction.
pub fn nll_loss(log_probs: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [batch, _] = log_probs.dims();
    log_probs.gather(1, targets.reshape([batch, 1])).mean().neg()
}

/// Cross-entropy of raw `logits` `[batch, classes]` at `targets` `[batch]`:
/// `torch.nn.functional.cross_entropy` with mean reduction.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    nll_loss(log_softmax(logits, 1), targets)
}
