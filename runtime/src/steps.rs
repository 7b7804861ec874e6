//! The steps `#[derive(LightningModule)]` generates for classifiers: forward, loss, metrics, and
//! `log` under the stage's prefix (`train_loss`, `val_acc`, ...) with the tutorial's flags.

use burn::tensor::Tensor;

use crate::data::ClassificationBatch;
use crate::error::Result;
use crate::loss::{cross_entropy, nll_loss};
use crate::metrics::accuracy;
use crate::module::{LightningModule, LogOptions, Stage, StepContext};

/// Which loss a generated step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// The model outputs log-probabilities (ends in `log_softmax`).
    Nll,
    /// The model outputs logits.
    CrossEntropy,
}

/// Which metrics a generated step logs besides the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Top-1 accuracy, logged as `<stage>_acc`.
    Accuracy,
}

/// Forward, loss and metrics for one batch, logged as `<prefix>_loss` and `<prefix>_acc`:
/// in training per step and per epoch, in validation and test per epoch with `prog_bar`.
/// Returns the loss.
pub fn classification_step<M, const D: usize>(
    model: &M,
    batch: ClassificationBatch<D>,
    ctx: &mut StepContext,
    loss: LossKind,
    metrics: &[MetricKind],
) -> Result<Tensor<1>>
where
    M: LightningModule<Input = Tensor<D>, Output = Tensor<2>>,
{
    let output = model.forward(batch.inputs);
    let loss_value = match loss {
        LossKind::Nll => nll_loss(output.clone(), batch.targets.clone()),
        LossKind::CrossEntropy => cross_entropy(output.clone(), batch.targets.clone()),
    };
    let stage = ctx.stage();
    let options = match stage {
        Stage::Train => LogOptions::new().on_step(true).on_epoch(true),
        _ => LogOptions::new().prog_bar(true),
    };
    let prefix = stage.prefix();
    ctx.log_with(&format!("{prefix}_loss"), &loss_value, options.clone().prog_bar(true))?;
    for metric in metrics {
        match metric {
            MetricKind::Accuracy => {
                let acc = accuracy(output.clone(), batch.targets.clone());
                ctx.log_with(&format!("{prefix}_acc"), acc, options.clone())?;
            }
        }
    }
    Ok(loss_value)
}

/// The generated `predict_step`: the forward output.
pub fn predict<M, const D: usize>(model: &M, batch: ClassificationBatch<D>) -> Result<Tensor<2>>
where
    M: LightningModule<Input = Tensor<D>, Output = Tensor<2>>,
{
    Ok(model.forward(batch.inputs))
}
