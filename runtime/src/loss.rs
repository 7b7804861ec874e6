//! Losses with PyTorch's definitions (mean reduction over the batch), computed in f32 whatever
//! the dtype of their input, as autocast runs them: under a mixed precision the logits come in
//! bf16 or f16 and the loss, its gradient and what `log` records stay f32.

use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{DType, Int, Tensor};

use crate::precision::cast;

/// Negative log-likelihood of `log_probs` `[batch, classes]` at `targets` `[batch]`:
/// `torch.nn.functional.nll_loss` with mean reduction.
pub fn nll_loss(log_probs: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [batch, _] = log_probs.dims();
    cast(log_probs, DType::F32).gather(1, targets.reshape([batch, 1])).mean().neg()
}

/// Cross-entropy of raw `logits` `[batch, classes]` at `targets` `[batch]`:
/// `torch.nn.functional.cross_entropy` with mean reduction.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    nll_loss(log_softmax(cast(logits, DType::F32), 1), targets)
}

/// Binary cross-entropy of raw `logits` against `targets` in [0, 1] of the same shape (soft
/// labels allowed): `torch.nn.functional.binary_cross_entropy_with_logits` with mean reduction,
/// in its overflow-free form `max(x, 0) - x·y + ln(1 + e^-|x|)`.
pub fn binary_cross_entropy_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    let x = cast(logits, DType::F32);
    let y = cast(targets, DType::F32);
    (relu(x.clone()) - x.clone() * y + x.abs().neg().exp().log1p()).mean()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, FloatDType, TensorData};

    use super::*;

    fn tensor(values: &[f32]) -> Tensor<1> {
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), &Device::flex())
    }

    #[test]
    fn binary_cross_entropy_with_logits_is_pytorchs_and_stays_finite_for_large_logits() {
        // torch.nn.functional.binary_cross_entropy_with_logits(tensor([2., -1., 0.]), tensor([1., 0., .5]))
        let loss = binary_cross_entropy_with_logits(tensor(&[2.0, -1.0, 0.0]), tensor(&[1.0, 0.0, 0.5]));
        let expected = (0.126_928_f32 + 0.313_262 + std::f32::consts::LN_2) / 3.0;
        assert!((loss.into_scalar::<f32>() - expected).abs() < 1e-6);
        // A confident wrong answer costs its logit; e^100 would overflow the naive form.
        let loss = binary_cross_entropy_with_logits(tensor(&[100.0, -100.0]), tensor(&[0.0, 1.0]));
        assert_eq!(loss.into_scalar::<f32>(), 100.0);
    }

    #[test]
    fn low_precision_logits_give_an_f32_loss() {
        let logits = tensor(&[0.3, -1.2, 2.5, 0.1]).cast(FloatDType::BF16);
        let loss = binary_cross_entropy_with_logits(logits.clone(), tensor(&[1.0, 0.0, 1.0, 0.0]));
        assert_eq!(loss.dtype(), DType::F32);
        let loss = cross_entropy(logits.reshape([2, 2]), Tensor::<1, Int>::from_ints([0, 1], &Device::flex()));
        assert_eq!(loss.dtype(), DType::F32);
    }
}
