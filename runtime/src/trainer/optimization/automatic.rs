//! Automatic optimization (Lightning's `loops/optimization/automatic.py`): `training_step`
//! returns the loss; the Trainer runs backward, sums `accumulate_grad_batches` batches'
//! gradients (each loss divided by the count, so the step sees their mean), clips, advances the
//! step-interval scheduler and steps the one optimizer.

use burn::optim::GradientsAccumulator;
use burn::tensor::Tensor;

use super::Learner;
use crate::error::Result;
use crate::module::{LightningModule, LogOptions, StepContext};
use crate::precision::{cast_batch, guard_first_step};
use crate::trainer::{GradientClip, Hook, Trainer, TrainerConfig};

/// The automatic step's state across batches: the accumulation group in progress.
pub(crate) struct AutomaticOptimization<M> {
    accumulate: usize,
    clip: Option<GradientClip>,
    accumulator: GradientsAccumulator<M>,
    pending: usize,
    /// No batch has run yet (its step runs guarded in a low precision).
    first: bool,
}

impl<M: LightningModule> AutomaticOptimization<M> {
    pub fn new(config: &TrainerConfig) -> Self {
        AutomaticOptimization {
            accumulate: config.accumulate_grad_batches,
            clip: config.gradient_clip,
            accumulator: GradientsAccumulator::new(),
            pending: 0,
            first: true,
        }
    }

    /// `training_step`, backward, and the optimizer step when the batch completes its group
    /// (or `closes_epoch`); returns the loss.
    pub fn run(&mut self, trainer: &mut Trainer<M>, learner: &mut Learner<M>, batch: M::Batch, ctx: &mut StepContext, closes_epoch: bool) -> Result<Tensor<1>> {
        let precision = learner.precision();
        let first = std::mem::take(&mut self.first);
        let batch = cast_batch(batch, precision);
        let loss = guard_first_step(precision, first, "training", || learner.compute_model().training_step(batch, ctx))?;
        trainer.call_learner(learner, Hook::BeforeBackward(&loss))?;
        let scaled = if self.accumulate > 1 { loss.clone().div_scalar(self.accumulate as f64) } else { loss.clone() };
        let grads = guard_first_step(precision, first, "training", || Ok(learner.backward(scaled)))?;
        trainer.call_learner(learner, Hook::AfterBackward)?;
        let mut grads = if self.accumulate > 1 {
            self.accumulator.accumulate(learner.model(), grads);
            self.pending += 1;
            if self.pending < self.accumulate && !closes_epoch {
                return Ok(loss);
            }
            self.pending = 0;
            self.accumulator.grads()
        } else {
            grads
        };
        trainer.state.gradient_sync += learner.average_gradients(0, &mut grads, trainer.state.global_step)?;
        let finite = learner.unscale(&mut grads);
        {
            let (model, optimizers) = learner.parts();
            trainer.call(model, optimizers, Hook::BeforeOptimizerStep(&optimizers[0]))?;
        }
        if let Some(clip) = self.clip {
            crate::grad::clip(learner.model(), &mut grads, clip);
        }
        learner.step(0, grads, true, finite);
        learner.update_scaler(finite);
        if let Some(scaler) = learner.scaler() {
            trainer.state.grad_scaler = Some(scaler.state());
            ctx.log_with("grad_scale", scaler.scale(), LogOptions::new().on_step(true).on_epoch(false))?;
        }
        trainer.state.global_step += 1;
        Ok(loss)
    }
}
