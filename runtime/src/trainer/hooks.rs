//! Hook dispatch, in one place: the module's hook first, then each callback's, in the order
//! added (callbacks that write checkpoints last).
//!
//! `fit`: setup(fit) → on_fit_start → [on_sanity_check_start → validation run →
//! on_sanity_check_end] → on_train_start → per epoch { on_train_epoch_start → per batch
//! { on_train_batch_start → on_before_backward → on_after_backward → on_before_optimizer_step →
//! on_train_batch_end } (manual optimization: the backward hooks run in each `manual_backward`,
//! on_before_optimizer_step in each optimizer `step()`) → [validation run] → on_train_epoch_end } → on_train_end → on_fit_end →
//! teardown(fit). A validation run: on_validation_start → on_validation_epoch_start → per batch
//! { on_validation_batch_start → on_validation_batch_end } → on_validation_epoch_end →
//! on_validation_end. `validate`/`test`/`predict`: setup(stage) → that stage's run → teardown.
//! On an error, callbacks' on_exception runs before the loggers are finalized.

use burn::tensor::Tensor;

use super::Trainer;
use super::optimization::Learner;
use crate::callbacks::{Callback, TrainerView};
use crate::data::SetupStage;
use crate::error::{Error, Result};
use crate::module::{LightningModule, Stage};
use crate::optim::OptimizerConfig;

