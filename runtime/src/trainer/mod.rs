//! The `Trainer`: builder, options, and the fit/validate/test/predict entry points.
//! The loops live in `fit_loop.rs` and `eval_loop.rs` (their shared batch preamble in
//! `batches.rs`), the step in `optimization/`, hook dispatch in `hooks.rs`, and what goes to
//! the loggers in `logger_connector.rs`.

use std::path::PathBuf;

use burn::tensor::Device;

use crate::accelerator::{Accelerator, Devices, SelectedDevice};
use crate::callbacks::Callback;
use crate::data::{DataModule, SetupStage};
use crate::error::{Error, Result};
use crate::loggers::{CsvLogger, Logger, TensorBoardLogger};
use crate::module::{LightningModule, Metrics};
use crate::progress::ProgressBars;

mod batches;
mod ckpt_path;
mod config;
mod eval_loop;
mod fit_loop;
mod hooks;
mod logger_connector;
mod loss_watch;
mod optimization;
mod results;
mod state;

pub use ckpt_path::CkptPath;
pub use config::{GradientClip, Limit, TrainerConfig};
pub use hooks::Hook;
pub use optimization::{ManualStep, OptimizerHandle, OptimizerRef};
pub use results::{EpochOutput, EpochPlot, EpochResults, EpochValue, PlotValue, Target};
pub use state::TrainerState;

/// Runs a [`LightningModule`] on a [`DataModule`]: `fit`, `validate`, `test`, `predict`.
pub struct Trainer<M: LightningModule> {
    config: TrainerConfig,
    device: Device,
    device_summary: String,
    callbacks: Vec<Box<dyn Callback<M>>>,
    loggers: Vec<Box<dyn Logger>>,
    state: TrainerState,
    bars: ProgressBars,
    /// The data-parallel run this process is a rank of (`None`: one device).
    ddp: Option<crate::strategy::Ddp>,
}

/// Builds a [`Trainer`]; every option has Lightning's default.
pub struct TrainerBuilder<M: LightningModule> {
    config: TrainerConfig,
    callbacks: Vec<Box<dyn Callback<M>>>,
    loggers: Vec<Box<dyn Logger>>,
    default_logger: bool,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $field:ident $(($wrap:path))?;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.$field = setters!(@wrap value $(, $wrap)?);
                self
            }
        )*
    };
    (@wrap $v:ident) => { $v };
    (@wrap $v:ident, $wrap:path) => { $wrap($v) };
}

impl<M: LightningModule> TrainerBuilder<M> {
    setters! {
        /// Stop after this many epochs.
        max_epochs: u64 => max_epochs (Some);
        /// Stop after this many optimizer steps.
        max_steps: u64 => max_steps (Some);
        /// Where to train (default `auto`).
        accelerator: Accelerator => accelerator;
        /// Run `n` batches of each stage once, without loggers or checkpoints, to find bugs fast.
        fast_dev_run: usize => fast_dev_run;
        /// Validate every n epochs (default 1).
        check_val_every_n_epoch: u64 => check_val_every_n_epoch;
        /// Validation batches run before training (default 2).
        num_sanity_val_steps: usize => num_sanity_val_steps;
        /// Write step metrics every n steps (default 50).
        log_every_n_steps: u64 => log_every_n_steps;
        /// Refresh the progress bar's metrics every n batches (default 20).
        progress_bar_refresh_rate: u64 => progress_bar_refresh_rate;
        /// Seeds Burn's generator on the Trainer's device in `build()` (so a model built after it
        /// draws the same weights every run) and each epoch of `fit` (so a resumed run draws
        /// what the full run drew).
        seed: u64 => seed (Some);
        /// Show the progress bar (default true).
        enable_progress_bar: bool => enable_progress_bar;
        /// Print the model summary at fit start (default true).
        enable_model_summary: bool => enable_model_summary;
        /// Stop gracefully on Ctrl-C (default true).
        handle_sigint: bool => handle_sigint;
        /// Clip gradients before each optimizer step (default: no clipping).
        gradient_clip: GradientClip => gradient_clip (Some);
        /// Batches whose gradients make one optimizer step (default 1).
        accumulate_grad_batches: usize => accumulate_grad_batches;
        /// Raise glibc's malloc thresholds so each step reuses its buffers (default true).
        tune_allocator: bool => tune_allocator;
        /// The precision: `32-true` (default), `16-mixed`, `bf16-mixed`, `16-true`, `bf16-true`
        /// (`"bf16-mixed".parse()?`).
        precision: crate::precision::Precision => precision;
        /// The options of `16-mixed`'s loss scaler.
        grad_scaler: crate::precision::GradScalerConfig => grad_scaler;
    }

