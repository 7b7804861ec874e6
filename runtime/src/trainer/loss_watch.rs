//! Non-finite loss detection without a read per step: the first step whose loss was NaN or
//! infinite is tracked on the device and read only at progress-bar refreshes and epoch ends.

use burn::tensor::Tensor;

use crate::error::{Error, Result};

/// The first non-finite step so far (as a device scalar, +inf when none) and the latest loss.
#[derive(Default)]
pub(super) struct LossWatch {
    first_bad_step: Option<Tensor<1>>,
    last: Option<Tensor<1>>,
}

impl LossWatch {
    /// Records the loss of global step `step` (0-based); a few device ops, no read.
    pub fn record(&mut self, loss: &Tensor<1>, step: u64) {
        let loss = loss.clone().detach().without_autodiff();
        let finite = loss.clone().is_finite();
        let candidate = Tensor::<1>::full([1], step as f32, &loss.device()).mask_fill(finite, f32::INFINITY);
        self.first_bad_step = Some(match self.first_bad_step.take() {
            Some(first) => first.min_pair(candidate),
            None => candidate,
        });
        self.last = Some(loss);
    }

    /// Fails with the first non-finite step, if there was one.
    pub fn check(&mut self, epoch: u64) -> Result<()> {
        let Some(first) = &self.first_bad_step else { return Ok(()) };
        let step = first.clone().into_scalar::<f32>();
        if step.is_finite() {
            let last = self.last.take().map_or(f64::NAN, |l| l.into_scalar::<f32>() as f64);
            let value = if last.is_finite() { f64::NAN } else { last };
            return Err(Error::NonFiniteLoss { value, step: step as u64, epoch });
        }
        Ok(())
    }
}
