//! The fit loop: sanity check, then epochs of training batches, each followed by validation.

use burn::optim::GradientsParams;

use super::results::{EpochResults, EpochValue, Target};
use super::{Trainer, TrainerState};
use crate::data::{DataModule, Loader};
use crate::error::{Error, Result};
use crate::module::{Batch, LightningModule, Metrics, Stage, StepContext};
use crate::optim::OptimizerConfig;
use crate::progress::Bar;
use crate::summary::ModelSummary;

impl<M: LightningModule> Trainer<M> {
    pub(super) fn run_fit<D: DataModule<Batch = M::Batch>>(&mut self, model: M, dm: &mut D) -> Result<M> {
        let device = self.device.clone();
        if let Some(seed) = self.config.seed {
            device.seed(seed);
        }
        let train_loader = dm.train_dataloader()?.to_device(&device);
        let val_loader = dm.val_dataloader()?.map(|l| l.to_device(&device));
        let validation_enabled = val_loader.is_some() && self.config.limit_val_batches.batches(Some(1)) != Some(0);
        self.state = TrainerState {
            default_root_dir: self.config.default_root_dir.clone(),
            validation_enabled,
            fast_dev_run: self.config.fast_dev_run > 0,
            log_dir: self.state.log_dir.take(),
            ..TrainerState::default()
        };

        let mut model = model.to_device(&device.clone().autodiff()).train();
        let OptimizerConfig { optimizer: mut optim, lr, .. } = model.configure_optimizers();
        self.start_loggers(model.hparams())?;
        if self.config.enable_model_summary {
            println!("{}", ModelSummary::of(&model).render());
        }
        self.dispatch(&mut model, Some(&optim), |m| m.on_fit_start(), |cb, v| cb.on_fit_start(v))?;

        if let (Some(val), true) = (&val_loader, validation_enabled && self.config.num_sanity_val_steps > 0) {
            self.state.sanity_checking = true;
            let limit = self.config.num_sanity_val_steps;
            self.run_validation(&mut model, val, Some(limit))?;
            self.state.sanity_checking = false;
        }

        let max_epochs = self.config.max_epochs.unwrap_or(u64::MAX);
        let max_steps = self.config.max_steps.unwrap_or(u64::MAX);
        let mut epoch = 0;
        while epoch < max_epochs && self.state.global_step < max_steps && !self.state.should_stop {
            self.state.epoch = epoch;
            self.state.stage = Some(Stage::Train);
            self.dispatch(&mut model, Some(&optim), |m| m.on_train_epoch_start(epoch), |cb, v| cb.on_train_epoch_start(v))?;
            let mut results = EpochResults::default();
            let mut iter = train_loader.iter();
            let mut limit = None;
            let mut batch_idx = 0usize;
            let mut last_loss = None;
            while limit.is_none_or(|l| batch_idx < l) && self.state.global_step < max_steps {
                let Some(batch) = iter.next() else { break };
                let batch = batch.map_err(|e| Error::Data(format!("the training loader failed at batch {batch_idx}: {e}")))?;
                if limit.is_none() {
                    let total = estimate_batches(&train_loader, batch.batch_size());
                    limit = self.config.limit_train_batches.batches(Some(total));
                    self.bars.start(Bar::Main, format!("Epoch {epoch}"), limit.map(|l| l as u64));
                    if limit == Some(0) {
                        break;
                    }
                }
                let mut ctx = StepContext::new(Stage::Train, batch_idx, batch.batch_size(), epoch, self.state.global_step);
                let loss = model.training_step(batch, &mut ctx)?;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(lr, model, grads);
                self.state.global_step += 1;
                results.record(ctx.take_logged())?;
                last_loss = Some(loss);
                batch_idx += 1;

                if self.state.global_step % self.config.log_every_n_steps == 0 {
                    let metrics = results.step_values(Target::Logger);
                    self.state.callback_metrics.extend(metrics.clone());
                    self.log_row(metrics, self.state.global_step - 1)?;
                }
                self.bars.set_position(Bar::Main, batch_idx as u64);
                if batch_idx as u64 % self.config.progress_bar_refresh_rate == 0 {
                    self.check_loss(last_loss.take())?;
                    let shown = results.step_values(Target::ProgBar);
                    self.state.progress_bar_metrics.extend(shown);
                    self.bars.set_metrics(&self.state.progress_bar_metrics);
                }
                self.dispatch_callbacks(&model, Some(&optim), |cb, v| cb.on_train_batch_end(v, batch_idx - 1))?;
            }
            self.check_loss(last_loss.take())?;
            let values = results.epoch_values();
            self.publish_epoch(values, Stage::Train)?;

            if validation_enabled && (epoch + 1) % self.config.check_val_every_n_epoch == 0 {
                let val = val_loader.as_ref().expect("validation_enabled implies a loader");
                self.run_validation(&mut model, val, None)?;
                self.dispatch_callbacks(&model, Some(&optim), |cb, v| cb.on_validation_end(v))?;
            }
            self.state.stage = Some(Stage::Train);
            self.dispatch(&mut model, Some(&optim), |m| m.on_train_epoch_end(epoch), |cb, v| cb.on_train_epoch_end(v))?;
            self.bars.set_metrics(&self.state.progress_bar_metrics);
            self.bars.finish(Bar::Main);
            if !self.bars.drawn() {
                let line = crate::progress::format_metrics(&self.state.progress_bar_metrics);
                self.bars.println(&format!("Epoch {epoch}: {batch_idx} batches, global step {} | {line}", self.state.global_step));
            }
            for logger in &mut self.loggers {
                logger.flush()?;
            }
            epoch += 1;
        }
        self.state.epoch = epoch;
        if let Some(reason) = &self.state.stop_reason {
            self.bars.println(&format!("Stopped early: {reason}"));
        }
        self.dispatch(&mut model, Some(&optim), |m| m.on_fit_end(), |cb, v| cb.on_fit_end(v))?;
        self.state.stage = None;
        Ok(model.valid())
    }

