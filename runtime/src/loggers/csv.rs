//! `CsvLogger`: Lightning's layout, `<save_dir>/<name>/version_N/metrics.csv` + `hparams.yaml`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Logger, RunStatus, VersionDir};
use crate::error::Result;
use crate::fs::atomic_write;
use crate::hparams::SavedHparams;
use crate::module::Metrics;

/// Writes metrics as CSV rows (one per `log_metrics` call, sorted columns, `step` included) and
/// the hyperparameters as `hparams.yaml`, as Lightning's `CSVLogger` does.
#[derive(Debug)]
pub struct CsvLogger {
    dir: VersionDir,
    rows: Vec<Metrics>,
    columns: BTreeSet<String>,
    dirty: bool,
}

impl CsvLogger {
    /// A logger writing under `save_dir/lightning_logs`.
    pub fn new(save_dir: impl Into<PathBuf>) -> Self {
        CsvLogger { dir: VersionDir::new(Some(save_dir.into()), "lightning_logs"), ..Self::default_root() }
    }

    /// A logger that writes under the Trainer's `default_root_dir`.
    pub fn default_root() -> Self {
        CsvLogger { dir: VersionDir::new(None, "lightning_logs"), rows: Vec::new(), columns: BTreeSet::new(), dirty: false }
    }

    /// Sets the experiment name (default `lightning_logs`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.dir.set_name(name);
        self
    }

    /// Writes to `version_N` instead of the next free version.
    pub fn version(mut self, version: u32) -> Self {
        self.dir.set_version(version);
        self
    }

    fn render(&self) -> String {
        let mut out = self.columns.iter().cloned().collect::<Vec<_>>().join(",");
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = self.columns.iter().map(|c| row.get(c).map(|v| format_cell(*v)).unwrap_or_default()).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// Integers as integers (`epoch`, `step`), other values with full precision.
fn format_cell(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v}") }
}

impl Logger for CsvLogger {
    crate::version_dir_methods!(dir);
    fn log_hyperparams(&mut self, hparams: &SavedHparams) -> Result<()> {
        let path = self.dir.dir()?.join("hparams.yaml");
        atomic_write(&path, hparams.to_yaml()?.as_bytes())
    }
    fn log_metrics(&mut self, metrics: &Metrics, step: u64) -> Result<()> {
        let mut row = metrics.clone();
        row.insert("step".into(), step as f64);
        self.columns.extend(row.keys().cloned());
        self.rows.push(row);
        self.dirty = true;
        if self.rows.len().is_multiple_of(100) {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let path = self.dir.dir()?.join("metrics.csv");
        atomic_write(&path, self.render().as_bytes())?;
        self.dirty = false;
        Ok(())
    }
    fn finalize(&mut self, _status: RunStatus) -> Result<()> {
        self.flush()
    }
}
