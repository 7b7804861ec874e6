//! The one owner of the training state: the model and its optimizers (each with its scheduler).

use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::module::LightningModule;
use crate::optim::{Interval, OptimizerConfig};

/// The model being trained and its optimizers, with `&mut self` methods; the loops borrow it.
pub(crate) struct Learner<M> {
    /// Always `Some` between calls; taken for the duration of a Burn optimizer step, which
    /// consumes the module and returns the updated one.
    model: Option<M>,
    optimizers: Vec<OptimizerConfig>,
}

const IN_PLACE: &str = "the model is in place between optimizer steps";

impl<M: LightningModule> Learner<M> {
    pub fn new(model: M, optimizers: Vec<OptimizerConfig>) -> Self {
        Learner { model: Some(model), optimizers }
    }

    pub fn model(&self) -> &M {
        self.model.as_ref().expect(IN_PLACE)
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
    /// Seam: a precision plugin scales the loss before and unscales after; a strategy
    /// reduces the gradients across replicas when the step will use them.
    pub fn backward(&self, loss: Tensor<1>) -> GradientsParams {
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
    /// Seam: a precision plugin skips the step here when a gradient overflowed.
    pub fn step(&mut self, index: usize, grads: GradientsParams, schedule: bool) {
        let model = self.model.take().expect(IN_PLACE);
        let optimizer = &mut self.optimizers[index];
        let grads = match optimizer.params() {
            Some(ids) => crate::grad::select(&model, &grads, Some(ids)),
            None => grads,
        };
        if schedule {
            optimizer.advance(Interval::Step);
        }
        let rates = optimizer.rates();
        self.model = Some(optimizer.optimizer.step(rates, model, grads));
    }
}
