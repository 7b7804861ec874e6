//! What the Trainer knows about the run, as callbacks see it.

use std::path::PathBuf;

use crate::module::{Metrics, Stage};

/// The run's position and its latest metrics (Lightning's trainer attributes).
#[derive(Debug, Clone, Default)]
pub struct TrainerState {
    /// Current epoch (0-based); after fit, the number of epochs run.
    pub epoch: u64,
    /// Optimizer steps taken.
    pub global_step: u64,
    /// The stage running now.
    pub stage: Option<Stage>,
    /// True during the sanity validation pass before training.
    pub sanity_checking: bool,
    /// True while `fit` runs (also during its validation runs).
    pub fitting: bool,
    /// Latest values of every logged metric (what callbacks monitor).
    pub callback_metrics: Metrics,
    /// Latest values sent to the loggers.
    pub logged_metrics: Metrics,
    /// Latest values shown in the progress bar.
    pub progress_bar_metrics: Metrics,
    /// Set by a callback (EarlyStopping) to end `fit` after the current epoch.
    pub should_stop: bool,
    /// The first logger's version folder (checkpoints go under it).
    pub log_dir: Option<PathBuf>,
    /// The Trainer's `default_root_dir`.
    pub default_root_dir: PathBuf,
    /// Whether this `fit` runs a validation loop.
    pub validation_enabled: bool,
    /// A `fast_dev_run`: callbacks should write nothing.
    pub fast_dev_run: bool,
    /// Why `fit` was asked to stop early (set by EarlyStopping).
    pub stop_reason: Option<String>,
    /// The best checkpoint ModelCheckpoint has written, if any.
    pub best_model_path: Option<PathBuf>,
    /// The last checkpoint written, if any.
    pub last_model_path: Option<PathBuf>,
    /// Training batches done in the current epoch.
    pub train_batches_done: usize,
    /// Training samples done in the current epoch.
    pub train_samples_done: u64,
    /// Whether the current epoch's training batches are all done.
    pub train_epoch_finished: bool,
    /// Whether the epoch's validation has begun and not yet published its metrics (a checkpoint
    /// written now resumes into it).
    pub validation_pending: bool,
    /// The Trainer's seed.
    pub seed: Option<u64>,
    /// The precision being trained in.
    pub precision: crate::precision::Precision,
    /// `16-mixed`'s loss scaler after the latest step.
    pub grad_scaler: Option<crate::precision::GradScalerState>,
    /// The checkpoint `fit` resumed from, if any.
    pub resumed_from: Option<PathBuf>,
    /// This process's rank in a data-parallel run (0 otherwise).
    pub global_rank: usize,
    /// The processes of a data-parallel run (1 otherwise; 0 before the Trainer is built).
    pub world_size: usize,
    /// Time this `fit` spent averaging gradients across the ranks of a data-parallel run
    /// (moving them to the host and the all-reduce): its communication cost.
    pub gradient_sync: std::time::Duration,
    /// Class names from the data module (`DataModule::class_names`), for captions and charts.
    pub class_names: Option<Vec<String>>,
}

impl TrainerState {
    /// Rank 0, the process that logs and writes checkpoints (every process of a single-device run).
    pub fn is_global_zero(&self) -> bool {
        self.global_rank == 0
    }

    /// A metric from `callback_metrics`, or an error listing what is available.
    pub fn metric(&self, name: &str, hint: &str) -> crate::Result<f64> {
        self.callback_metrics.get(name).copied().ok_or_else(|| crate::Error::MissingMetric {
            name: name.to_string(),
            available: self.callback_metrics.keys().cloned().collect::<Vec<_>>().join(", "),
            hint: hint.to_string(),
        })
    }
}
