//! The `trainer:` section: the Trainer's options with Lightning's names and defaults, and the
//! `TrainerBuilder` they make.

use std::str::FromStr;

use fulmen_runtime::serde_json::Value;
use fulmen_runtime::trainer::{Limit, TrainerBuilder};
use fulmen_runtime::{Error, GradientClip, LightningModule, Result};
use serde::{Deserialize, Serialize};

use super::components::Component;
use super::layers::Layers;
use crate::hyperparameters;

/// A value written as Lightning writes it (`devices: 1`, `devices: [0, 1]`, `devices: auto`,
/// `precision: 16-mixed`), parsed by the option's own `FromStr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Setting(pub Value);

impl Setting {
    /// `text` as a setting.
    pub fn text(text: &str) -> Self {
        Setting(Value::from(text))
    }

    /// The value as the option's parser reads it: a string as is, a number or list as written.
    fn spelled(&self) -> String {
        match &self.0 {
            Value::String(s) => s.clone(),
            Value::Array(items) => format!("[{}]", items.iter().map(|i| Setting(i.clone()).spelled()).collect::<Vec<_>>().join(", ")),
            other => other.to_string(),
        }
    }

    fn parse<T: FromStr<Err = Error>>(&self, key: &str, layers: &Layers) -> Result<T> {
        self.spelled().parse().map_err(|e: Error| {
            let reason = match e {
                Error::Config(reason) => reason,
                other => other.to_string(),
            };
            Error::Cli(format!("`trainer.{key}` ({}): {reason}", layers.origin(&format!("trainer.{key}"))))
        })
    }
}

/// The Trainer's options, as LightningCLI's `trainer:` section (every one optional).
#[hyperparameters]
pub struct TrainerOptions {
    /// Where to train: auto, cpu, cuda (gpu) or wgpu.
    #[hparam(default = Setting::text("auto"))]
    pub accelerator: Setting,
    /// auto, single_device or ddp (one process per device, started by mpirun or srun).
    #[hparam(default = Setting::text("auto"))]
    pub strategy: Setting,
    /// Which devices: auto, a count (1) or indices ([1] is the second GPU).
    #[hparam(default = Setting::text("auto"))]
    pub devices: Setting,
    /// The machines of a ddp run.
    #[hparam(default = 1, range = 1..)]
    pub num_nodes: usize,
    /// 32-true, 16-mixed, bf16-mixed, 16-true or bf16-true.
    #[hparam(default = Setting::text("32-true"))]
    pub precision: Setting,
    /// Loggers: names (csv, tensorboard, wandb) or `{class_path, init_args}` maps; [] for none.
    #[hparam(default = vec![Component::name("csv"), Component::name("tensorboard")])]
    pub logger: Vec<Component>,
    /// Callbacks: EarlyStopping, ModelCheckpoint, LearningRateMonitor, as names or
    /// `{class_path, init_args}` maps (the program may add its own).
    #[hparam(default = Vec::new())]
    pub callbacks: Vec<Component>,
    /// Run this many batches of train, validation and test once, without loggers (0: off).
    #[hparam(default = 0)]
    pub fast_dev_run: usize,
    /// Stop after this many epochs (null: 1000 unless max_steps is set).
    #[hparam(default = None)]
    pub max_epochs: Option<u64>,
    /// Stop after this many optimizer steps (null: no limit).
    #[hparam(default = None)]
    pub max_steps: Option<u64>,
    /// Training batches per epoch: a count (10) or a fraction (0.25).
    #[hparam(default = Limit::Fraction(1.0))]
    pub limit_train_batches: Limit,
    /// Validation batches per validation run: a count or a fraction.
    #[hparam(default = Limit::Fraction(1.0))]
    pub limit_val_batches: Limit,
    /// Test batches: a count or a fraction.
    #[hparam(default = Limit::Fraction(1.0))]
    pub limit_test_batches: Limit,
    /// Predict batches: a count or a fraction.
    #[hparam(default = Limit::Fraction(1.0))]
    pub limit_predict_batches: Limit,
    /// Validate every n training epochs.
    #[hparam(default = 1, range = 1..)]
    pub check_val_every_n_epoch: u64,
    /// Validation batches run before training.
    #[hparam(default = 2)]
    pub num_sanity_val_steps: usize,
    /// Write step metrics every n optimizer steps.
    #[hparam(default = 50, range = 1..)]
    pub log_every_n_steps: u64,
    /// Sum the gradients of this many batches before each optimizer step.
    #[hparam(default = 1, range = 1..)]
    pub accumulate_grad_batches: usize,
    /// Clip gradients at this threshold (null: no clipping).
    #[hparam(default = None)]
    pub gradient_clip_val: Option<f64>,
    /// What gradient_clip_val bounds: the global L2 norm or each value.
    #[hparam(default = "norm", choices = ["norm", "value"])]
    pub gradient_clip_algorithm: String,
    /// Where lightning_logs/ and checkpoints go.
    #[hparam(default = ".")]
    pub default_root_dir: String,
    /// Show the progress bar.
    #[hparam(default = true)]
    pub enable_progress_bar: bool,
    /// Print the model summary when fit starts.
    #[hparam(default = true)]
    pub enable_model_summary: bool,
}

impl TrainerOptions {
    /// A builder with these options, their loggers and callbacks, and `seed`.
    pub(crate) fn builder<M: LightningModule>(&self, seed: Option<u64>, layers: &Layers) -> Result<TrainerBuilder<M>> {
        let mut builder = fulmen_runtime::Trainer::<M>::builder()
            .accelerator(self.accelerator.parse("accelerator", layers)?)
            .strategy(self.strategy.parse::<fulmen_runtime::Strategy>("strategy", layers)?)
            .devices(self.devices.parse::<fulmen_runtime::Devices>("devices", layers)?)
            .num_nodes(self.num_nodes)
            .precision(self.precision.parse("precision", layers)?)
            .fast_dev_run(self.fast_dev_run)
            .limit_train_batches(self.limit_train_batches)
            .limit_val_batches(self.limit_val_batches)
            .limit_test_batches(self.limit_test_batches)
            .limit_predict_batches(self.limit_predict_batches)
            .check_val_every_n_epoch(self.check_val_every_n_epoch)
            .num_sanity_val_steps(self.num_sanity_val_steps)
            .log_every_n_steps(self.log_every_n_steps)
            .accumulate_grad_batches(self.accumulate_grad_batches)
            .default_root_dir(&self.default_root_dir)
            .enable_progress_bar(self.enable_progress_bar)
            .enable_model_summary(self.enable_model_summary);
        if let Some(n) = self.max_epochs {
            builder = builder.max_epochs(n);
        }
        if let Some(n) = self.max_steps {
            builder = builder.max_steps(n);
        }
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        if let Some(v) = self.gradient_clip_val {
            builder = builder.gradient_clip(if self.gradient_clip_algorithm == "value" { GradientClip::Value(v) } else { GradientClip::Norm(v) });
        }
        builder = if self.logger.is_empty() { builder.no_logger() } else { builder };
        for (i, logger) in self.logger.iter().enumerate() {
            builder = builder.logger_boxed(logger.logger(&format!("trainer.logger[{i}]"), layers)?);
        }
        for (i, callback) in self.callbacks.iter().enumerate() {
            builder = builder.callback_boxed(callback.callback(&format!("trainer.callbacks[{i}]"), layers)?);
        }
        Ok(builder)
    }
}
