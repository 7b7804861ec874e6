//! Manual optimization (Lightning 2's `automatic_optimization = False`, `loops/optimization/
//! manual.py`): the module's `manual_training_step` computes its losses, calls
//! `manual_backward`, and steps and zeroes each optimizer itself — a GAN's discriminator and
//! generator in turn. Gradients add up over backward passes until the optimizer that owns
//! them calls `zero_grad`, as PyTorch's `.grad` does; clipping and accumulation are the
//! module's (helpers below). Every `step()` counts as one global step.

use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::Learner;
use crate::error::{Error, Result};
use crate::module::{LightningModule, StepContext};
use crate::optim::OptimizerConfig;
use crate::trainer::{GradientClip, Hook, Trainer};

/// Manual optimization's state across batches: the gradients not yet zeroed.
#[derive(Default)]
pub(crate) struct ManualOptimization {
    grads: GradientsParams,
    toggled: Option<usize>,
    /// A step has run (the first runs guarded in a low precision).
    started: bool,
    /// The optimizers whose gradients are ready for their step already (averaged across
    /// ranks and unscaled, by `clip_gradients`), with whether they were all finite.
    prepared: std::collections::HashMap<usize, bool>,
}

impl ManualOptimization {
    pub fn run<M: LightningModule>(&mut self, trainer: &mut Trainer<M>, learner: &mut Learner<M>, batch: M::Batch, ctx: &mut StepContext) -> Result<()> {
        let batch = crate::precision::cast_batch(batch, learner.precision());
        let compute = learner.cast_copy();
        let (precision, first) = (learner.precision(), !std::mem::replace(&mut self.started, true));
        let mut step = ManualStep { ctx, trainer, learner, state: self, compute };
        crate::precision::guard_first_step(precision, first, "training", || M::manual_training_step(&mut step, batch))
    }
}

/// An optimizer by index (in `configure_optimizers`' order) or by the name given with
/// [`OptimizerConfig::named`].
#[derive(Debug, Clone, Copy)]
pub enum OptimizerRef<'a> {
    /// The n-th optimizer.
    Index(usize),
    /// The optimizer with this name (or this type label, `Adam`, when unnamed).
    Name(&'a str),
}

impl std::fmt::Display for OptimizerRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptimizerRef::Index(i) => write!(f, "number {i}"),
            OptimizerRef::Name(name) => write!(f, "named `{name}`"),
        }
    }
}

impl From<usize> for OptimizerRef<'_> {
    fn from(index: usize) -> Self {
        OptimizerRef::Index(index)
    }
}

impl<'a> From<&'a str> for OptimizerRef<'a> {
    fn from(name: &'a str) -> Self {
        OptimizerRef::Name(name)
    }
}

/// What a manual `training_step` works with: the module, `manual_backward`, the optimizers,
/// and [`ctx`](Self::ctx) for `log`.
pub struct ManualStep<'a, M: LightningModule> {
    /// The step's context: `log`, `log_metric`, the position in training.
    pub ctx: &'a mut StepContext,
    trainer: &'a mut Trainer<M>,
    learner: &'a mut Learner<M>,
    state: &'a mut ManualOptimization,
    /// Under a mixed precision, the low-dtype copy the forward passes run on: made anew after
    /// every backward (which consumes its casts) and every optimizer step (which moves the weights).
    compute: Option<M>,
}

impl<'a, M: LightningModule> ManualStep<'a, M> {
    /// The module being trained (its forward passes record the graph for `manual_backward`;
    /// under a mixed precision, the low-dtype view of the f32 weights).
    pub fn module(&self) -> &M {
        self.compute.as_ref().unwrap_or_else(|| self.learner.model())
    }

    /// The optimizers, in `configure_optimizers`' order.
    pub fn optimizers(&self) -> &[OptimizerConfig] {
        self.learner.optimizers()
    }

    /// Backward of `loss` (Lightning's `manual_backward`): its gradients are added to those
    /// of earlier passes not yet zeroed — for every parameter, or only the toggled optimizer's.
    pub fn manual_backward(&mut self, loss: Tensor<1>) -> Result<()> {
        self.trainer.call_learner(self.learner, Hook::BeforeBackward(&loss))?;
        let grads = self.learner.backward(loss);
        let ids = self.state.toggled.and_then(|i| self.learner.optimizers()[i].params());
        crate::grad::accumulate(self.learner.model(), &mut self.state.grads, grads, ids);
        self.compute = self.learner.cast_copy();
        self.trainer.call_learner(self.learner, Hook::AfterBackward)
    }

