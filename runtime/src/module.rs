//! The `LightningModule` trait and the step context through which steps `log` values.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Bool, Int, Tensor};

use crate::data::SetupStage;
use crate::error::{Error, Result};
use crate::metrics::Metric;
use crate::optim::{OptimizerConfig, Optimizers};
use crate::trainer::ManualStep;

/// A batch that knows how many samples it holds (epoch means are weighted by it).
pub trait Batch: Clone + Send + Sync + 'static {
    /// Number of samples in the batch.
    fn batch_size(&self) -> usize;

    /// The batch with its float inputs in `dtype`, for the low precisions (`16-mixed`,
    /// `bf16-true`, ..): a hand-written `forward` that calls Burn's layers directly then meets
    /// weights of its own dtype. The default leaves the batch as it is (derived models cast at
    /// their first layer); targets and other integer data never change.
    fn cast_inputs(self, dtype: burn::tensor::FloatDType) -> Self {
        let _ = dtype;
        self
    }
}

/// The stage a step runs in; it picks `log`'s defaults and the metric-name prefix of generated steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// `training_step`.
    Train,
    /// `validation_step`, also during the sanity check.
    Validation,
    /// `test_step`.
    Test,
    /// `predict_step`.
    Predict,
}

impl Stage {
    /// The prefix generated steps put before metric names (`train`, `val`, `test`, `predict`).
    pub fn prefix(self) -> &'static str {
        match self {
            Stage::Train => "train",
            Stage::Validation => "val",
            Stage::Test => "test",
            Stage::Predict => "predict",
        }
    }

    /// The stage in words, for messages (`training`, `validation`, `test`, `prediction`).
    pub fn noun(self) -> &'static str {
        match self {
            Stage::Train => "training",
            Stage::Validation => "validation",
            Stage::Test => "test",
            Stage::Predict => "prediction",
        }
    }
}

