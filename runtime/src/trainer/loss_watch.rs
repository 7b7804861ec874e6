//! Non-finite loss detection without a read per step: the first step whose loss was NaN or
//! infinite is tracked on the device and read only at progress-bar refreshes and epoch ends.

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::flagged::FirstFlagged;
use crate::precision::Precision;

/// The first non-finite step so far, with its loss.
pub(super) struct LossWatch {
    first_bad: FirstFlagged,
    precision: Precision,
}

impl LossWatch {
    /// Watches a run in `precision` (its fix hint depends on it).
    pub fn new(precision: Precision) -> Self {
        LossWatch { first_bad: FirstFlagged::default(), precision }
    }

    /// Records the loss of global step `step` (0-based); a few device ops, no read.
    pub fn record(&mut self, loss: &Tensor<1>, step: u64) {
        let loss = loss.clone().detach().without_autodiff();
        let flag = loss.clone().is_finite().bool_not();
        self.first_bad.record(step as usize, flag, loss);
    }

    /// Fails with the first non-finite step, if there was one.
    pub fn check(&mut self, epoch: u64) -> Result<()> {
        match self.first_bad.read() {
            Some(bad) => {
                let hint = match self.precision {
                    Precision::F16True => {
                        "under 16-true every activation and gradient is f16, which overflows above 65,504 and has no loss \
                         scaling: train in 16-mixed (loss scaling, f32 master weights) or bf16-true (f32's range)"
                    }
                    _ => "lower the learning rate or check the inputs",
                };
                Err(Error::NonFiniteLoss { value: bad.value, step: bad.index as u64, epoch, hint: hint.to_string() })
            }
            None => Ok(()),
        }
    }
}