/// A hook point.
#[derive(Debug, Clone, Copy)]
pub enum Hook<'a> {
    /// `setup(stage)`.
    Setup(SetupStage),
    /// `teardown(stage)`.
    Teardown(SetupStage),
    /// `on_fit_start`.
    FitStart,
    /// `on_fit_end`.
    FitEnd,
    /// `on_sanity_check_start` (callbacks only).
    SanityCheckStart,
    /// `on_sanity_check_end` (callbacks only).
    SanityCheckEnd,
    /// `on_{train,validation,test,predict}_start`.
    StageStart(Stage),
    /// `on_{train,validation,test,predict}_end`.
    StageEnd(Stage),
    /// `on_{stage}_epoch_start`.
    EpochStart(Stage),
    /// `on_{stage}_epoch_end`.
    EpochEnd(Stage),
    /// `on_{stage}_batch_start(batch_idx)`.
    BatchStart(Stage, usize),
    /// `on_{stage}_batch_end(batch_idx)`.
    BatchEnd(Stage, usize),
    /// `on_before_backward(loss)`.
    BeforeBackward(&'a Tensor<1>),
    /// `on_after_backward`.
    AfterBackward,
    /// `on_before_optimizer_step(optimizer)`.
    BeforeOptimizerStep(&'a OptimizerConfig),
    /// `on_exception(error)` (callbacks only).
    Exception(&'a Error),
}

impl Hook<'_> {
    /// The hook's name, as the trait methods are named (`on_train_batch_end`).
    pub fn name(&self) -> String {
        let stage = |s: &Stage| match s {
            Stage::Train => "train",
            Stage::Validation => "validation",
            Stage::Test => "test",
            Stage::Predict => "predict",
        };
        match self {
            Hook::Setup(_) => "setup".into(),
            Hook::Teardown(_) => "teardown".into(),
            Hook::FitStart => "on_fit_start".into(),
            Hook::FitEnd => "on_fit_end".into(),
            Hook::SanityCheckStart => "on_sanity_check_start".into(),
            Hook::SanityCheckEnd => "on_sanity_check_end".into(),
            Hook::StageStart(s) => format!("on_{}_start", stage(s)),
            Hook::StageEnd(s) => format!("on_{}_end", stage(s)),
            Hook::EpochStart(s) => format!("on_{}_epoch_start", stage(s)),
            Hook::EpochEnd(s) => format!("on_{}_epoch_end", stage(s)),
            Hook::BatchStart(s, _) => format!("on_{}_batch_start", stage(s)),
            Hook::BatchEnd(s, _) => format!("on_{}_batch_end", stage(s)),
            Hook::BeforeBackward(_) => "on_before_backward".into(),
            Hook::AfterBackward => "on_after_backward".into(),
            Hook::BeforeOptimizerStep(_) => "on_before_optimizer_step".into(),
            Hook::Exception(_) => "on_exception".into(),
        }
    }
}

/// Calls the module's method for `hook`.
fn module_hook<M: LightningModule>(m: &mut M, hook: Hook<'_>, epoch: u64) -> Result<()> {
    use Stage::*;
    match hook {
        Hook::Setup(s) => m.setup(s),
        Hook::Teardown(s) => m.teardown(s),
        Hook::FitStart => m.on_fit_start(),
        Hook::FitEnd => m.on_fit_end(),
        Hook::SanityCheckStart | Hook::SanityCheckEnd | Hook::Exception(_) => Ok(()),
        Hook::StageStart(Train) => m.on_train_start(),
        Hook::StageStart(Validation) => m.on_validation_start(),
        Hook::StageStart(Test) => m.on_test_start(),
        Hook::StageStart(Predict) => m.on_predict_start(),
        Hook::StageEnd(Train) => m.on_train_end(),
        Hook::StageEnd(Validation) => m.on_validation_end(),
        Hook::StageEnd(Test) => m.on_test_end(),
        Hook::StageEnd(Predict) => m.on_predict_end(),
        Hook::EpochStart(Train) => m.on_train_epoch_start(epoch),
        Hook::EpochStart(Validation) => m.on_validation_epoch_start(),
        Hook::EpochStart(Test) => m.on_test_epoch_start(),
        Hook::EpochStart(Predict) => m.on_predict_epoch_start(),
        Hook::EpochEnd(Train) => m.on_train_epoch_end(epoch),
        Hook::EpochEnd(Validation) => m.on_validation_epoch_end(),
        Hook::EpochEnd(Test) => m.on_test_epoch_end(),
        Hook::EpochEnd(Predict) => m.on_predict_epoch_end(),
        Hook::BatchStart(Train, i) => m.on_train_batch_start(i),
        Hook::BatchStart(Validation, i) => m.on_validation_batch_start(i),
        Hook::BatchStart(Test, i) => m.on_test_batch_start(i),
        Hook::BatchStart(Predict, i) => m.on_predict_batch_start(i),
        Hook::BatchEnd(Train, i) => m.on_train_batch_end(i),
        Hook::BatchEnd(Validation, i) => m.on_validation_batch_end(i),
        Hook::BatchEnd(Test, i) => m.on_test_batch_end(i),
        Hook::BatchEnd(Predict, i) => m.on_predict_batch_end(i),
        Hook::BeforeBackward(loss) => m.on_before_backward(loss),
        Hook::AfterBackward => m.on_after_backward(),
        Hook::BeforeOptimizerStep(optimizer) => m.on_before_optimizer_step(optimizer),
    }
}

/// Calls the callback's method for `hook`.
fn callback_hook<M: LightningModule>(c: &mut dyn Callback<M>, v: &mut TrainerView<'_, M>, hook: Hook<'_>) -> Result<()> {
    use Stage::*;
    match hook {
        Hook::Setup(s) => c.setup(v, s),
        Hook::Teardown(s) => c.teardown(v, s),
        Hook::FitStart => c.on_fit_start(v),
        Hook::FitEnd => c.on_fit_end(v),
        Hook::SanityCheckStart => c.on_sanity_check_start(v),
        Hook::SanityCheckEnd => c.on_sanity_check_end(v),
        Hook::StageStart(Train) => c.on_train_start(v),
        Hook::StageStart(Validation) => c.on_validation_start(v),
        Hook::StageStart(Test) => c.on_test_start(v),
        Hook::StageStart(Predict) => c.on_predict_start(v),
        Hook::StageEnd(Train) => c.on_train_end(v),
        Hook::StageEnd(Validation) => c.on_validation_end(v),
        Hook::StageEnd(Test) => c.on_test_end(v),
        Hook::StageEnd(Predict) => c.on_predict_end(v),
        Hook::EpochStart(Train) => c.on_train_epoch_start(v),
        Hook::EpochStart(Validation) => c.on_validation_epoch_start(v),
        Hook::EpochStart(Test) => c.on_test_epoch_start(v),
        Hook::EpochStart(Predict) => c.on_predict_epoch_start(v),
        Hook::EpochEnd(Train) => c.on_train_epoch_end(v),
        Hook::EpochEnd(Validation) => c.on_validation_epoch_end(v),
        Hook::EpochEnd(Test) => c.on_test_epoch_end(v),
        Hook::EpochEnd(Predict) => c.on_predict_epoch_end(v),
        Hook::BatchStart(Train, i) => c.on_train_batch_start(v, i),
        Hook::BatchStart(Validation, i) => c.on_validation_batch_start(v, i),
        Hook::BatchStart(Test, i) => c.on_test_batch_start(v, i),
        Hook::BatchStart(Predict, i) => c.on_predict_batch_start(v, i),
        Hook::BatchEnd(Train, i) => c.on_train_batch_end(v, i),
        Hook::BatchEnd(Validation, i) => c.on_validation_batch_end(v, i),
        Hook::BatchEnd(Test, i) => c.on_test_batch_end(v, i),
        Hook::BatchEnd(Predict, i) => c.on_predict_batch_end(v, i),
        Hook::BeforeBackward(loss) => c.on_before_backward(v, loss),
        Hook::AfterBackward => c.on_after_backward(v),
        Hook::BeforeOptimizerStep(optimizer) => c.on_before_optimizer_step(v, optimizer),
        Hook::Exception(e) => c.on_exception(v, e),
    }
}

impl<M: LightningModule> Trainer<M> {
    /// Runs `hook` on the module, then on every callback; `optimizers` are those of `fit`
    /// (empty outside it).
    pub(super) fn call(&mut self, module: &mut M, optimizers: &[OptimizerConfig], hook: Hook<'_>) -> Result<()> {
        module_hook(module, hook, self.state.epoch)?;
        self.call_callbacks(module, optimizers, hook)
    }

    /// [`call`](Self::call) with the learner's model and optimizers.
    pub(super) fn call_learner(&mut self, learner: &mut Learner<M>, hook: Hook<'_>) -> Result<()> {
        let (module, optimizers) = learner.parts();
        self.call(module, optimizers, hook)
    }

    /// Runs `hook` on every callback only.
    pub(super) fn call_callbacks(&mut self, module: &mut M, optimizers: &[OptimizerConfig], hook: Hook<'_>) -> Result<()> {
        let Trainer { callbacks, state, loggers, .. } = self;
        for i in 0..callbacks.len() {
            let (before, rest) = callbacks.split_at_mut(i);
            let Some((current, after)) = rest.split_first_mut() else { break };
            let mut view = TrainerView { state: &mut *state, module: &mut *module, loggers: &mut loggers[..], optimizers, others: (&*before, &*after) };
            callback_hook(current.as_mut(), &mut view, hook)?;
        }
        Ok(())
    }
}
