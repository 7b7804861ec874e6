//! Loggers: where metrics, hyperparameters, images and curves go. The Trainer drives any number
//! of them; the default is CSV + TensorBoard in one `lightning_logs/version_N` folder.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::hparams::SavedHparams;
use crate::module::Metrics;

mod csv;
mod media;
mod record_file;
pub mod tensorboard;
mod version_dir;
pub mod wandb;

pub use csv::CsvLogger;
pub use media::{ClassCurves, ConfusionTable, Image, Table, numbered_classes};
pub use tensorboard::TensorBoardLogger;
pub use version_dir::{VersionDir, next_version};
pub use wandb::WandbLogger;

/// How a run ended, as loggers record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Finished normally.
    Success,
    /// Stopped by an error.
    Failed,
    /// Stopped by the user (Ctrl-C).
    Interrupted,
}

impl RunStatus {
    /// The status of a stage that ended with `result`.
    pub fn of<T>(result: &Result<T>) -> Self {
        match result {
            Ok(_) => RunStatus::Success,
            Err(crate::Error::Interrupted { .. }) => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        }
    }

    /// The status of a run whose stages ended in `self` and then `next`: a failure or an
    /// interruption is not undone by a later stage's success.
    pub fn then(self, next: RunStatus) -> RunStatus {
        match (self, next) {
            (RunStatus::Success, next) => next,
            (earlier, RunStatus::Success) => earlier,
            (_, next) => next,
        }
    }
}

/// A sink for a run's hyperparameters, metrics and media (Lightning's `Logger`). Everything
/// beyond metrics and hyperparameters has a default that ignores it, so a logger implements
/// what its format can hold.
#[allow(unused_variables)]
pub trait Logger: Send {
    /// The experiment name (the folder under the save dir, e.g. `lightning_logs`; the project for W&B).
    fn name(&self) -> &str;
    /// Picks the save dir when none was given (`Trainer`'s `default_root_dir`); called before any logging.
    fn set_default_root(&mut self, root: &Path);
    /// The version folder this run writes to (created on first use), if the logger writes files.
    fn log_dir(&mut self) -> Result<Option<PathBuf>>;
    /// The folder that holds the experiment (`<save_dir>/<name>/...`), once known.
    fn save_dir(&self) -> Option<PathBuf> {
        None
    }
    /// The run's version (`version_N`'s number, W&B's run id), once chosen.
    fn version(&self) -> Option<String> {
        None
    }
    /// `<save_dir>/<name>` while this logger's `version_N` is not chosen yet: loggers with the
    /// same base share one version folder (the Trainer picks it once).
    fn unversioned_base(&self) -> Option<PathBuf> {
        None
    }
    /// Fixes the version number (see [`unversioned_base`](Self::unversioned_base)).
    fn set_version(&mut self, version: u32) {}
    /// Records the hyperparameters.
    fn log_hyperparams(&mut self, hparams: &SavedHparams) -> Result<()>;
    /// Records metric values at a global step.
    fn log_metrics(&mut self, metrics: &Metrics, step: u64) -> Result<()>;
    /// Whether [`log_images`](Self::log_images) stores anything.
    fn takes_images(&self) -> bool {
        false
    }
    /// Records images (with their captions) under `key`.
    fn log_images(&mut self, key: &str, images: &[Image], step: u64) -> Result<()> {
        Ok(())
    }
    /// Records a table under `key`.
    fn log_table(&mut self, key: &str, table: &Table, step: u64) -> Result<()> {
        Ok(())
    }
    /// Records per-class precision-recall curves under `key`.
    fn log_pr_curves(&mut self, key: &str, curves: &ClassCurves, step: u64) -> Result<()> {
        Ok(())
    }
    /// Records a confusion matrix under `key`.
    fn log_confusion_matrix(&mut self, key: &str, matrix: &ConfusionTable, step: u64) -> Result<()> {
        Ok(())
    }
    /// Sets a run-level summary value (e.g. the best monitored score).
    fn log_summary(&mut self, key: &str, value: f64) -> Result<()> {
        Ok(())
    }
    /// Told after a checkpoint is written to `path`.
    fn after_save_checkpoint(&mut self, path: &Path) -> Result<()> {
        Ok(())
    }
    /// Writes out anything buffered.
    fn flush(&mut self) -> Result<()>;
    /// Ends the run with `status` (flushes first).
    fn finalize(&mut self, status: RunStatus) -> Result<()>;
}
