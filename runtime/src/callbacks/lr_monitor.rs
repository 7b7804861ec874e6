//! `LearningRateMonitor`: logs each optimizer's learning rate in force, as `lr-<name>`
//! (`lr-generator`; an unnamed optimizer by its type, `lr-Adam`, with `-1`, `-2`, .. after
//! the first of several of one type, as Lightning names them).

use super::{Callback, TrainerView};
use crate::error::Result;
use crate::module::LightningModule;
use crate::optim::Interval;

/// Logs the learning rate every epoch (default) or every optimizer step, as Lightning's
/// `LearningRateMonitor`.
#[derive(Debug, Clone)]
pub struct LearningRateMonitor {
    interval: Interval,
}

impl Default for LearningRateMonitor {
    fn default() -> Self {
        LearningRateMonitor { interval: Interval::Epoch }
    }
}

impl LearningRateMonitor {
    /// Logs at the start of every epoch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Logs every `Interval::Step` or every `Interval::Epoch`.
    pub fn logging_interval(mut self, interval: Interval) -> Self {
        self.interval = interval;
        self
    }

    fn log<M: LightningModule>(&self, trainer: &mut TrainerView<'_, M>, step: u64) -> Result<()> {
        let mut row = crate::module::Metrics::new();
        let mut seen: Vec<&str> = Vec::new();
        for optimizer in trainer.optimizers() {
            let label = optimizer.label();
            let earlier = seen.iter().filter(|l| **l == label).count();
            seen.push(label);
            let key = if earlier == 0 { format!("lr-{label}") } else { format!("lr-{label}-{earlier}") };
            row.insert(key, optimizer.lr);
        }
        trainer.log_metrics(row, step)
    }
}

impl<M: LightningModule> Callback<M> for LearningRateMonitor {
    fn on_train_epoch_start(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if self.interval == Interval::Epoch { self.log(trainer, trainer.state().global_step) } else { Ok(()) }
    }
    fn on_train_batch_end(&mut self, trainer: &mut TrainerView<'_, M>, _batch_idx: usize) -> Result<()> {
        if self.interval == Interval::Step { self.log(trainer, trainer.state().global_step.saturating_sub(1)) } else { Ok(()) }
    }
}
