//! The logger connector (Lightning's `trainer/connectors/logger_connector`): epoch values into
//! `callback_metrics`, the progress bar and the loggers; charts into the loggers and the log
//! folder; the run's version folder and hyperparameters; finalizing every logger with the
//! stage's outcome.

use super::Trainer;
use super::results::{EpochOutput, PlotValue};
use crate::error::Result;
use crate::module::{LightningModule, Metrics, Stage};

impl<M: LightningModule> Trainer<M> {
    /// Puts epoch values into `callback_metrics`, the progress bar and one logger row, and
    /// the epoch's charts into the loggers and the log folder.
    pub(super) fn publish_epoch(&mut self, output: EpochOutput, stage: Stage) -> Result<()> {
        let mut row = Metrics::new();
        for v in output.values {
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
        for plot in output.plots {
            self.publish_plot(plot)?;
        }
        Ok(())
    }

    /// Sends a chart to the loggers (at the epoch row's step) and saves it as
    /// `<log dir>/<name>.png`; classes are named by the data module when it names them.
    fn publish_plot(&mut self, plot: super::results::EpochPlot) -> Result<()> {
        use crate::loggers::{ClassCurves, ConfusionTable, numbered_classes};
        let step = self.state.global_step.saturating_sub(1);
        let names = |n: usize| self.state.class_names.clone().filter(|names| names.len() == n).unwrap_or_else(|| numbered_classes(n));
        let image = match plot.value {
            PlotValue::PrCurves(curves) => {
                let curves = ClassCurves { classes: names(curves.len()), curves };
                if plot.logger {
                    for logger in &mut self.loggers {
                        logger.log_pr_curves(&plot.name, &curves, step)?;
                    }
                }
                crate::plots::pr_curves(&curves, &format!("Precision-recall: {}", plot.name))?
            }
            PlotValue::ConfusionMatrix(matrix) => {
                let matrix = ConfusionTable { classes: names(matrix.len()), matrix };
                if plot.logger {
                    for logger in &mut self.loggers {
                        logger.log_confusion_matrix(&plot.name, &matrix, step)?;
                    }
                }
                crate::plots::confusion_matrix(&matrix)?
            }
        };
        if let Some(dir) = &self.state.log_dir
            && self.state.is_global_zero()
        {
            crate::fs::atomic_write(&dir.join(format!("{}.png", plot.name)), &image.to_png()?)?;
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
        // Loggers with the same `<save_dir>/<name>` (CSV and TensorBoard by default) share one version.
        let mut versions: Vec<(std::path::PathBuf, u32)> = Vec::new();
        for logger in &mut self.loggers {
            if let Some(base) = logger.unversioned_base() {
                let version = match versions.iter().find(|(b, _)| *b == base) {
                    Some((_, v)) => *v,
                    None => {
                        let v = crate::loggers::next_version(&base)?;
                        versions.push((base, v));
                        v
                    }
                };
                logger.set_version(version);
            }
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

    /// Finalizes every logger with `status`; the first error wins.
    pub(super) fn finalize_loggers(&mut self, status: crate::loggers::RunStatus) -> Result<()> {
        let mut first_error = None;
        for logger in &mut self.loggers {
            if let Err(e) = logger.finalize(status) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
