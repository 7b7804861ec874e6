//! Optimizers as `configure_optimizers` returns them, with PyTorch's defaults.

use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

/// An optimizer, its learning rate and an optional scheduler, as returned by
/// [`configure_optimizers`](crate::LightningModule::configure_optimizers). During `fit` it
/// also holds the optimizer's state; both states are saved in checkpoints.
pub struct OptimizerConfig {
    /// Burn's type-erased optimizer.
    pub optimizer: ModuleOptimizer,
    /// The learning rate of every step (the scheduler's, when there is one).
    pub lr: f64,
    /// A short description for the logs, e.g. `Adam(lr=0.0002)`.
    pub name: String,
    /// A learning-rate scheduler and when it steps.
    pub scheduler: Option<Schedule>,
}

/// When a scheduler steps (Lightning's `interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Before every optimizer step.
    Step,
    /// At the start of every epoch.
    Epoch,
}

/// One of Burn's learning-rate schedulers with its interval.
pub struct Schedule {
    /// The scheduler; each `step()` returns the learning rates to use next.
    pub scheduler: ModuleLrScheduler,
    /// When it steps.
    pub interval: Interval,
    /// The rates of its latest step (per parameter group).
    current: Option<ModuleLearningRate>,
}

impl OptimizerConfig {
    /// Wraps any Burn optimizer (`SomeConfig::new().init()`) with its learning rate.
    pub fn new(optimizer: impl Into<ModuleOptimizer>, lr: f64, name: impl Into<String>) -> Self {
        OptimizerConfig { optimizer: optimizer.into(), lr, name: name.into(), scheduler: None }
    }

    /// Adds one of Burn's schedulers (`CosineAnnealingLrSchedulerConfig::new(..).init()?`,
    /// `StepLrSchedulerConfig`, ...), stepped every optimizer step or every epoch; it replaces
    /// the fixed learning rate, as Burn's own learner uses it.
    pub fn with_scheduler(mut self, scheduler: impl Into<ModuleLrScheduler>, interval: Interval) -> Self {
        self.scheduler = Some(Schedule { scheduler: scheduler.into(), interval, current: None });
        self
    }

    /// Steps the scheduler if it runs at `interval`; `lr` becomes its (base) rate.
    pub(crate) fn advance(&mut self, interval: Interval) {
        if let Some(schedule) = &mut self.scheduler
            && schedule.interval == interval
        {
            let rates = schedule.scheduler.step();
            self.lr = rates.base();
            schedule.current = Some(rates);
        }
    }

    /// The rates for the next optimizer step.
    pub(crate) fn rates(&self) -> ModuleLearningRate {
        self.scheduler.as_ref().and_then(|s| s.current.clone()).unwrap_or_else(|| self.lr.into())
    }
}

impl std::fmt::Debug for OptimizerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8; Burn's own default eps is 1e-5).
pub fn adam(lr: f64) -> OptimizerConfig {
    OptimizerConfig::new(AdamConfig::new().with_epsilon(1e-8).init(), lr, format!("Adam(lr={lr})"))
}

/// AdamW with PyTorch's defaults (betas 0.9/0.999, eps 1e-8, weight decay 0.01).
pub fn adamw(lr: f64) -> OptimizerConfig {
    let config = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01);
    OptimizerConfig::new(config.init(), lr, format!("AdamW(lr={lr})"))
}

/// Plain SGD (no momentum, no weight decay), as `torch.optim.SGD(lr)`.
pub fn sgd(lr: f64) -> OptimizerConfig {
    OptimizerConfig::new(SgdConfig::new().init(), lr, format!("SGD(lr={lr})"))
}
