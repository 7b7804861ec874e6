//! Callbacks: code that runs at the Trainer's hook points, after the module's hook of the same
//! name. The hook list and its order are in `trainer/hooks.rs` (and the README).

use std::path::Path;

use burn::tensor::Tensor;

use crate::data::SetupStage;
use crate::error::{Error, Result};
use crate::loggers::Logger;
use crate::module::LightningModule;
use crate::trainer::TrainerState;

mod early_stopping;
mod image_predictions;
mod lr_monitor;
mod model_checkpoint;
mod weight_averaging;

pub use early_stopping::{EarlyStopping, Mode};
pub use image_predictions::ImagePredictionLogger;
pub use lr_monitor::LearningRateMonitor;
pub use model_checkpoint::ModelCheckpoint;
pub use weight_averaging::EmaWeightAveraging;

/// A run of callbacks, as the dispatcher holds them.
pub(crate) type Callbacks<'a, M> = &'a [Box<dyn Callback<M>>];

/// What a callback sees of the Trainer and what it may ask of it. It reads the state (position,
/// metrics, paths) through [`state`](Self::state); it asks through methods: stop
/// ([`request_stop`](Self::request_stop)), write a checkpoint
/// ([`save_checkpoint`](Self::save_checkpoint), [`set_best_model_path`](Self::set_best_model_path)),
/// log ([`log_metrics`](Self::log_metrics), [`log_images`](Self::log_images),
/// [`log_summary`](Self::log_summary)). It may change the module between steps.
pub struct TrainerView<'a, M: LightningModule> {
    pub(crate) state: &'a mut TrainerState,
    /// The module being trained or evaluated (on its device; call `forward` for inference). A
    /// callback may change it between steps (an average of its weights, for instance).
    pub module: &'a mut M,
    /// The loggers.
    pub loggers: &'a mut [Box<dyn Logger>],
    pub(crate) optimizers: &'a [crate::optim::OptimizerConfig],
    /// The other callbacks (before and after the one being called), for their states.
    pub(crate) others: (Callbacks<'a, M>, Callbacks<'a, M>),
}

