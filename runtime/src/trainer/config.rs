//! The Trainer's options, with Lightning's names and defaults, checked once in `build()`.

use std::path::PathBuf;

use crate::accelerator::{Accelerator, Devices};
use crate::error::{Error, Result};
use crate::precision::{GradScalerConfig, Precision};
use crate::strategy::Strategy;

/// How many batches of a loader to run: a count or a fraction (Lightning's `limit_*_batches`);
/// in a config file an integer is a count (`10`) and a float a fraction (`0.25`, `1.0`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Limit {
    /// At most this many batches.
    Batches(i64),
    /// This fraction of the loader's batches (0.0..=1.0).
    Fraction(f64),
}

impl From<usize> for Limit {
    fn from(n: usize) -> Self {
        Limit::Batches(n as i64)
    }
}
impl From<i32> for Limit {
    fn from(n: i32) -> Self {
        Limit::Batches(n as i64)
    }
}
impl From<u64> for Limit {
    fn from(n: u64) -> Self {
        Limit::Batches(n as i64)
    }
}
impl From<f64> for Limit {
    fn from(f: f64) -> Self {
        Limit::Fraction(f)
    }
}

impl Limit {
    /// The number of batches to run out of `total` (`None`: unknown length).
    pub fn batches(self, total: Option<usize>) -> Option<usize> {
        match self {
            Limit::Batches(n) => Some(total.map_or(n as usize, |t| t.min(n as usize))),
            Limit::Fraction(f) if f >= 1.0 => total,
            Limit::Fraction(f) => total.map(|t| ((t as f64) * f) as usize),
        }
    }

    fn check(self, name: &str) -> Result<()> {
        match self {
            Limit::Batches(n) if n < 0 => Err(Error::Config(format!("{name} = {n}: use a batch count ≥ 0 or a fraction in 0.0..=1.0"))),
            Limit::Fraction(f) if !(0.0..=1.0).contains(&f) => {
                Err(Error::Config(format!("{name} = {f}: a fraction must be in 0.0..=1.0 (or pass a batch count)")))
            }
            _ => Ok(()),
        }
    }
}

/// Every Trainer option.
#[derive(Debug, Clone)]
pub struct TrainerConfig {
    /// Stop after this many epochs (Lightning: 1000 when neither max_epochs nor max_steps is set).
    pub max_epochs: Option<u64>,
    /// Stop after this many optimizer steps.
    pub max_steps: Option<u64>,
    /// Where to train.
    pub accelerator: Accelerator,
    /// Which devices (Lightning's `devices`: `auto`, a count, or indices; one per process).
    pub devices: Devices,
    /// Where the replicas live and how they agree: `auto`, `single_device`, `ddp`.
    pub strategy: Strategy,
    /// The machines of a `ddp` run (the launcher starts `devices × num_nodes` processes).
    pub num_nodes: usize,
    /// Under `ddp`, give each rank its shard of every loader (Lightning's
    /// `use_distributed_sampler`); `false` when your loaders shard themselves.
    pub use_distributed_sampler: bool,
    /// Training batches per epoch.
    pub limit_train_batches: Limit,
    /// Validation batches per validation run.
    pub limit_val_batches: Limit,
    /// Test batches.
    pub limit_test_batches: Limit,
    /// Predict batches.
    pub limit_predict_batches: Limit,
    /// Run `n` batches of train/val/test once, without loggers or checkpoints (0: off).
    pub fast_dev_run: usize,
    /// Validate every n training epochs.
    pub check_val_every_n_epoch: u64,
    /// Validation batches run before training to catch bugs early (0: none).
    pub num_sanity_val_steps: usize,
    /// Write step-level metrics every n optimizer steps.
    pub log_every_n_steps: u64,
    /// Update the progress bar's metrics every n batches.
    pub progress_bar_refresh_rate: u64,
    /// Seed Burn's generator when `fit` starts.
    pub seed: Option<u64>,
    /// Where logs and checkpoints go by default.
    pub default_root_dir: PathBuf,
    /// Show the progress bar.
    pub enable_progress_bar: bool,
    /// Print the model summary when `fit` starts.
    pub enable_model_summary: bool,
    /// Stop gracefully on Ctrl-C (installs a SIGINT handler once per process).
    pub handle_sigint: bool,
    /// Clip gradients before each optimizer step: by their global L2 norm or by value.
    pub gradient_clip: Option<GradientClip>,
    /// Sum the gradients of this many batches before each optimizer step (losses are divided
    /// by it, so the step sees their mean).
    pub accumulate_grad_batches: usize,
    /// Keep freed activation memory in the process (glibc's mmap and trim thresholds raised,
    /// see [`crate::allocator::tune`]); `FULMEN_TUNE_ALLOCATOR=0` also turns it off.
    pub tune_allocator: bool,
    /// The precision of training and evaluation (Lightning's `precision`; default `32-true`).
    pub precision: Precision,
    /// `16-mixed`'s loss scaler (PyTorch GradScaler's defaults).
    pub grad_scaler: GradScalerConfig,
}

