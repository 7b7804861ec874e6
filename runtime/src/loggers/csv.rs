//! `CsvLogger`: Lightning's layout, `<save_dir>/<name>/version_N/metrics.csv` + `hparams.yaml`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Logger, RunStatus, VersionDir};
use crate::error::{Error, Result};
use crate::fs::atomic_write;
use crate::hparams::SavedHparams;
use crate::module::Metrics;

/// Writes metrics as CSV rows (one per `log_metrics` call, sorted columns, `step` included) and
/// the hyperparameters as `hparams.yaml`, as Lightning's `CSVLogger` does. Each row reaches the
/// file when it is logged (appended; the whole file is rewritten, atomically, only when a new
/// column appears), so a killed run keeps every row it logged.
#[derive(Debug)]
pub struct CsvLogger {
    dir: VersionDir,
    rows: Vec<Metrics>,
    columns: BTreeSet<String>,
    /// The columns of the file on disk and how many rows it holds.
    written: Option<(BTreeSet<String>, usize)>,
}

impl CsvLogger {
    /// A logger writing under `save_dir/lightning_logs`.
    pub fn new(save_dir: impl Into<PathBuf>) -> Self {
        CsvLogger { dir: VersionDir::new(Some(save_dir.into()), "lightning_logs"), ..Self::default_root() }
    }

    /// A logger that writes under the Trainer's `default_root_dir`.
    pub fn default_root() -> Self {
        CsvLogger { dir: VersionDir::new(None, "lightning_logs"), rows: Vec::new(), columns: BTreeSet::new(), written: None }
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

    /// The header line and `rows` as CSV lines.
    fn render(&self, header: bool, rows: &[Metrics]) -> String {
        let mut out = String::new();
        if header {
            out.push_str(&self.columns.iter().cloned().collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        for row in rows {
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
        self.flush()
    }
    fn flush(&mut self) -> Result<()> {
        let path = self.dir.dir()?.join("metrics.csv");
        match &self.written {
            Some((columns, rows)) if *rows == self.rows.len() && *columns == self.columns => return Ok(()),
            Some((columns, rows)) if *columns == self.columns && path.is_file() => {
                use std::io::Write;
                let tail = self.render(false, &self.rows[*rows..]);
                let mut file = std::fs::OpenOptions::new().append(true).open(&path).map_err(Error::io("cannot open", &path))?;
                file.write_all(tail.as_bytes()).map_err(Error::io("cannot write", &path))?;
            }
            _ => atomic_write(&path, self.render(true, &self.rows).as_bytes())?,
        }
        self.written = Some((self.columns.clone(), self.rows.len()));
        Ok(())
    }
    fn finalize(&mut self, _status: RunStatus) -> Result<()> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, f64)]) -> Metrics {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn every_row_is_on_disk_when_logged_and_a_new_column_rewrites_the_header() {
        let root = std::env::temp_dir().join(format!("fulmen-csv-rows-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut logger = CsvLogger::new(&root).version(0);
        let file = root.join("lightning_logs/version_0/metrics.csv");
        logger.log_metrics(&row(&[("loss", 0.5)]), 0).unwrap();
        logger.log_metrics(&row(&[("loss", 0.25)]), 1).unwrap();
        // No flush, no finalize: what a process killed now leaves.
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "loss,step\n0.5,0\n0.25,1\n");
        logger.log_metrics(&row(&[("acc", 0.75), ("loss", 0.125)]), 2).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "acc,loss,step\n,0.5,0\n,0.25,1\n0.75,0.125,2\n");
        logger.log_metrics(&row(&[("loss", 0.0625)]), 3).unwrap();
        logger.finalize(RunStatus::Success).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "acc,loss,step\n,0.5,0\n,0.25,1\n0.75,0.125,2\n,0.0625,3\n");
        let _ = std::fs::remove_dir_all(&root);
    }
}
