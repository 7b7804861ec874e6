//! `EarlyStopping`: stop `fit` when a monitored metric stops improving.

use super::{Callback, TrainerView};
use crate::error::Result;
use crate::module::LightningModule;

/// Whether lower or higher values of a monitored metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lower is better (losses).
    Min,
    /// Higher is better (accuracies).
    Max,
}

impl Mode {
    /// The worst possible value.
    pub fn worst(self) -> f64 {
        match self {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        }
    }
    /// Whether `candidate` beats `reference` by more than `min_delta`.
    pub fn improves(self, candidate: f64, reference: f64, min_delta: f64) -> bool {
        match self {
            Mode::Min => candidate + min_delta < reference,
            Mode::Max => candidate - min_delta > reference,
        }
    }
}

/// Stops training when `monitor` has not improved by more than `min_delta` for `patience`
/// consecutive checks (each validation end), as Lightning's `EarlyStopping`.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: String,
    min_delta: f64,
    patience: u32,
    mode: Mode,
    strict: bool,
    check_finite: bool,
    check_on_train_epoch_end: bool,
    stopping_threshold: Option<f64>,
    divergence_threshold: Option<f64>,
    best: f64,
    wait_count: u32,
    stopped_epoch: Option<u64>,
    reason: Option<String>,
}

impl EarlyStopping {
    /// Monitors `monitor` with Lightning's defaults: mode min, patience 3, min_delta 0, strict.
    pub fn new(monitor: impl Into<String>) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience: 3,
            mode: Mode::Min,
            strict: true,
            check_finite: true,
            check_on_train_epoch_end: false,
            stopping_threshold: None,
            divergence_threshold: None,
            best: f64::INFINITY,
            wait_count: 0,
            stopped_epoch: None,
            reason: None,
        }
    }
    /// Sets the minimum change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }
    /// Sets how many checks without improvement are tolerated.
    pub fn patience(mut self, patience: u32) -> Self {
        self.patience = patience;
        self
    }
    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.best = mode.worst();
        self
    }
    /// With `strict` (default) a missing metric is an error; without, the check is skipped.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
    /// Stop when the metric becomes NaN or infinite (default true).
    pub fn check_finite(mut self, check: bool) -> Self {
        self.check_finite = check;
        self
    }
    /// Check at the end of each training epoch instead of each validation.
    pub fn check_on_train_epoch_end(mut self, on: bool) -> Self {
        self.check_on_train_epoch_end = on;
        self
    }
    /// The best value seen.
    pub fn best_score(&self) -> f64 {
        self.best
    }
    /// Checks without improvement so far.
    pub fn wait_count(&self) -> u32 {
        self.wait_count
    }
    /// The epoch training stopped at, if it did.
    pub fn stopped_epoch(&self) -> Option<u64> {
        self.stopped_epoch
    }
    /// Why training stopped, if it did.
    pub fn stop_reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Stops as soon as the metric reaches this value (below it in mode min, above in max).
    pub fn stopping_threshold(mut self, value: f64) -> Self {
        self.stopping_threshold = Some(value);
        self
    }
    /// Stops as soon as the metric is worse than this value (above it in mode min).
    pub fn divergence_threshold(mut self, value: f64) -> Self {
        self.divergence_threshold = Some(value);
        self
    }

    fn check<M: LightningModule>(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if trainer.state().sanity_checking {
            return Ok(());
        }
        let current = match trainer.state().callback_metrics.get(&self.monitor) {
            Some(v) => *v,
            None if !self.strict => return Ok(()),
            None => {
                return trainer
                    .state
                    .metric(&self.monitor, "EarlyStopping monitors it: log it in a step, or pass strict(false) to skip missing values")
                    .map(|_| ());
            }
        };
        let reached =
            |threshold: Option<f64>, better: bool| threshold.is_some_and(|t| if better == (self.mode == Mode::Min) { current < t } else { current > t });
        let stop = if self.check_finite && !current.is_finite() {
            Some(format!("monitored metric {} = {current} is not finite; previous best {:.6}", self.monitor, self.best))
        } else if reached(self.stopping_threshold, true) {
            Some(format!("stopping threshold reached: {} = {current}", self.monitor))
        } else if reached(self.divergence_threshold, false) {
            Some(format!("divergence threshold passed: {} = {current}", self.monitor))
        } else if self.mode.improves(current, self.best, self.min_delta) {
            self.best = current;
            self.wait_count = 0;
            None
        } else {
            self.wait_count += 1;
            (self.wait_count >= self.patience)
                .then(|| format!("monitored metric {} did not improve in the last {} checks; best score {:.6}", self.monitor, self.wait_count, self.best))
        };
        if let Some(reason) = stop {
            self.stopped_epoch = Some(trainer.state().epoch);
            self.reason = Some(reason.clone());
            trainer.request_stop(reason);
        }
        Ok(())
    }
}

impl<M: LightningModule> Callback<M> for EarlyStopping {
    fn state_key(&self) -> String {
        format!("EarlyStopping{{monitor={}, mode={:?}}}", self.monitor, self.mode).to_lowercase()
    }
    fn state_dict(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "wait_count": self.wait_count,
            "best_score": super::score_to_json(self.best),
            "stopped_epoch": self.stopped_epoch,
            "patience": self.patience,
        }))
    }
    fn load_state_dict(&mut self, state: serde_json::Value) -> Result<()> {
        let wait = state.get("wait_count").and_then(|v| v.as_u64()).ok_or_else(|| crate::Error::serde("`wait_count` is missing"))?;
        self.wait_count = wait as u32;
        self.best = super::score_from_json(state.get("best_score")).unwrap_or(self.mode.worst());
        self.stopped_epoch = state.get("stopped_epoch").and_then(|v| v.as_u64());
        Ok(())
    }
    fn on_validation_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if self.check_on_train_epoch_end { Ok(()) } else { self.check(trainer) }
    }
    fn on_train_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if self.check_on_train_epoch_end || !trainer.state().validation_enabled { self.check(trainer) } else { Ok(()) }
    }
}
