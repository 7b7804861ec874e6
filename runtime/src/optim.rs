//! Optimizers as `configure_optimizers` returns them, with PyTorch's defaults.
//!
//! One [`OptimizerConfig`] is a Burn optimizer, its learning rate (or scheduler) and the
//! parameters it steps: all of the module's, or those of the parts given to
//! [`OptimizerConfig::on`] (a GAN's generator and discriminator are two parts of one struct).
//! Burn's `ModuleOptimizer::step` moves exactly the parameters that have a gradient, and keeps
//! its state per `ParamId`; so each optimizer is handed only its own parameters' gradients and
//! two optimizers over disjoint parts never touch each other's weights or state.

use std::collections::HashSet;

use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Tensor;

use crate::kernels::FusedAdam;

/// An optimizer, its learning rate, an optional scheduler and the parameters it steps, as
/// returned by [`configure_optimizers`](crate::LightningModule::configure_optimizers). During
/// `fit` it also holds the optimizer's state; both states are saved in checkpoints.
pub struct OptimizerConfig {
    /// Burn's type-erased optimizer.
    pub optimizer: ModuleOptimizer,
    /// The learning rate of every step (the scheduler's, when there is one).
    pub lr: f64,
    /// A short description for the logs, e.g. `Adam(lr=0.0002)`.
    pub name: String,
    /// A learning-rate scheduler and when it steps.
    pub scheduler: Option<Schedule>,
    label: Option<String>,
    params: Option<HashSet<ParamId>>,
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
    /// Wraps any Burn optimizer (`SomeConfig::new().init()`) with its learning rate; it steps
    /// every parameter of the module until [`on`](Self::on) narrows it.
    pub fn new(optimizer: impl Into<ModuleOptimizer>, lr: f64, name: impl Into<String>) -> Self {
        OptimizerConfig { optimizer: optimizer.into(), lr, name: name.into(), scheduler: None, label: None, params: None }
    }

    /// Adds one of Burn's schedulers (`CosineAnnealingLrSchedulerConfig::new(..).init()?`,
    /// `StepLrSchedulerConfig`, ...), stepped every optimizer step or every epoch; it replaces
    /// the fixed learning rate, as Burn's own learner uses it.
    pub fn with_scheduler(mut self, scheduler: impl Into<ModuleLrScheduler>, interval: Interval) -> Self {
        self.scheduler = Some(Schedule { scheduler: scheduler.into(), interval, current: None });
        self
    }

    /// Names the optimizer: manual steps find it by this name, and LearningRateMonitor logs
    /// its rate as `lr-<name>` (default: the optimizer's type, `lr-Adam`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.label = Some(name.into());
        self
    }

    /// Restricts the optimizer to the parameters of `part` (a submodule of the model, e.g.
    /// `&self.generator`); call it again to add more parts. Parameters of no part stay frozen.
    pub fn on<P: Module>(mut self, part: &P) -> Self {
        let mut ids = ParamIds(self.params.take().unwrap_or_default());
        part.visit(&mut ids);
        self.params = Some(ids.0);
        self
    }

    /// The name given by [`named`](Self::named), else the optimizer's type (`Adam`).
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or_else(|| self.name.split('(').next().unwrap_or("optimizer"))
    }

    /// The parameters this optimizer steps (`None`: all of them).
    pub fn params(&self) -> Option<&HashSet<ParamId>> {
        self.params.as_ref()
    }

    /// Steps the scheduler if it runs at `interval`; `lr` becomes its (base) rate.
    pub(crate) fn advance(&mut self, interval: Interval) {
        if self.scheduler.as_ref().is_some_and(|s| s.interval == interval) {
            self.step_scheduler();
        }
    }

    /// Steps the scheduler, if there is one, whatever its interval.
    pub(crate) fn step_scheduler(&mut self) {
        if let Some(schedule) = &mut self.scheduler {
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

/// What `configure_optimizers` returns: one optimizer (`adam(1e-3).into()`) or several
/// (`vec![..].into()`, for manual optimization).
#[derive(Debug)]
pub struct Optimizers(pub Vec<OptimizerConfig>);

impl From<OptimizerConfig> for Optimizers {
    fn from(config: OptimizerConfig) -> Self {
        Optimizers(vec![config])
    }
}

impl From<Vec<OptimizerConfig>> for Optimizers {
    fn from(configs: Vec<OptimizerConfig>) -> Self {
        Optimizers(configs)
    }
}

impl<const N: usize> From<[OptimizerConfig; N]> for Optimizers {
    fn from(configs: [OptimizerConfig; N]) -> Self {
        Optimizers(configs.into())
    }
}

/// Collects the ids of a module's float parameters.
struct ParamIds(HashSet<ParamId>);

impl ModuleVisitor for ParamIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.insert(param.id);
    }
}

/// Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8; Burn's own default eps is 1e-5).
pub fn adam(lr: f64) -> OptimizerConfig {
    OptimizerConfig::new(FusedAdam::new(0.9, 0.999, 1e-8), lr, format!("Adam(lr={lr})"))
}

/// Adam with PyTorch's defaults except the betas (DCGAN uses `(0.5, 0.999)`).
pub fn adam_betas(lr: f64, beta_1: f32, beta_2: f32) -> OptimizerConfig {
    OptimizerConfig::new(FusedAdam::new(beta_1, beta_2, 1e-8), lr, format!("Adam(lr={lr}, betas=({beta_1}, {beta_2}))"))
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