/// Gradient clipping (Lightning's `gradient_clip_val` with `gradient_clip_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GradientClip {
    /// Scale all gradients together so their global L2 norm is at most this.
    Norm(f64),
    /// Clamp every gradient element to `[-v, v]`.
    Value(f64),
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            max_epochs: None,
            max_steps: None,
            accelerator: Accelerator::Auto,
            devices: Devices::Auto,
            strategy: Strategy::Auto,
            num_nodes: 1,
            use_distributed_sampler: true,
            limit_train_batches: Limit::Fraction(1.0),
            limit_val_batches: Limit::Fraction(1.0),
            limit_test_batches: Limit::Fraction(1.0),
            limit_predict_batches: Limit::Fraction(1.0),
            fast_dev_run: 0,
            check_val_every_n_epoch: 1,
            num_sanity_val_steps: 2,
            log_every_n_steps: 50,
            progress_bar_refresh_rate: 20,
            seed: None,
            default_root_dir: PathBuf::from("."),
            enable_progress_bar: true,
            enable_model_summary: true,
            handle_sigint: true,
            gradient_clip: None,
            accumulate_grad_batches: 1,
            tune_allocator: true,
            precision: Precision::F32,
            grad_scaler: GradScalerConfig::default(),
        }
    }
}

impl TrainerConfig {
    /// Checks option combinations; applies `fast_dev_run`.
    pub fn resolved(mut self) -> Result<Self> {
        if self.max_epochs == Some(0) {
            return Err(Error::Config("max_epochs = 0 would train nothing; use at least 1".into()));
        }
        if self.check_val_every_n_epoch == 0 {
            return Err(Error::Config("check_val_every_n_epoch must be at least 1".into()));
        }
        if self.log_every_n_steps == 0 {
            return Err(Error::Config("log_every_n_steps must be at least 1".into()));
        }
        if self.num_nodes == 0 {
            return Err(Error::Config("num_nodes must be at least 1".into()));
        }
        if self.accumulate_grad_batches == 0 {
            return Err(Error::Config("accumulate_grad_batches must be at least 1 (1 = a step per batch)".into()));
        }
        match self.gradient_clip {
            Some(GradientClip::Norm(v) | GradientClip::Value(v)) if !(v.is_finite() && v > 0.0) => {
                return Err(Error::Config(format!("gradient clipping needs a positive, finite threshold, not {v}")));
            }
            _ => {}
        }
        self.grad_scaler.check()?;
        if self.progress_bar_refresh_rate == 0 {
            return Err(Error::Config("progress_bar_refresh_rate must be at least 1 (or disable the bar)".into()));
        }
        for (name, limit) in [
            ("limit_train_batches", self.limit_train_batches),
            ("limit_val_batches", self.limit_val_batches),
            ("limit_test_batches", self.limit_test_batches),
            ("limit_predict_batches", self.limit_predict_batches),
        ] {
            limit.check(name)?;
        }
        if self.fast_dev_run > 0 {
            let n = Limit::Batches(self.fast_dev_run as i64);
            self.max_epochs = Some(1);
            self.max_steps = Some(self.fast_dev_run as u64);
            self.limit_train_batches = n;
            self.limit_val_batches = n;
            self.limit_test_batches = n;
            self.limit_predict_batches = n;
            self.num_sanity_val_steps = 0;
            self.check_val_every_n_epoch = 1;
            self.log_every_n_steps = 1;
        }
        if self.max_epochs.is_none() && self.max_steps.is_none() {
            self.max_epochs = Some(1000);
        }
        Ok(self)
    }
}