    /// One validation run; its epoch metrics are published unless this is the sanity check.
    fn run_validation(&mut self, model: &mut M, loader: &Loader<M::Batch>, limit: Option<usize>) -> Result<()> {
        self.state.stage = Some(Stage::Validation);
        self.dispatch(model, None, |m| m.on_validation_epoch_start(), |cb, v| cb.on_validation_epoch_start(v))?;
        let snapshot = model.valid();
        let values = self.evaluate(&snapshot, loader, Stage::Validation, limit)?;
        if !self.state.sanity_checking {
            self.publish_epoch(values, Stage::Validation)?;
        }
        self.dispatch(model, None, |m| m.on_validation_epoch_end(), |cb, v| cb.on_validation_epoch_end(v))?;
        self.state.stage = Some(Stage::Train);
        Ok(())
    }

    /// Fails with the step number when the loss is NaN or infinite (read only when the bar refreshes).
    fn check_loss(&self, loss: Option<burn::tensor::Tensor<1>>) -> Result<()> {
        if let Some(loss) = loss {
            let value = loss.into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(Error::NonFiniteLoss { value, step: self.state.global_step, epoch: self.state.epoch });
            }
        }
        Ok(())
    }

    /// Puts epoch values into `callback_metrics`, the progress bar and one logger row.
    pub(super) fn publish_epoch(&mut self, values: Vec<EpochValue>, stage: Stage) -> Result<()> {
        let mut row = Metrics::new();
        for v in values {
            self.state.callback_metrics.insert(v.base.clone(), v.value);
            self.state.callback_metrics.insert(v.name.clone(), v.value);
            if v.prog_bar && stage != Stage::Test {
                self.state.progress_bar_metrics.insert(v.name.clone(), v.value);
            }
            if v.logger {
                row.insert(v.name, v.value);
            }
        }
        if !row.is_empty() {
            self.log_row(row, self.state.global_step.saturating_sub(1))?;
        }
        Ok(())
    }

    /// Sends a row (with `epoch`) to every logger.
    pub(super) fn log_row(&mut self, mut row: Metrics, step: u64) -> Result<()> {
        if row.is_empty() {
            return Ok(());
        }
        row.insert("epoch".into(), self.state.epoch as f64);
        self.state.logged_metrics.extend(row.clone());
        for logger in &mut self.loggers {
            logger.log_metrics(&row, step)?;
        }
        Ok(())
    }

    /// Picks the run's version folder and records the hyperparameters, once per Trainer.
    pub(super) fn start_loggers(&mut self, hparams: Option<crate::hparams::SavedHparams>) -> Result<()> {
        if self.state.log_dir.is_some() || self.loggers.is_empty() {
            return Ok(());
        }
        for logger in &mut self.loggers {
            let dir = logger.log_dir()?;
            if self.state.log_dir.is_none() {
                self.state.log_dir = dir;
            }
            if let Some(h) = &hparams {
                logger.log_hyperparams(h)?;
            }
        }
        Ok(())
    }
}

/// Batches in a loader, from its item count and the size of its first batch.
pub(super) fn estimate_batches<B>(loader: &Loader<B>, first_batch: usize) -> usize {
    loader.num_items().div_ceil(first_batch.max(1))
}