/// A model that the [`Trainer`](crate::Trainer) can fit, validate, test and predict with.
///
/// `#[derive(LightningModule)]` writes this impl from layer specs; every method can also be
/// written by hand. Hooks are empty by default and run before the callbacks' hooks of the same name.
pub trait LightningModule: Module + Sized + 'static {
    /// What the data loaders yield.
    type Batch: Batch;
    /// Input of [`forward`](Self::forward).
    type Input;
    /// Output of [`forward`](Self::forward).
    type Output;
    /// What [`predict_step`](Self::predict_step) returns for one batch.
    type Prediction: Send + 'static;

    /// The model's computation.
    fn forward(&self, input: Self::Input) -> Self::Output;

    /// One training step: returns the loss to minimise (and logs through `ctx`). With manual
    /// optimization, [`manual_training_step`](Self::manual_training_step) runs instead.
    fn training_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> Result<Tensor<1>> {
        let _ = (batch, ctx);
        Err(Error::Module(format!(
            "{} has no training_step: implement `training_step` (automatic optimization) or turn automatic \
             optimization off and implement `manual_training_step`",
            std::any::type_name::<Self>()
        )))
    }

    /// Whether the Trainer runs backward and the optimizer step (Lightning's
    /// `automatic_optimization`, default true). Return false to drive the optimizers yourself
    /// in [`manual_training_step`](Self::manual_training_step): several optimizers (a GAN),
    /// several backward passes per batch, steps on your own schedule.
    fn automatic_optimization(&self) -> bool {
        true
    }

    /// One training batch under manual optimization: compute the losses from
    /// `step.module()`, call `step.manual_backward(loss)`, and `step.optimizer(..)?.step()` /
    /// `.zero_grad()` each optimizer; log through `step.ctx`.
    fn manual_training_step(step: &mut ManualStep<'_, Self>, batch: Self::Batch) -> Result<()> {
        let _ = (step, batch);
        Err(Error::Module(format!(
            "{} turns automatic optimization off but has no manual_training_step: implement it \
             (or `training_step = method` with `automatic_optimization = false` in #[lightning(..)])",
            std::any::type_name::<Self>()
        )))
    }

    /// One validation step. The default logs nothing.
    fn validation_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> Result<()> {
        let _ = (batch, ctx);
        Ok(())
    }

    /// One test step. The default logs nothing.
    fn test_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> Result<()> {
        let _ = (batch, ctx);
        Ok(())
    }

    /// One prediction step.
    fn predict_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> Result<Self::Prediction> {
        let _ = (batch, ctx);
        Err(Error::Module(format!("{} has no predict_step: implement `predict_step` to use Trainer::predict", std::any::type_name::<Self>())))
    }

    /// The optimizer (and its learning rate) used by `fit`: `adam(1e-3).into()`, or several
    /// (`vec![adam(2e-4).named("generator").on(&self.generator), ..].into()`) for manual
    /// optimization.
    fn configure_optimizers(&self) -> Optimizers;

    /// The hyperparameters (values and field descriptions), saved to `hparams.yaml`, loggers
    /// and checkpoints.
    fn hparams(&self) -> Option<crate::hparams::SavedHparams> {
        None
    }

    /// Called when `fit` starts, before the sanity check.
    fn on_fit_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when `fit` ends.
    fn on_fit_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called at the start of every training epoch.
    fn on_train_epoch_start(&mut self, epoch: u64) -> Result<()> {
        let _ = epoch;
        Ok(())
    }
    /// Called at the end of every training epoch, after its epoch-level metrics are computed.
    fn on_train_epoch_end(&mut self, epoch: u64) -> Result<()> {
        let _ = epoch;
        Ok(())
    }
    /// Called at the start of every validation epoch.
    fn on_validation_epoch_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called at the end of every validation epoch, after its epoch-level metrics are computed.
    fn on_validation_epoch_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called at the start of the test epoch.
    fn on_test_epoch_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called at the end of the test epoch.
    fn on_test_epoch_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when a stage starts (after the data module's `setup`).
    fn setup(&mut self, stage: SetupStage) -> Result<()> {
        let _ = stage;
        Ok(())
    }
    /// Called when a stage ends.
    fn teardown(&mut self, stage: SetupStage) -> Result<()> {
        let _ = stage;
        Ok(())
    }
    /// Called when training starts (after the sanity check).
    fn on_train_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when training ends.
    fn on_train_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when a validation run starts.
    fn on_validation_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when a validation run ends.
    fn on_validation_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when testing starts.
    fn on_test_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when testing ends.
    fn on_test_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when predicting starts.
    fn on_predict_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called when predicting ends.
    fn on_predict_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called at the start of the predict epoch.
    fn on_predict_epoch_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called at the end of the predict epoch.
    fn on_predict_epoch_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called before each training batch.
    fn on_train_batch_start(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called after each training batch.
    fn on_train_batch_end(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called before each validation batch.
    fn on_validation_batch_start(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called after each validation batch.
    fn on_validation_batch_end(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called before each test batch.
    fn on_test_batch_start(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called after each test batch.
    fn on_test_batch_end(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called before each predict batch.
    fn on_predict_batch_start(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called after each predict batch.
    fn on_predict_batch_end(&mut self, batch_idx: usize) -> Result<()> {
        let _ = batch_idx;
        Ok(())
    }
    /// Called before `loss.backward()`.
    fn on_before_backward(&mut self, loss: &Tensor<1>) -> Result<()> {
        let _ = loss;
        Ok(())
    }
    /// Called after the backward pass.
    fn on_after_backward(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called before `optimizer` steps (its gradients are final).
    fn on_before_optimizer_step(&mut self, optimizer: &OptimizerConfig) -> Result<()> {
        let _ = optimizer;
        Ok(())
    }
    /// Called when a checkpoint is written: add entries to `extra`.
    fn on_save_checkpoint(&self, extra: &mut serde_json::Map<String, serde_json::Value>) -> Result<()> {
        let _ = extra;
        Ok(())
    }
    /// Called when `fit` resumes from a checkpoint, with the entries `on_save_checkpoint` added.
    fn on_load_checkpoint(&mut self, extra: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
        let _ = extra;
        Ok(())
    }
}

/// How a logged epoch value is reduced over the epoch's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Batch-size-weighted mean (Lightning's default).
    Mean,
    /// Sum over steps.
    Sum,
    /// Maximum over steps.
    Max,
    /// Minimum over steps.
    Min,
}

/// Options of one `log` call, with Lightning's names. Unset `on_step`/`on_epoch` take the
/// stage's defaults: training logs per step, validation and test per epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct LogOptions {
    /// Write the value of every step (`None`: the stage's default).
    pub on_step: Option<bool>,
    /// Write the epoch's reduced value (`None`: the stage's default).
    pub on_epoch: Option<bool>,
    /// Show the value in the progress bar.
    pub prog_bar: bool,
    /// Send the value to the loggers.
    pub logger: bool,
    /// Weight of this value in the epoch mean (`None`: the batch's size).
    pub batch_size: Option<usize>,
    /// How the epoch value is reduced.
    pub reduce: Reduce,
    /// In a data-parallel run, reduce the epoch value over every rank's batches (the same
    /// reduction), so every rank sees, logs and monitors it alike. Step values stay each
    /// rank's own.
    pub sync_dist: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { on_step: None, on_epoch: None, prog_bar: false, logger: true, batch_size: None, reduce: Reduce::Mean, sync_dist: false }
    }
}

impl LogOptions {
    /// The defaults (same as `LogOptions::default()`).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `on_step`.
    pub fn on_step(mut self, on: bool) -> Self {
        self.on_step = Some(on);
        self
    }
    /// Sets `on_epoch`.
    pub fn on_epoch(mut self, on: bool) -> Self {
        self.on_epoch = Some(on);
        self
    }
    /// Sets `prog_bar`.
    pub fn prog_bar(mut self, on: bool) -> Self {
        self.prog_bar = on;
        self
    }
    /// Sets `logger`.
    pub fn logger(mut self, on: bool) -> Self {
        self.logger = on;
        self
    }
    /// Sets the weight of this value in the epoch mean.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }
    /// Sets the epoch reduction.
    pub fn reduce(mut self, reduce: Reduce) -> Self {
        self.reduce = reduce;
        self
    }
    /// Sets `sync_dist`: reduce the epoch value across the ranks of a data-parallel run.
    pub fn sync_dist(mut self, on: bool) -> Self {
        self.sync_dist = on;
        self
    }

    /// `(on_step, on_epoch)` after the stage's defaults are applied.
    pub fn resolve(&self, stage: Stage) -> (bool, bool) {
        let (step, epoch) = match stage {
            Stage::Train => (true, false),
            _ => (false, true),
        };
        (self.on_step.unwrap_or(step), self.on_epoch.unwrap_or(epoch))
    }
}

/// A value passed to `log`: a one-element tensor that stays on its device, or a host number.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // A Tensor handle is 256 bytes; one value per `log` call, boxing buys nothing.
pub enum LogValue {
    /// A scalar tensor; read to the host only when the value is written or shown.
    Tensor(Tensor<1>),
    /// A host value.
    Scalar(f64),
}

impl From<Tensor<1>> for LogValue {
    fn from(t: Tensor<1>) -> Self {
        LogValue::Tensor(t)
    }
}
impl From<&Tensor<1>> for LogValue {
    fn from(t: &Tensor<1>) -> Self {
        LogValue::Tensor(t.clone())
    }
}
impl From<f64> for LogValue {
    fn from(v: f64) -> Self {
        LogValue::Scalar(v)
    }
}
impl From<f32> for LogValue {
    fn from(v: f32) -> Self {
        LogValue::Scalar(v as f64)
    }
}

/// One value logged in one step.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The name as given to `log`.
    pub name: String,
    /// The value (a tensor leaves autodiff, so accumulating it records no graph).
    pub value: LogValue,
    /// Resolved `on_step`.
    pub on_step: bool,
    /// Resolved `on_epoch`.
    pub on_epoch: bool,
    /// Show in the progress bar.
    pub prog_bar: bool,
    /// Send to loggers.
    pub logger: bool,
    /// Weight in the epoch mean.
    pub weight: usize,
    /// Epoch reduction.
    pub reduce: Reduce,
    /// Reduce the epoch value across ranks.
    pub sync_dist: bool,
}

/// One batch for a streaming metric logged in one step.
#[derive(Debug)]
pub struct MetricUpdate {
    /// The name as given to `log_metric`.
    pub name: String,
    /// The metric, as first given this epoch (later ones only carry the batch).
    pub metric: Box<dyn Metric>,
    /// The batch's scores `[batch, classes]`, out of autodiff.
    pub scores: Tensor<2>,
    /// The batch's targets.
    pub targets: Tensor<1, Int>,
    /// Show in the progress bar.
    pub prog_bar: bool,
    /// Send to loggers.
    pub logger: bool,
}

/// What a step sees of the run: its stage, position, and `log`.
#[derive(Debug)]
pub struct StepContext {
    stage: Stage,
    batch_idx: usize,
    batch_size: usize,
    epoch: u64,
    global_step: u64,
    logged: Vec<Logged>,
    metrics: Vec<MetricUpdate>,
    label_checks: Vec<LabelCheck>,
}

/// A batch's labels (or token ids) checked against a class count (or vocabulary) on the
/// device, reported at the next read.
#[derive(Debug)]
pub(crate) struct LabelCheck {
    pub flag: Tensor<1, Bool>,
    pub offending: Tensor<1>,
    pub classes: usize,
    pub tokens: bool,
}

impl StepContext {
    /// A context for one step (the Trainer makes these; tests may too).
    pub fn new(stage: Stage, batch_idx: usize, batch_size: usize, epoch: u64, global_step: u64) -> Self {
        StepContext { stage, batch_idx, batch_size, epoch, global_step, logged: Vec::new(), metrics: Vec::new(), label_checks: Vec::new() }
    }

    /// The stage this step runs in.
    pub fn stage(&self) -> Stage {
        self.stage
    }
    /// Index of the batch within the epoch.
    pub fn batch_idx(&self) -> usize {
        self.batch_idx
    }
    /// Number of samples in the current batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
    /// The current epoch (0-based).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Optimizer steps taken so far.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Logs `value` under `name` with the stage's defaults (Lightning's `self.log(name, value)`).
    pub fn log(&mut self, name: &str, value: impl Into<LogValue>) -> Result<()> {
        self.log_with(name, value, LogOptions::default())
    }

    /// Updates the streaming `metric` logged under `name` with this batch; its value is computed
    /// over the whole epoch (torchmetrics' semantics: an F1 of the epoch, not a mean of batch
    /// F1s) and logged at the epoch end. `metric` is the prototype: the first one given in an
    /// epoch is kept and updated, later ones only bring their batch.
    pub fn log_metric(&mut self, name: &str, metric: impl Metric + 'static, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        self.log_metric_with(name, metric, scores, targets, LogOptions::default())
    }

    /// [`log_metric`](Self::log_metric) with options (`prog_bar`, `logger`; metrics are per epoch).
    pub fn log_metric_with(
        &mut self,
        name: &str,
        metric: impl Metric + 'static,
        scores: &Tensor<2>,
        targets: &Tensor<1, Int>,
        options: LogOptions,
    ) -> Result<()> {
        let fail = |reason: &str| Err(Error::Log { name: name.to_string(), reason: reason.to_string() });
        if options.on_step == Some(true) || options.on_epoch == Some(false) {
            return fail("a metric object is computed over the epoch; log a tensor for per-step values");
        }
        if self.stage == Stage::Predict {
            return fail("predict_step cannot log; return the values instead");
        }
        if self.metrics.iter().any(|m| m.name == name) || self.logged.iter().any(|l| l.name == name) {
            return fail("logged twice in the same step; log each name once per step");
        }
        self.metrics.push(MetricUpdate {
            name: name.to_string(),
            metric: Box::new(metric),
            scores: scores.clone().detach().without_autodiff(),
            targets: targets.clone(),
            prog_bar: options.prog_bar,
            logger: options.logger,
        });
        Ok(())
    }

    /// The streaming-metric batches logged in this step (the Trainer takes them).
    pub fn take_metrics(&mut self) -> Vec<MetricUpdate> {
        std::mem::take(&mut self.metrics)
    }

    /// Logs `value` under `name` with explicit options.
    pub fn log_with(&mut self, name: &str, value: impl Into<LogValue>, options: LogOptions) -> Result<()> {
        let fail = |reason: String| Error::Log { name: name.to_string(), reason };
        if name.is_empty() || name.chars().any(|c| c.is_control()) {
            return Err(fail("metric names must be non-empty and printable".into()));
        }
        if self.logged.iter().any(|l| l.name == name) {
            return Err(fail("logged twice in the same step; log each name once per step".into()));
        }
        if self.stage == Stage::Predict {
            return Err(fail("predict_step cannot log; return the values instead".into()));
        }
        let value = match value.into() {
            LogValue::Tensor(t) => {
                let n = t.dims()[0];
                if n != 1 {
                    return Err(fail(format!("expected a one-element tensor, got {n} elements; reduce it first (e.g. .mean())")));
                }
                LogValue::Tensor(t.detach().without_autodiff())
            }
            scalar => scalar,
        };
        let (on_step, on_epoch) = options.resolve(self.stage);
        if !on_step && !on_epoch {
            return Err(fail("on_step and on_epoch are both false, so the value would go nowhere".into()));
        }
        let weight = options.batch_size.unwrap_or(self.batch_size);
        self.logged.push(Logged {
            name: name.to_string(),
            value,
            on_step,
            on_epoch,
            prog_bar: options.prog_bar,
            logger: options.logger,
            weight,
            reduce: options.reduce,
            sync_dist: options.sync_dist,
        });
        Ok(())
    }

    /// The values logged in this step, in call order.
    pub fn logged(&self) -> &[Logged] {
        &self.logged
    }

    /// Takes the values logged in this step.
    pub fn take_logged(&mut self) -> Vec<Logged> {
        std::mem::take(&mut self.logged)
    }

    /// `targets` clamped into `0..classes`, so a loss's gather cannot fail on them, and checked
    /// on the device: a label outside the range fails the run at the next read (the next
    /// progress-bar refresh or the epoch end), naming the label, the class count and this
    /// batch. The generated steps call it; call it in a hand-written step before `nll_loss`
    /// or `cross_entropy`.
    pub fn checked_targets(&mut self, targets: Tensor<1, Int>, classes: usize) -> Tensor<1, Int> {
        if targets.dims()[0] == 0 {
            return targets;
        }
        let (flag, clamped, offending) = crate::flagged::out_of_range(targets, classes);
        self.label_checks.push(LabelCheck { flag, offending, classes, tokens: false });
        clamped
    }

    /// The token ids clamped into `0..vocab`, with a check on the device that none was
    /// outside (reported, naming the id and this batch, at the next read), so an embedding
    /// never indexes past its table. The generated steps call it for models that start with
    /// `embedding`.
    pub fn checked_tokens<const D: usize>(&mut self, tokens: Tensor<D, Int>, vocab: usize) -> Tensor<D, Int> {
        let dims = tokens.dims();
        let count = dims.iter().product::<usize>();
        if count == 0 {
            return tokens;
        }
        let (flag, clamped, offending) = crate::flagged::out_of_range(tokens.reshape([count]), vocab);
        self.label_checks.push(LabelCheck { flag, offending, classes: vocab, tokens: true });
        clamped.reshape(dims)
    }

    /// The label checks of this step (the Trainer takes them).
    pub(crate) fn take_label_checks(&mut self) -> Vec<LabelCheck> {
        std::mem::take(&mut self.label_checks)
    }

    /// Fails, naming this batch, unless the batch's input shape `dims` (batch first) matches
    /// `expected`, one entry per sample dimension (`None`: any size); `source` says where the
    /// model's expectation comes from (`its input_shape`).
    pub fn check_input(&self, dims: &[usize], expected: &[Option<usize>], source: &str) -> Result<()> {
        let fits = dims.len() == expected.len() + 1 && dims[1..].iter().zip(expected).all(|(d, e)| e.is_none_or(|e| e == *d));
        if fits {
            return Ok(());
        }
        let wanted: Vec<String> = std::iter::once("batch".to_string()).chain(expected.iter().map(|e| e.map_or("_".into(), |e| e.to_string()))).collect();
        Err(Error::Batch {
            stage: self.stage.noun(),
            batch: self.batch_idx,
            epoch: self.epoch,
            reason: format!(
                "the inputs have shape {dims:?} but the model expects [{}] ({source}); make the model's shape match the data's {:?}, or resize the data",
                wanted.join(", "),
                dims.get(1..).unwrap_or_default()
            ),
        })
    }
}

/// Host-side metric values by name.
pub type Metrics = BTreeMap<String, f64>;