    /// Where logs and checkpoints go (default: the working directory).
    pub fn default_root_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.default_root_dir = dir.into();
        self
    }
    /// Training batches per epoch: a count (`10`) or a fraction (`0.25`).
    pub fn limit_train_batches(mut self, limit: impl Into<Limit>) -> Self {
        self.config.limit_train_batches = limit.into();
        self
    }
    /// Validation batches per run: a count or a fraction.
    pub fn limit_val_batches(mut self, limit: impl Into<Limit>) -> Self {
        self.config.limit_val_batches = limit.into();
        self
    }
    /// Test batches: a count or a fraction.
    pub fn limit_test_batches(mut self, limit: impl Into<Limit>) -> Self {
        self.config.limit_test_batches = limit.into();
        self
    }
    /// Predict batches: a count or a fraction.
    pub fn limit_predict_batches(mut self, limit: impl Into<Limit>) -> Self {
        self.config.limit_predict_batches = limit.into();
        self
    }
    /// Which devices: a count (`1`), indices (`[1]`, the second GPU) or [`Devices::Auto`]
    /// (the default: the first); one per process.
    pub fn devices(mut self, devices: impl Into<Devices>) -> Self {
        self.config.devices = devices.into();
        self
    }
    /// Where the replicas live and how they agree (default `auto`: `ddp` when a launcher
    /// started several processes); `"ddp".parse()?` or [`Strategy::ddp`](crate::strategy::Strategy::ddp).
    pub fn strategy(mut self, strategy: impl Into<crate::strategy::Strategy>) -> Self {
        self.config.strategy = strategy.into();
        self
    }
    /// The machines of a `ddp` run (default 1); the launcher starts `devices × num_nodes`
    /// processes.
    pub fn num_nodes(mut self, n: usize) -> Self {
        self.config.num_nodes = n;
        self
    }
    /// Under `ddp`, shard every loader by rank (default true, as Lightning's
    /// `use_distributed_sampler`); turn it off when your loaders shard themselves
    /// ([`crate::strategy::shard::current`]).
    pub fn use_distributed_sampler(mut self, shard: bool) -> Self {
        self.config.use_distributed_sampler = shard;
        self
    }
    /// Adds a callback; callbacks run in the order added, after the module's own hook.
    pub fn callback(mut self, callback: impl Callback<M> + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }
    /// Adds a callback chosen at run time (from a config file, say).
    pub fn callback_boxed(mut self, callback: Box<dyn Callback<M>>) -> Self {
        self.callbacks.push(callback);
        self
    }
    /// Adds a logger (the default CSV logger is used only when none is added).
    pub fn logger(mut self, logger: impl Logger + 'static) -> Self {
        self.loggers.push(Box::new(logger));
        self
    }
    /// Adds a logger chosen at run time.
    pub fn logger_boxed(mut self, logger: Box<dyn Logger>) -> Self {
        self.loggers.push(logger);
        self
    }
    /// Disables logging entirely (no default CSV logger).
    pub fn no_logger(mut self) -> Self {
        self.default_logger = false;
        self.loggers.clear();
        self
    }
    /// Replaces every option at once.
    pub fn config(mut self, config: TrainerConfig) -> Self {
        self.config = config;
        self
    }

    /// Checks the options and picks the device.
    pub fn build(self) -> Result<Trainer<M>> {
        let mut config = self.config.resolved()?;
        let ddp = crate::strategy::start(&config.strategy, &config.devices, config.num_nodes)?;
        let selected = match &ddp {
            Some(ddp) => config.accelerator.select_for_rank(&config.devices, ddp.env().local_rank),
            None => config.accelerator.select(&config.devices),
        };
        let SelectedDevice { device, name, summary, cuda_index } = selected.map_err(|e| match &ddp {
            Some(ddp) => Error::Distributed { rank: ddp.rank(), reason: e.to_string() },
            None => e,
        })?;
        let global_zero = ddp.as_ref().is_none_or(|ddp| ddp.rank() == 0);
        if global_zero {
            println!("{summary}");
        }
        if let Some(ddp) = &ddp {
            ddp.connect_gradients(cuda_index)?;
            println!("{}", ddp.summary());
            if device == Device::flex() {
                crate::strategy::share_cpu(ddp.env());
            }
        }
        config.precision.check_device(&device, &name)?;
        if let Some(seed) = config.seed {
            crate::seed_everything(seed, &device);
        }
        if config.tune_allocator {
            crate::allocator::tune_unless_opted_out();
        }
        let mut loggers = self.loggers;
        if !global_zero {
            // Rank 0 logs, shows progress and writes checkpoints (Lightning's rank_zero_only).
            loggers.clear();
            config.enable_progress_bar = false;
            config.enable_model_summary = false;
        } else if config.fast_dev_run > 0 {
            loggers.clear();
        } else if loggers.is_empty() && self.default_logger {
            loggers.push(Box::new(CsvLogger::default_root()));
            loggers.push(Box::new(TensorBoardLogger::default_root()));
        }
        for logger in &mut loggers {
            logger.set_default_root(&config.default_root_dir);
        }
        let state = TrainerState {
            default_root_dir: config.default_root_dir.clone(),
            global_rank: ddp.as_ref().map_or(0, |d| d.rank()),
            world_size: ddp.as_ref().map_or(1, |d| d.world_size()),
            ..TrainerState::default()
        };
        let bars = ProgressBars::new(config.enable_progress_bar);
        // Checkpoint writers run last, so their checkpoints hold the other callbacks' new state.
        let mut callbacks = self.callbacks;
        callbacks.sort_by_key(|c| c.writes_checkpoints());
        Ok(Trainer { config, device, device_summary: summary, callbacks, loggers, state, bars, ddp })
    }
}

