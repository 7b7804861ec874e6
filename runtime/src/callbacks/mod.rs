//! Callbacks: code that runs at the Trainer's hook points, after the module's hook of the same name.

use std::path::Path;

use burn::optim::ModuleOptimizer;

use crate::error::Result;
use crate::loggers::Logger;
use crate::module::LightningModule;
use crate::trainer::TrainerState;

mod early_stopping;
mod model_checkpoint;

pub use early_stopping::{EarlyStopping, Mode};
pub use model_checkpoint::ModelCheckpoint;

/// What a callback sees of the Trainer: its state, the module, the loggers, and checkpointing.
pub struct TrainerView<'a, M: LightningModule> {
    /// Position and metrics.
    pub state: &'a mut TrainerState,
    /// The module being trained or evaluated.
    pub module: &'a M,
    /// The loggers.
    pub loggers: &'a mut [Box<dyn Logger>],
    pub(crate) optimizer: Option<&'a ModuleOptimizer>,
}

impl<M: LightningModule> TrainerView<'_, M> {
    /// Writes a checkpoint of the module (and optimizer, unless `weights_only`) to `path`, atomically.
    pub fn save_checkpoint(&self, path: &Path, weights_only: bool) -> Result<()> {
        crate::checkpoint::save(
            path,
            self.module,
            if weights_only { None } else { self.optimizer },
            self.state.epoch,
            self.state.global_step,
            self.module.hparams().map(|h| h.values),
            serde_json::Map::new(),
        )
    }

    /// Asks `fit` to stop after the current epoch.
    pub fn request_stop(&mut self) {
        self.state.should_stop = true;
    }
}

/// A callback (Lightning's `Callback`). Every hook defaults to doing nothing.
#[allow(unused_variables)]
pub trait Callback<M: LightningModule>: Send {
    /// A name for messages.
    fn name(&self) -> String {
        std::any::type_name::<Self>().rsplit("::").next().unwrap_or("callback").to_string()
    }
    /// `fit` starts (after the module's `on_fit_start`).
    fn on_fit_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// `fit` ends.
    fn on_fit_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A training epoch starts.
    fn on_train_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A training epoch ends (its epoch metrics are in `callback_metrics`).
    fn on_train_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A training batch ended (`global_step` already counts it).
    fn on_train_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, batch_idx: usize) -> Result<()> {
        Ok(())
    }
    /// A validation epoch starts (also during the sanity check).
    fn on_validation_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// A validation epoch ends (its metrics are in `callback_metrics`; also during the sanity check).
    fn on_validation_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// Validation ended (after `on_validation_epoch_end`); not called during the sanity check.
    fn on_validation_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
    /// The test epoch ends.
    fn on_test_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        Ok(())
    }
}
