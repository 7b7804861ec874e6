//! Optimizers as `configure_optimizers` returns them, with PyTorch's defaults.

use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

/// An optimizer and its learning rate, as returned by
/// [`configure_optimizers`](crate::LightningModule::configure_optimizers).
pub struct OptimizerConfig {
    /// Burn's type-erased optimizer (its state is saved in checkpoints).
    pub optimizer: ModuleOptimizer,
    /// The learning rate passed to every step.
    pub lr: f64,
    /// A short description for the logs, e.g. `Adam(lr=0.0002)`.
    pub name: String,
}

impl OptimizerConfig {
    /// Wraps any Burn optimizer (`SomeConfig::new().init()`) with its learning rate.
    pub fn new(optimizer: impl Into<ModuleOptimizer>, lr: f64, name: impl Into<String>) -> Self {
        OptimizerConfig { optimizer: optimizer.into(), lr, name: name.into() }
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