impl<M: LightningModule> TrainerView<'_, M> {
    /// The run's position, its latest metrics and its checkpoint paths.
    pub fn state(&self) -> &TrainerState {
        self.state
    }

    /// The optimizers of `fit`, in `configure_optimizers`' order (empty outside `fit`).
    pub fn optimizers(&self) -> &[crate::optim::OptimizerConfig] {
        self.optimizers
    }

    /// Writes a checkpoint of the module (and optimizer, unless `weights_only`) to `path`,
    /// atomically, with the position, the hyperparameters, every callback's `state_dict`
    /// (`caller`'s included: pass `self`) and what `on_save_checkpoint` hooks add.
    ///
    /// In a data-parallel run only rank 0 writes the file; every rank records its path.
    pub fn save_checkpoint(&mut self, path: &Path, weights_only: bool, caller: &dyn Callback<M>) -> Result<()> {
        if !self.state.is_global_zero() {
            self.state.last_model_path = Some(path.to_path_buf());
            return Ok(());
        }
        let (before, after) = self.others;
        let callbacks: Vec<&dyn Callback<M>> =
            before.iter().map(|c| c.as_ref()).chain(std::iter::once(caller)).chain(after.iter().map(|c| c.as_ref())).collect();
        let mut states = serde_json::Map::new();
        let mut extra = serde_json::Map::new();
        self.module.on_save_checkpoint(&mut extra)?;
        for callback in &callbacks {
            callback.on_save_checkpoint(self.state, &mut extra)?;
            if let Some(state) = callback.state_dict() {
                let key = callback.state_key();
                if states.insert(key.clone(), state).is_some() {
                    let reason = format!("another callback has the state key `{key}` too; give one of them its own `state_key()`");
                    return Err(Error::Callback { callback: callback.name(), reason });
                }
            }
        }
        let position = crate::checkpoint::Position {
            epoch: self.state.epoch,
            global_step: self.state.global_step,
            batches_in_epoch: self.state.train_batches_done,
            epoch_finished: self.state.train_epoch_finished,
            // The samples of the epoch's order trained on by all ranks together.
            samples_in_epoch: Some(self.state.train_samples_done * self.state.world_size.max(1) as u64),
            validation_pending: self.state.validation_pending,
            seed: self.state.seed,
            precision: self.state.precision,
            grad_scaler: self.state.grad_scaler,
        };
        crate::checkpoint::save(
            path,
            &*self.module,
            if weights_only { &[] } else { self.optimizers },
            position,
            self.module.hparams().map(|h| h.values),
            states,
            extra,
        )?;
        self.state.last_model_path = Some(path.to_path_buf());
        for logger in self.loggers.iter_mut() {
            logger.after_save_checkpoint(path)?;
        }
        Ok(())
    }

    /// Removes a checkpoint this run wrote (rank 0's, in a data-parallel run).
    pub fn remove_checkpoint(&mut self, path: &Path) -> Result<()> {
        if !self.state.is_global_zero() {
            return Ok(());
        }
        std::fs::remove_file(path).map_err(Error::io("cannot remove old checkpoint", path))
    }

    /// Sets a run-level summary value in every logger that keeps one (W&B's run summary).
    pub fn log_summary(&mut self, key: &str, value: f64) -> Result<()> {
        for logger in self.loggers.iter_mut() {
            logger.log_summary(key, value)?;
        }
        Ok(())
    }

    /// Sends images to every logger that takes them, at the step of the latest optimizer step
    /// (where epoch-end metrics are logged too).
    pub fn log_images(&mut self, key: &str, images: &[crate::loggers::Image]) -> Result<()> {
        let step = self.state.global_step.saturating_sub(1);
        for logger in self.loggers.iter_mut().filter(|l| l.takes_images()) {
            logger.log_images(key, images, step)?;
        }
        Ok(())
    }

    /// Sends `metrics` (with `epoch` added) to every logger at global step `step`, and makes
    /// them visible in `logged_metrics` and `callback_metrics`.
    pub fn log_metrics(&mut self, mut metrics: crate::module::Metrics, step: u64) -> Result<()> {
        metrics.insert("epoch".into(), self.state.epoch as f64);
        self.state.logged_metrics.extend(metrics.clone());
        self.state.callback_metrics.extend(metrics.clone());
        for logger in self.loggers.iter_mut() {
            logger.log_metrics(&metrics, step)?;
        }
        Ok(())
    }

    /// Asks `fit` to stop after the current epoch; `reason` is printed and kept as
    /// `state().stop_reason`.
    pub fn request_stop(&mut self, reason: impl Into<String>) {
        self.state.should_stop = true;
        self.state.stop_reason = Some(reason.into());
    }

    /// Records the best checkpoint so far (`state().best_model_path`, what `"best"` resolves to).
    pub fn set_best_model_path(&mut self, path: Option<std::path::PathBuf>) {
        self.state.best_model_path = path;
    }
}