impl<M: LightningModule> Trainer<M> {
    /// A builder with Lightning's defaults.
    pub fn builder() -> TrainerBuilder<M> {
        TrainerBuilder { config: TrainerConfig::default(), callbacks: Vec::new(), loggers: Vec::new(), default_logger: true }
    }

    /// The device this Trainer runs on (build the model here to avoid a copy).
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// Lightning's one-line device summary, printed by `build()`.
    pub fn device_summary(&self) -> &str {
        &self.device_summary
    }
    /// The options in force.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }
    /// Position and latest metrics.
    pub fn state(&self) -> &TrainerState {
        &self.state
    }
    /// Latest value of every logged metric.
    pub fn callback_metrics(&self) -> &Metrics {
        &self.state.callback_metrics
    }
    /// The loggers.
    pub fn loggers_mut(&mut self) -> &mut [Box<dyn Logger>] {
        &mut self.loggers
    }

    /// Trains `model` on `dm`'s data and returns the trained model (on this Trainer's device,
    /// without autodiff). Validation runs every `check_val_every_n_epoch` epochs.
    pub fn fit<D: DataModule<Batch = M::Batch>>(&mut self, model: M, dm: &mut D) -> Result<M> {
        self.run_stage(|t| t.fit_body(model, dm, None))
    }

    /// `fit`, resuming from a checkpoint (Lightning's `ckpt_path`): a path, `"last"` or
    /// `"best"`. The weights, optimizer state, epoch, global step, the position in the epoch
    /// and the callbacks' states are restored; with a `seed`, a run resumed at an epoch
    /// boundary computes exactly what the uninterrupted run would have.
    pub fn fit_from<D: DataModule<Batch = M::Batch>>(&mut self, model: M, dm: &mut D, ckpt_path: impl Into<CkptPath>) -> Result<M> {
        let ckpt_path = ckpt_path.into();
        self.run_stage(|t| {
            let path = t.resolve_checkpoint(&ckpt_path)?;
            let checkpoint = crate::checkpoint::Checkpoint::read(&path)?;
            t.fit_body(model, dm, Some((path, checkpoint)))
        })
    }

    fn fit_body<D: DataModule<Batch = M::Batch>>(&mut self, model: M, dm: &mut D, resume: Option<(PathBuf, crate::checkpoint::Checkpoint)>) -> Result<M> {
        self.prepare_data(dm)?;
        dm.setup(SetupStage::Fit)?;
        self.state.class_names = dm.class_names();
        let model = self.run_fit(model, dm, resume)?;
        if let Some(ddp) = &self.ddp {
            // Rank 0's checkpoints are written before any rank goes on (to test "best", say).
            ddp.barrier("the end of fit")?;
        }
        Ok(model)
    }

    /// Runs the validation loop once and returns its epoch metrics.
    pub fn validate<D: DataModule<Batch = M::Batch>>(&mut self, model: &M, dm: &mut D) -> Result<Metrics> {
        self.run_stage(|t| {
            t.prepare_data(dm)?;
            dm.setup(SetupStage::Validate)?;
            t.state.class_names = dm.class_names();
            let loader = dm
                .val_dataloader()?
                .ok_or_else(|| Error::Data("the data module has no val_dataloader: implement `val_dataloader` to use Trainer::validate".into()))?;
            t.run_evaluation(model, loader, crate::module::Stage::Validation)
        })
    }

    /// Runs the test loop once, prints the results table and returns the test metrics.
    pub fn test<D: DataModule<Batch = M::Batch>>(&mut self, model: &M, dm: &mut D) -> Result<Metrics> {
        self.run_stage(|t| t.test_body(model, dm))
    }

