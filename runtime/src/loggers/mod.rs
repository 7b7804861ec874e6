//! Loggers: where metrics and hyperparameters go. The Trainer drives any number of them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hparams::SavedHparams;
use crate::module::Metrics;

mod csv;

pub use csv::CsvLogger;

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

/// A sink for a run's hyperparameters and metrics (Lightning's `Logger`).
pub trait Logger: Send {
    /// The experiment name (the folder under the save dir, e.g. `lightning_logs`).
    fn name(&self) -> &str;
    /// Picks the save dir when none was given (`Trainer`'s `default_root_dir`); called before any logging.
    fn set_default_root(&mut self, root: &Path);
    /// The version folder this run writes to (created on first use), if the logger writes files.
    fn log_dir(&mut self) -> Result<Option<PathBuf>>;
    /// Records the hyperparameters.
    fn log_hyperparams(&mut self, hparams: &SavedHparams) -> Result<()>;
    /// Records metric values at a global step.
    fn log_metrics(&mut self, metrics: &Metrics, step: u64) -> Result<()>;
    /// Writes out anything buffered.
    fn flush(&mut self) -> Result<()>;
    /// Ends the run with `status` (flushes first).
    fn finalize(&mut self, status: RunStatus) -> Result<()>;
}

/// The next free `version_N` folder under `dir` (0 when there is none), as Lightning numbers them.
pub fn next_version(dir: &Path) -> Result<u32> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("cannot list", dir)(e)),
    };
    let max = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("version_")?.parse::<u32>().ok())
        .max();
    Ok(max.map_or(0, |m| m + 1))
}
