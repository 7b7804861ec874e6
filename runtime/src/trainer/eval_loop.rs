//! Evaluation loops: validation and test (no gradients, metrics reduced per epoch) and predict.

use super::batches::Batches;
use super::hooks::Hook;
use super::results::{EpochOutput, EpochResults};
use super::{Trainer, metrics_table};
use crate::data::{Loader, SetupStage};
use crate::error::Result;
use crate::module::{Batch, LightningModule, Metrics, Stage, StepContext};
use crate::progress::Bar;

impl<M: LightningModule> Trainer<M> {
    /// Runs `stage`'s step over `loader` (at most `limit` batches, else the configured limit)
    /// and returns the epoch values.
    pub(super) fn evaluate(&mut self, model: &mut M, loader: &Loader<M::Batch>, stage: Stage, limit: Option<usize>) -> Result<EpochOutput> {
        let configured = match stage {
            Stage::Test => self.config.limit_test_batches,
            _ => self.config.limit_val_batches,
        };
        let title = match (stage, self.state.sanity_checking) {
            (_, true) => "Sanity Checking",
            (Stage::Test, _) => "Testing",
            _ => "Validation",
        };
        let mut results = EpochResults::default();
        let _shard = crate::strategy::shard::enter(self.shard(false));
        let mut batches = Batches::new(loader, configured, limit, stage.prefix(), Bar::Eval, title.to_string());
        while let Some((batch_idx, batch)) = {
            let stop = self.stop_requested(false);
            batches.next(&mut self.bars, (self.state.epoch, self.state.global_step), stop)?
        } {
            self.call(model, &[], Hook::BatchStart(stage, batch_idx))?;
            let mut ctx = StepContext::new(stage, batch_idx, batch.batch_size(), self.state.epoch, self.state.global_step);
            let precision = self.config.precision;
            let batch = crate::precision::cast_batch(batch, precision);
            crate::precision::guard_first_step(precision, batch_idx == 0, stage.noun(), || match stage {
                Stage::Test => model.test_step(batch, &mut ctx),
                _ => model.validation_step(batch, &mut ctx),
            })?;
            results.record_step(&mut ctx)?;
            self.call(model, &[], Hook::BatchEnd(stage, batch_idx))?;
            self.bars.set_position(Bar::Eval, batch_idx as u64 + 1);
        }
        self.bars.finish(Bar::Eval);
        results.epoch_values_across(self.ddp.as_ref())
    }

    /// `validate` and `test`: one evaluation epoch, logged and printed as a table.
    pub(super) fn run_evaluation(&mut self, model: &M, loader: Loader<M::Batch>, stage: Stage) -> Result<Metrics> {
        let mut model = crate::precision::for_compute(model.valid().to_device(&self.device), self.config.precision);
        let result = self.evaluation_stages(&mut model, loader, stage);
        if let Err(error) = &result {
            let _ = self.call_callbacks(&mut model, &[], Hook::Exception(error));
        }
        result
    }

    fn evaluation_stages(&mut self, model: &mut M, loader: Loader<M::Batch>, stage: Stage) -> Result<Metrics> {
        let setup = if stage == Stage::Test { SetupStage::Test } else { SetupStage::Validate };
        let loader = loader.to_device(&self.device);
        self.start_loggers(model.hparams())?;
        self.state.stage = Some(stage);
        self.call(model, &[], Hook::Setup(setup))?;
        self.call(model, &[], Hook::StageStart(stage))?;
        self.call(model, &[], Hook::EpochStart(stage))?;
        let output = self.evaluate(model, &loader, stage, None)?;
        let metrics: Metrics = output.values.iter().map(|v| (v.name.clone(), v.value)).collect();
        self.publish_epoch(output, stage)?;
        self.call(model, &[], Hook::EpochEnd(stage))?;
        self.call(model, &[], Hook::StageEnd(stage))?;
        self.call(model, &[], Hook::Teardown(setup))?;
        for logger in &mut self.loggers {
            logger.flush()?;
        }
        self.state.stage = None;
        let title = if stage == Stage::Test { "Test metric" } else { "Validate metric" };
        if self.state.is_global_zero() {
            println!("{}", metrics_table(title, &metrics));
        }
        Ok(metrics)
    }

    /// `predict`: `predict_step` over the loader, no logging.
    pub(super) fn run_predict(&mut self, model: &M, loader: Loader<M::Batch>) -> Result<Vec<M::Prediction>> {
        let mut model = crate::precision::for_compute(model.valid().to_device(&self.device), self.config.precision);
        let result = self.predict_stages(&mut model, loader);
        if let Err(error) = &result {
            let _ = self.call_callbacks(&mut model, &[], Hook::Exception(error));
        }
        result
    }

    fn predict_stages(&mut self, model: &mut M, loader: Loader<M::Batch>) -> Result<Vec<M::Prediction>> {
        let loader = loader.to_device(&self.device);
        self.state.stage = Some(Stage::Predict);
        self.call(model, &[], Hook::Setup(SetupStage::Predict))?;
        self.call(model, &[], Hook::StageStart(Stage::Predict))?;
        self.call(model, &[], Hook::EpochStart(Stage::Predict))?;
        let mut out = Vec::new();
        let _shard = crate::strategy::shard::enter(self.shard(false));
        let mut batches = Batches::new(&loader, self.config.limit_predict_batches, None, "predict", Bar::Eval, "Predicting".into());
        while let Some((batch_idx, batch)) = {
            let stop = self.stop_requested(false);
            batches.next(&mut self.bars, (self.state.epoch, self.state.global_step), stop)?
        } {
            self.call(model, &[], Hook::BatchStart(Stage::Predict, batch_idx))?;
            let mut ctx = StepContext::new(Stage::Predict, batch_idx, batch.batch_size(), self.state.epoch, self.state.global_step);
            let precision = self.config.precision;
            let batch = crate::precision::cast_batch(batch, precision);
            out.push(crate::precision::guard_first_step(precision, batch_idx == 0, "predict", || model.predict_step(batch, &mut ctx))?);
            self.call(model, &[], Hook::BatchEnd(Stage::Predict, batch_idx))?;
            self.bars.set_position(Bar::Eval, batch_idx as u64 + 1);
        }
        self.bars.finish(Bar::Eval);
        self.call(model, &[], Hook::EpochEnd(Stage::Predict))?;
        self.call(model, &[], Hook::StageEnd(Stage::Predict))?;
        self.call(model, &[], Hook::Teardown(SetupStage::Predict))?;
        self.state.stage = None;
        Ok(out)
    }
}
