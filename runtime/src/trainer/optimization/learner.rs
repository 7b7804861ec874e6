//! The one owner of the training state: the model and its optimizers (each with its
//! scheduler), and the precision it trains in (with `16-mixed`'s loss scaler).

use std::borrow::Cow;

use burn::optim::GradientsParams;
use burn::tensor::{DType, FloatDType, Tensor};

use crate::error::Result;
use crate::module::LightningModule;
use crate::optim::{Interval, OptimizerConfig};
use crate::precision::{CastParams, GradScaler, Precision};
use crate::strategy::Ddp;

/// The model being trained and its optimizers, with `&mut self` methods; the loops borrow it.
pub(crate) struct Learner<M> {
    /// Always `Some` between calls; taken for the duration of a Burn optimizer step, which
    /// consumes the module and returns the updated one. In f32 under mixed precision (the
    /// master weights).
    model: Option<M>,
    optimizers: Vec<OptimizerConfig>,
    precision: Precision,
    /// `16-mixed`'s loss scaler.
    scaler: Option<GradScaler>,
    /// The data-parallel run whose ranks average their gradients before each step.
    ddp: Option<Ddp>,
}

const IN_PLACE: &str = "the model is in place between optimizer steps";

impl<M: LightningModule> Learner<M> {
    pub fn new(model: M, optimizers: Vec<OptimizerConfig>, precision: Precision, scaler: Option<GradScaler>, ddp: Option<Ddp>) -> Self {
        Learner { model: Some(model), optimizers, precision, scaler, ddp }
    }

    pub fn model(&self) -> &M {
        self.model.as_ref().expect(IN_PLACE)
    }

    /// The model a training step runs: under mixed precision a copy whose parameters are cast
    /// to the low dtype (made per step, so it sees the weights the last step left), else the
    /// model itself.
    pub fn compute_model(&self) -> Cow<'_, M> {
        match self.cast_copy() {
            Some(copy) => Cow::Owned(copy),
            None => Cow::Borrowed(self.model()),
        }
    }

    /// Under a mixed precision, a copy of the model with its parameters cast to the low dtype.
    pub fn cast_copy(&self) -> Option<M> {
        self.precision.is_mixed().then(|| self.model().clone().map(&mut CastParams::new(self.precision.compute_dtype())))
    }

    /// The precision it trains in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The loss scaler, under `16-mixed`.
    pub fn scaler(&self) -> Option<&GradScaler> {
        self.scaler.as_ref()
    }

    /// In a data-parallel run, averages the gradients of optimizer `index`'s parameters across
    /// the ranks (one all-reduce, only when a step will use them: not during accumulation, as
    /// Lightning's `no_sync`); before unscaling and clipping, so every rank steps alike.
    /// Returns the time it took.
    pub fn average_gradients(&self, index: usize, grads: &mut GradientsParams, step: u64) -> Result<std::time::Duration> {
        let Some(ddp) = &self.ddp else { return Ok(std::time::Duration::ZERO) };
        let start = std::time::Instant::now();
        let what = format!("the gradient all-reduce of global step {step}");
        ddp.average_gradients(self.model(), grads, self.optimizers[index].params(), &what)?;
        Ok(start.elapsed())
    }

    /// Divides `grads` by the loss scale, before clipping and the step; returns whether they
    /// are all finite (one read of a device scalar). Always true without a scaler.
    pub fn unscale(&self, grads: &mut GradientsParams) -> bool {
        let Some(scaler) = &self.scaler else { return true };
        match crate::grad::unscale(self.model(), grads, scaler.inverse()) {
            Some(non_finite) => non_finite.into_scalar::<f32>() == 0.0,
            None => true,
        }
    }

    /// After an optimizer step's unscale: the scaler grows or backs off.
    pub fn update_scaler(&mut self, finite: bool) {
        if let Some(scaler) = &mut self.scaler {
            scaler.update(finite);
        }
    }

    pub fn optimizers(&self) -> &[OptimizerConfig] {
        &self.optimizers
    }

    /// The model (mutable) and the optimizers, for hook dispatch.
    pub fn parts(&mut self) -> (&mut M, &[OptimizerConfig]) {
        (self.model.as_mut().expect(IN_PLACE), &self.optimizers)
    }

    pub fn into_model(self) -> M {
        self.model.expect(IN_PLACE)
    }

    /// The gradients of `loss` for every parameter of the model.
    ///
    /// Under `16-mixed` the loss is multiplied by the scale first ([`unscale`](Self::unscale)
    /// divides it out). Seam: a strategy reduces the gradients across replicas when the step
    /// will use them.
    pub fn backward(&self, loss: Tensor<1>) -> GradientsParams {
        let loss = match &self.scaler {
            Some(scaler) => scaler.scale_loss(loss),
            None => loss,
        };
        GradientsParams::from_grads(loss.backward(), self.model())
    }

    /// Steps every scheduler that runs at `interval`.
    pub fn advance_schedulers(&mut self, interval: Interval) {
        for optimizer in &mut self.optimizers {
            optimizer.advance(interval);
        }
    }

    /// Steps optimizer `index`'s scheduler, whatever its interval (manual optimization).
    pub fn step_scheduler(&mut self, index: usize) {
        self.optimizers[index].step_scheduler();
    }

    /// Steps optimizer `index` with `grads`; only its own parameters move (`grads` may hold
    /// others: they are dropped here). `schedule`: advance its step-interval scheduler first.
    ///
    /// `finite` false (an overflow under `16-mixed`): the weights stay, the scheduler still
    /// advances, as with PyTorch's GradScaler.
    ///
    /// Under `*-true` the update is computed in f32 on the weights and gradients widened, and
    /// the new weights are rounded back to the low dtype, as PyTorch's fused optimizers compute
    /// low-precision parameters' updates in f32. The optimizer's state is therefore f32, which
    /// checkpoints carry across precisions, and Adam's epsilon (1e-8, 0 in f16) keeps its value.
    pub fn step(&mut self, index: usize, grads: GradientsParams, schedule: bool, finite: bool) {
        let model = self.model.take().expect(IN_PLACE);
        let optimizer = &mut self.optimizers[index];
        let grads = match optimizer.params() {
            Some(ids) => crate::grad::select(&model, &grads, Some(ids)),
            None => grads,
        };
        if schedule {
            optimizer.advance(Interval::Step);
        }
        if !finite {
            self.model = Some(model);
            return;
        }
        let rates = optimizer.rates();
        if !self.precision.is_low_true() {
            self.model = Some(optimizer.optimizer.step(rates, model, grads));
            return;
        }
        let (wide, mut grads) = (model.map(&mut CastParams::into_leaves(FloatDType::F32)), grads);
        crate::grad::cast(&wide, &mut grads, DType::F32);
        let stepped = optimizer.optimizer.step(rates, wide, grads);
        self.model = Some(stepped.map(&mut CastParams::into_leaves(self.precision.compute_dtype())));
    }
}
