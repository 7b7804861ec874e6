//! The steps `#[derive(LightningModule)]` generates for classifiers: forward, loss, metrics, and
//! `log` under the stage's prefix (`train_loss`, `val_acc`, ...) with the tutorial's flags.

use burn::tensor::{Int, Tensor};

use crate::data::{ClassificationBatch, InputKind};
use crate::error::Result;
use crate::loss::{cross_entropy, nll_loss};
use crate::metrics::{ConfusionMatrix, Metric, PrecisionRecallCurve, accuracy};
use crate::module::{LightningModule, LogOptions, Stage, StepContext};

/// A loss or metric function of (model output, targets), as a user method provides it.
pub type OutputFn<'a> = &'a dyn Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>;

/// Which loss a generated step uses.
#[derive(Clone, Copy)]
pub enum LossKind<'a> {
    /// The model outputs log-probabilities (ends in `log_softmax`).
    Nll,
    /// The model outputs logits.
    CrossEntropy,
    /// The user's loss (`loss = Self::method`).
    Custom(OutputFn<'a>),
}

/// Which metrics a generated step logs besides the loss.
#[derive(Clone, Copy)]
pub enum MetricKind<'a> {
    /// Top-1 accuracy, logged as `<stage>_acc`.
    Accuracy,
    /// The user's metric (`metrics(Self::method)`), logged as `<stage>_<name>`.
    Custom(&'a str, OutputFn<'a>),
    /// A streaming metric made for the model's class count (`metrics(f1(average = macro))`),
    /// computed over the epoch and logged as `<stage>_<metric name>` (`val_f1_macro`).
    Streaming(&'a dyn Fn(usize) -> Box<dyn Metric>),
}

/// The input a model's layer chain takes, per sample (`None`: any size), and where that comes
/// from (`its input_shape`), so a batch of another shape is an error before the forward pass.
#[derive(Clone, Copy)]
pub struct ExpectedInput<'a> {
    /// One entry per sample dimension.
    pub dims: &'a [Option<usize>],
    /// Where the expectation comes from, for the message.
    pub source: &'a str,
    /// For token ids: the vocabulary of the embedding they index, checked on the device.
    pub vocab: Option<usize>,
}

/// Forward, loss and metrics for one batch, logged as `<prefix>_loss` and `<prefix>_acc`:
/// in training per step and per epoch, in validation and test per epoch with `prog_bar`; in
/// test also the charts of [`MAX_CHART_CLASSES`]. Returns the loss. The batch's shape is
/// checked against `input` first (token ids against the vocabulary on the device,
/// [`StepContext::checked_tokens`]), and its labels against the output's classes on the device
/// ([`StepContext::checked_targets`]).
pub fn classification_step<M, const D: usize, K: InputKind>(
    model: &M,
    batch: ClassificationBatch<D, K>,
    ctx: &mut StepContext,
    input: Option<ExpectedInput<'_>>,
    loss: LossKind<'_>,
    metrics: &[MetricKind<'_>],
) -> Result<Tensor<1>>
where
    M: LightningModule<Input = Tensor<D, K>, Output = Tensor<2>>,
{
    let mut inputs = batch.inputs;
    if let Some(input) = input {
        ctx.check_input(&inputs.dims(), input.dims, input.source)?;
        if let Some(vocab) = input.vocab {
            inputs = K::checked(ctx, inputs, vocab);
        }
    }
    // The loss and the metrics in f32, whatever the precision of the forward pass.
    let output = crate::precision::cast(model.forward(inputs), burn::tensor::DType::F32);
    let targets = ctx.checked_targets(batch.targets, output.dims()[1]);
    let loss_value = match loss {
        LossKind::Nll => nll_loss(output.clone(), targets.clone()),
        LossKind::CrossEntropy => cross_entropy(output.clone(), targets.clone()),
        LossKind::Custom(f) => f(output.clone(), targets.clone()),
    };
    let stage = ctx.stage();
    // Epoch values over every rank's batches in a data-parallel run (no cost otherwise).
    let options = match stage {
        Stage::Train => LogOptions::new().on_step(true).on_epoch(true),
        _ => LogOptions::new().prog_bar(true),
    }
    .sync_dist(true);
    let prefix = stage.prefix();
    ctx.log_with(&format!("{prefix}_loss"), &loss_value, options.clone().prog_bar(true))?;
    for metric in metrics {
        match metric {
            MetricKind::Accuracy => {
                let acc = accuracy(output.clone(), targets.clone());
                ctx.log_with(&format!("{prefix}_acc"), acc, options.clone())?;
            }
            MetricKind::Streaming(make) => {
                let metric = make(output.dims()[1]);
                let name = format!("{prefix}_{}", metric.name());
                let options = LogOptions::new().prog_bar(stage != Stage::Train);
                ctx.log_metric_with(&name, metric, &output, &targets, options)?;
            }
            MetricKind::Custom(name, f) => {
                let value = f(output.clone(), targets.clone());
                ctx.log_with(&format!("{prefix}_{name}"), value, options.clone())?;
            }
        }
    }
    if stage == Stage::Test && output.dims()[1] <= MAX_CHART_CLASSES {
        let classes = output.dims()[1];
        let probabilities = match loss {
            LossKind::Nll => output.clone().exp(),
            _ => burn::tensor::activation::softmax(output.clone(), 1),
        };
        ctx.log_metric("test_pr_curve", PrecisionRecallCurve::new(classes), &probabilities, &targets)?;
        ctx.log_metric("test_confusion_matrix", ConfusionMatrix::new(classes), &output, &targets)?;
    }
    Ok(loss_value)
}

/// Up to this many classes, the generated test step also logs the test set's precision-recall
/// curves (`test_pr_curve`, one class against the rest, on softmax probabilities) and its
/// confusion matrix (`test_confusion_matrix`): charts in the loggers and PNGs in the log folder.
pub const MAX_CHART_CLASSES: usize = 50;

/// The generated `predict_step`: the forward output.
pub fn predict<M, const D: usize, K: InputKind>(model: &M, batch: ClassificationBatch<D, K>) -> Result<Tensor<2>>
where
    M: LightningModule<Input = Tensor<D, K>, Output = Tensor<2>>,
{
    Ok(model.forward(batch.inputs))
}