    fn test_body<D: DataModule<Batch = M::Batch>>(&mut self, model: &M, dm: &mut D) -> Result<Metrics> {
        self.prepare_data(dm)?;
        dm.setup(SetupStage::Test)?;
        self.state.class_names = dm.class_names();
        let loader = dm
            .test_dataloader()?
            .ok_or_else(|| Error::Data("the data module has no test_dataloader: implement `test_dataloader` to use Trainer::test".into()))?;
        self.run_evaluation(model, loader, crate::module::Stage::Test)
    }

    /// Tests the model stored in a checkpoint (`"best"`, `"last"` or a path), rebuilt from its
    /// hyperparameters: Lightning's `trainer.test(ckpt_path="best")`.
    pub fn test_from<D: DataModule<Batch = M::Batch>>(&mut self, dm: &mut D, ckpt_path: impl Into<CkptPath>) -> Result<Metrics>
    where
        M: crate::checkpoint::FromHparams,
    {
        let ckpt_path = ckpt_path.into();
        self.run_stage(|t| {
            let path = t.resolve_checkpoint(&ckpt_path)?;
            let model = M::load_from_checkpoint(&path, &t.device)?;
            t.test_body(&model, dm)
        })
    }

    /// Runs `predict_step` over the predict loader and returns one prediction per batch.
    pub fn predict<D: DataModule<Batch = M::Batch>>(&mut self, model: &M, dm: &mut D) -> Result<Vec<M::Prediction>> {
        self.run_stage(|t| {
            t.prepare_data(dm)?;
            dm.setup(SetupStage::Predict)?;
            let loader = dm
                .predict_dataloader()?
                .ok_or_else(|| Error::Data("the data module has no predict_dataloader: implement `predict_dataloader` to use Trainer::predict".into()))?;
            t.run_predict(model, loader)
        })
    }

    /// Runs one stage (`fit`, `validate`, `test`, `predict`) and hands its outcome — success,
    /// failure or Ctrl-C — to every logger, whatever the stage and wherever it failed.
    fn run_stage<T>(&mut self, stage: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.start_stage();
        let result = stage(self);
        self.state.fitting = false;
        if let Err(error) = &result {
            self.bars.clear();
            if let Some(ddp) = &self.ddp {
                // The other ranks stop naming this one instead of waiting for it.
                ddp.announce_failure(error);
            }
        }
        let finalized = self.finalize_loggers(crate::loggers::RunStatus::of(&result));
        let value = result?;
        finalized?;
        Ok(value)
    }

    /// Each stage starts uninterrupted, with the Ctrl-C handler in place when configured.
    fn start_stage(&self) {
        if self.config.handle_sigint {
            crate::interrupt::install();
        }
        crate::interrupt::clear();
        if let Some(ddp) = &self.ddp {
            ddp.clear_stop();
        }
    }

    /// `prepare_data` (downloads), once per machine in a data-parallel run (local rank 0), the
    /// other ranks waiting for it, as Lightning's `prepare_data_per_node`.
    fn prepare_data<D: DataModule>(&self, dm: &mut D) -> Result<()> {
        let Some(ddp) = &self.ddp else { return dm.prepare_data() };
        if ddp.env().local_rank == 0 {
            dm.prepare_data()?;
        }
        ddp.barrier("the data preparation of local rank 0 (prepare_data)")
    }

    /// This rank's share of the loaders of a training (`true`) or evaluation loop, in a
    /// data-parallel run that shards them.
    fn shard(&self, training: bool) -> Option<crate::strategy::Shard> {
        self.ddp.as_ref().filter(|_| self.config.use_distributed_sampler).map(|ddp| ddp.shard(training))
    }

    /// Whether the loop should stop before its next batch: Ctrl-C or SIGTERM, as every rank of
    /// a data-parallel training loop agreed at its latest step (so all stop at the same batch).
    fn stop_requested(&self, training: bool) -> bool {
        match &self.ddp {
            Some(ddp) if training => ddp.stop_agreed(),
            _ => crate::interrupt::requested(),
        }
    }
}

/// Renders metrics as Lightning's results table.
pub fn metrics_table(title: &str, metrics: &Metrics) -> String {
    let width = metrics.keys().map(|k| k.len()).max().unwrap_or(0).max(title.len()) + 4;
    let rule = "─".repeat(width + 16);
    let mut out = format!("{rule}\n{title:^width$}{:>16}\n{rule}\n", "DataLoader 0");
    for (k, v) in metrics {
        out.push_str(&format!("{k:^width$}{v:>16.6}\n"));
    }
    out.push_str(&rule);
    out
}