/// A callback (Lightning's `Callback`). Every hook defaults to doing nothing; each runs after
/// the module's hook of the same name, callbacks in the order added (checkpoint-writing ones
/// last, so the checkpoints hold the others' updated state).
#[allow(unused_variables)]
pub trait Callback<M: LightningModule>: Send {
    /// A name for messages.
    fn name(&self) -> String {
        std::any::type_name::<Self>().rsplit("::").next().unwrap_or("callback").to_string()
    }
    /// Where this callback's state is stored in checkpoints (default: its name).
    fn state_key(&self) -> String {
        self.name()
    }
    /// The state to store in checkpoints (`None`: stateless).
    fn state_dict(&self) -> Option<serde_json::Value> {
        None
    }
    /// Restores the state from a checkpoint when `fit` resumes.
    fn load_state_dict(&mut self, state: serde_json::Value) -> Result<()> {
        Ok(())
    }
    /// Whether this callback writes checkpoints (it then runs after the others).
    fn writes_checkpoints(&self) -> bool {
        false
    }
    /// A folder this callback writes checkpoints to, when it was given one (searched by
    /// `fit_from(.., "last")`).
    fn checkpoint_dirpath(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// A stage starts (`fit`, `validate`, `test` or `predict`), after the data module's setup.
    fn setup(&mut self, trainer: &mut TrainerView<'_, M>, stage: SetupStage) -> Result<()> {
        Ok(())
    }
    /// A stage ended.
    fn teardown(&mut self, trainer: &mut TrainerView<'_, M>, stage: SetupStage) -> Result<()> {
        Ok(())
    }
    /// `fit` starts.
    fn on_fit_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// `fit` ends.
    fn on_fit_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// The sanity validation pass starts.
    fn on_sanity_check_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// The sanity validation pass ended.
    fn on_sanity_check_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Training starts (after the sanity check).
    fn on_train_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Training ended.
    fn on_train_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A validation run starts (also the sanity check's).
    fn on_validation_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A validation run ended (also the sanity check's: see `trainer.state.sanity_checking`).
    fn on_validation_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Testing starts.
    fn on_test_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Testing ended.
    fn on_test_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Predicting starts.
    fn on_predict_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Predicting ended.
    fn on_predict_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A training epoch starts.
    fn on_train_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A training epoch ends (after its validation; its epoch metrics are in `callback_metrics`).
    fn on_train_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A validation epoch starts.
    fn on_validation_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A validation epoch ends (its metrics are in `callback_metrics`, except in the sanity check).
    fn on_validation_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// The test epoch starts.
    fn on_test_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// The test epoch ends (its metrics are in `callback_metrics`).
    fn on_test_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// The predict epoch starts.
    fn on_predict_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// The predict epoch ends.
    fn on_predict_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A training batch starts.
    fn on_train_batch_start(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A training batch ended (`global_step` already counts it).
    fn on_train_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A validation batch starts.
    fn on_validation_batch_start(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A validation batch ended.
    fn on_validation_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A test batch starts.
    fn on_test_batch_start(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A test batch ended.
    fn on_test_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A predict batch starts.
    fn on_predict_batch_start(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A predict batch ended.
    fn on_predict_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// Before `loss.backward()` (reading `loss` waits for the device).
    fn on_before_backward(&mut self, trainer: &mut TrainerView<'_, M>, loss: &Tensor<1>) -> Result<()> {
        Ok(())
    }
    /// After the backward pass.
    fn on_after_backward(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Before `optimizer` steps (its gradients are final: clipped in automatic mode).
    fn on_before_optimizer_step(&mut self, trainer: &mut TrainerView<'_, M>, optimizer: &crate::optim::OptimizerConfig) -> Result<()> {
        Ok(())
    }
    /// A stage failed or was interrupted with `error`; runs before loggers are finalized.
    fn on_exception(&mut self, trainer: &mut TrainerView<'_, M>, error: &Error) -> Result<()> {
        Ok(())
    }
    /// A checkpoint is being written: add entries to `extra` (stored in the checkpoint).
    fn on_save_checkpoint(&self, state: &TrainerState, extra: &mut serde_json::Map<String, serde_json::Value>) -> Result<()> {
        Ok(())
    }
    /// `fit` resumes from a checkpoint whose extra entries are `extra` (after `load_state_dict`).
    fn on_load_checkpoint(&mut self, state: &TrainerState, extra: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
        Ok(())
    }
}

/// A score as JSON; infinities and NaN (which JSON lacks) as the strings `inf`, `-inf`, `nan`.
pub(crate) fn score_to_json(value: f64) -> serde_json::Value {
    match value {
        v if v.is_finite() => serde_json::json!(v),
        v if v.is_nan() => "nan".into(),
        v if v > 0.0 => "inf".into(),
        _ => "-inf".into(),
    }
}

/// The inverse of [`score_to_json`].
pub(crate) fn score_from_json(value: Option<&serde_json::Value>) -> Option<f64> {
    match value? {
        serde_json::Value::String(s) => s.parse().ok(),
        v => v.as_f64(),
    }
}
