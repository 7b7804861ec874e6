//! How a training batch becomes optimizer steps (Lightning's `loops/optimization`): the
//! [`Learner`] owns the model, its optimizers and their schedulers; the automatic step
//! (`automatic.rs`) and the manual one (`manual.rs`) drive it. The fit loop only calls
//! [`Optimization::run`] once per batch and sees the steps taken in `global_step`.
//!
//! Every backward pass goes through [`Learner::backward`] and every optimizer step through
//! [`Learner::step`], in both modes: these are the seams where a precision plugin (cast, loss
//! scaling, unscale and overflow check before clipping) and a strategy (gradient all-reduce)
//! plug in. See ARCHITECTURE.md.

use burn::tensor::Tensor;

use super::{Trainer, TrainerConfig};
use crate::error::{Error, Result};
use crate::module::{LightningModule, StepContext};

mod automatic;
mod learner;
mod manual;

pub(crate) use automatic::AutomaticOptimization;
pub(crate) use learner::Learner;
pub(crate) use manual::ManualOptimization;
pub use manual::{ManualStep, OptimizerHandle, OptimizerRef};

/// The step in force for one `fit`: automatic or manual, as the module asks.
pub(crate) enum Optimization<M: LightningModule> {
    /// The Trainer runs backward, accumulation, clipping, the schedulers and the step.
    Automatic(AutomaticOptimization<M>),
    /// The module's `manual_training_step` drives its optimizers.
    Manual(ManualOptimization),
}

impl<M: LightningModule> Optimization<M> {
    /// Picks the step for `learner`'s module and checks that the Trainer's options fit it.
    pub fn new(learner: &Learner<M>, config: &TrainerConfig) -> Result<Self> {
        let count = learner.optimizers().len();
        if count == 0 {
            return Err(Error::Module(format!("{}::configure_optimizers returned no optimizer", module_name::<M>())));
        }
        if learner.model().automatic_optimization() {
            if count > 1 {
                return Err(Error::Module(format!(
                    "{}::configure_optimizers returns {count} optimizers, and automatic optimization steps one; \
                     turn it off (`automatic_optimization = false` in #[lightning(..)], or return false from \
                     `automatic_optimization`) and step each optimizer in `manual_training_step`, as in Lightning 2",
                    module_name::<M>()
                )));
            }
            return Ok(Optimization::Automatic(AutomaticOptimization::new(config)));
        }
        if config.gradient_clip.is_some() {
            return Err(Error::Config(
                "gradient_clip is applied by automatic optimization; with manual optimization call \
                 `step.optimizer(..)?.clip_gradients(..)` before its `step()`"
                    .into(),
            ));
        }
        if config.accumulate_grad_batches > 1 {
            return Err(Error::Config(
                "accumulate_grad_batches is applied by automatic optimization; with manual optimization \
                 call `step()` and `zero_grad()` every n batches yourself (gradients add up between them)"
                    .into(),
            ));
        }
        Ok(Optimization::Manual(ManualOptimization::default()))
    }

    /// A training epoch starts (`resumed`: mid-epoch, after a resume): the automatic step
    /// advances the epoch-interval schedulers; manual users step theirs.
    pub fn on_train_epoch_start(&mut self, learner: &mut Learner<M>, resumed: bool) {
        if let Optimization::Automatic(_) = self
            && !resumed
        {
            learner.advance_schedulers(crate::optim::Interval::Epoch);
        }
    }

    /// Runs one training batch; returns its loss in automatic mode (for the NaN watch).
    /// `closes_epoch`: the last batch of the epoch (an incomplete accumulation group steps).
    pub fn run(
        &mut self,
        trainer: &mut Trainer<M>,
        learner: &mut Learner<M>,
        batch: M::Batch,
        ctx: &mut StepContext,
        closes_epoch: bool,
    ) -> Result<Option<Tensor<1>>> {
        match self {
            Optimization::Automatic(step) => step.run(trainer, learner, batch, ctx, closes_epoch).map(Some),
            Optimization::Manual(step) => step.run(trainer, learner, batch, ctx).map(|()| None),
        }
    }
}

fn module_name<M>() -> &'static str {
    std::any::type_name::<M>().rsplit("::").next().unwrap_or("the module")
}