    /// Restricts the following `manual_backward` calls to the gradients of `optimizer`'s
    /// parameters (Lightning's `toggle_optimizer`): a generator's loss then leaves no
    /// gradient on the discriminator it ran through.
    pub fn toggle_optimizer<'n>(&mut self, optimizer: impl Into<OptimizerRef<'n>>) -> Result<()> {
        self.state.toggled = Some(self.index(optimizer.into())?);
        Ok(())
    }

    /// Ends [`toggle_optimizer`](Self::toggle_optimizer): backward keeps every gradient again.
    pub fn untoggle_optimizer(&mut self) {
        self.state.toggled = None;
    }

    /// One optimizer, to `step`, `zero_grad`, clip or schedule.
    pub fn optimizer<'n>(&mut self, optimizer: impl Into<OptimizerRef<'n>>) -> Result<OptimizerHandle<'_, 'a, M>> {
        let index = self.index(optimizer.into())?;
        Ok(OptimizerHandle { step: self, index })
    }

    fn index(&self, optimizer: OptimizerRef<'_>) -> Result<usize> {
        let optimizers = self.learner.optimizers();
        let found = match optimizer {
            OptimizerRef::Index(i) => (i < optimizers.len()).then_some(i),
            OptimizerRef::Name(name) => optimizers.iter().position(|o| o.label() == name),
        };
        found.ok_or_else(|| {
            let known: Vec<String> = optimizers.iter().enumerate().map(|(i, o)| format!("{i}: {}", o.label())).collect();
            Error::Module(format!("no optimizer {optimizer}; configure_optimizers returns [{}] (name one with `.named(..)`)", known.join(", ")))
        })
    }
}

/// One optimizer of a manual step (Lightning's `LightningOptimizer`).
pub struct OptimizerHandle<'s, 'a, M: LightningModule> {
    step: &'s mut ManualStep<'a, M>,
    index: usize,
}

impl<M: LightningModule> OptimizerHandle<'_, '_, M> {
    /// The optimizer's configuration (name, learning rate, scheduler).
    pub fn config(&self) -> &OptimizerConfig {
        &self.step.learner.optimizers()[self.index]
    }

    /// Steps the optimizer with the gradients of its parameters (`on_before_optimizer_step`
    /// first); one global step. Its gradients stay until [`zero_grad`](Self::zero_grad).
    ///
    /// In a data-parallel run the gradients are averaged across the ranks first; under
    /// `16-mixed` they are unscaled (both unless `clip_gradients` did it), a step whose
    /// gradients hold an inf or NaN leaves the weights alone, and the loss scaler backs off or
    /// grows, as Lightning's precision plugin does at each optimizer step.
    pub fn step(&mut self) -> Result<()> {
        let finite = self.prepare()?;
        let ManualStep { trainer, learner, state, compute, .. } = &mut *self.step;
        state.prepared.remove(&self.index);
        let ids = learner.optimizers()[self.index].params();
        let grads = crate::grad::select(learner.model(), &state.grads, ids);
        {
            let (model, optimizers) = learner.parts();
            trainer.call(model, optimizers, Hook::BeforeOptimizerStep(&optimizers[self.index]))?;
        }
        learner.step(self.index, grads, false, finite);
        learner.update_scaler(finite);
        if let Some(scaler) = learner.scaler() {
            trainer.state.grad_scaler = Some(scaler.state());
        }
        *compute = learner.cast_copy();
        trainer.state.global_step += 1;
        Ok(())
    }

    /// Once per step: averages the optimizer's gradients across the ranks of a data-parallel
    /// run, and under `16-mixed` divides them by the loss scale; returns whether they are all
    /// finite (always true without a scaler).
    fn prepare(&mut self) -> Result<bool> {
        let ManualStep { trainer, learner, state, .. } = &mut *self.step;
        if let Some(&finite) = state.prepared.get(&self.index) {
            return Ok(finite);
        }
        let ids = learner.optimizers()[self.index].params();
        let mut mine = crate::grad::select(learner.model(), &state.grads, ids);
        trainer.state.gradient_sync += learner.average_gradients(self.index, &mut mine, trainer.state.global_step)?;
        let finite = learner.unscale(&mut mine);
        crate::grad::remove(learner.model(), &mut state.grads, ids);
        crate::grad::accumulate(learner.model(), &mut state.grads, mine, ids);
        state.prepared.insert(self.index, finite);
        Ok(finite)
    }

    /// Drops the gradients of the optimizer's parameters.
    pub fn zero_grad(&mut self) {
        let ManualStep { learner, state, .. } = &mut *self.step;
        state.prepared.remove(&self.index);
        crate::grad::remove(learner.model(), &mut state.grads, learner.optimizers()[self.index].params());
    }

    /// Clips the gradients of the optimizer's parameters, as the Trainer's `gradient_clip`
    /// does in automatic mode (Lightning's `self.clip_gradients(opt, ..)`); in a data-parallel
    /// run they are averaged across the ranks first (an error when a rank fails), under
    /// `16-mixed` unscaled, so call it after the step's last `manual_backward`.
    pub fn clip_gradients(&mut self, clip: GradientClip) -> Result<()> {
        self.prepare()?;
        let ManualStep { learner, state, .. } = &mut *self.step;
        let ids = learner.optimizers()[self.index].params();
        let mut mine = crate::grad::select(learner.model(), &state.grads, ids);
        crate::grad::clip(learner.model(), &mut mine, clip);
        crate::grad::remove(learner.model(), &mut state.grads, ids);
        crate::grad::accumulate(learner.model(), &mut state.grads, mine, ids);
        Ok(())
    }

    /// Steps the optimizer's learning-rate scheduler (in manual optimization the module steps
    /// its schedulers, whatever their interval); no-op without one.
    pub fn scheduler_step(&mut self) {
        let ManualStep { learner, .. } = &mut *self.step;
        learner.step_scheduler(self.index);
    }

    /// The learning rate of the optimizer's next step.
    pub fn lr(&self) -> f64 {
        self.config().lr
    }
}
