//! Metrics computed on the tensors' device: the batch `accuracy` the generated steps log, and
//! streaming metrics (update per batch, compute at epoch end, reset) with scikit-learn's and
//! torchmetrics' definitions.

use burn::tensor::{Int, Tensor};

mod classification;
mod confusion;
mod ranking;

pub use classification::{Accuracy, Average, FBeta, Precision, Recall, ZeroDivision, f1};
pub use confusion::{ConfusionMatrix, Counts, Normalize};
pub use ranking::{Auroc, AveragePrecision, PrCurve, PrecisionRecallCurve};

use crate::error::Result;

/// Fraction of rows of `scores` `[batch, classes]` whose arg-max equals `targets` `[batch]`.
/// Stays on the device: the result is a one-element tensor, read only when it is written or shown.
/// NaN when a score is NaN or infinite (an arg-max over them means nothing) or there are no rows.
pub fn accuracy(scores: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [batch, _] = scores.dims();
    if batch == 0 {
        return Tensor::full([1], f32::NAN, &scores.device());
    }
    let non_finite = scores.clone().is_finite().bool_not().any();
    let predicted = scores.argmax(1).reshape([batch]);
    predicted.equal(targets).int().sum().float().div_scalar(batch as f64).mask_fill(non_finite, f32::NAN)
}

/// What a metric computes: one number, one per class, or a matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A single value.
    Scalar(f64),
    /// One value per class.
    PerClass(Vec<f64>),
    /// A matrix, row by row (a confusion matrix: rows are true classes).
    Matrix(Vec<Vec<f64>>),
    /// One precision-recall curve per class.
    Curves(Vec<PrCurve>),
}

impl MetricValue {
    /// The single value, if it is one.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            MetricValue::Scalar(v) => Some(*v),
            _ => None,
        }
    }
}

/// A streaming metric (torchmetrics' `Metric`): `update` with every batch's scores
/// `[batch, classes]` and targets `[batch]` (the work stays on the device), `compute` once at
/// the end (one read), `reset` for the next epoch.
pub trait Metric: Send + std::fmt::Debug {
    /// A name for logs and errors (`f1_macro`).
    fn name(&self) -> String;
    /// Adds a batch.
    fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()>;
    /// The value over every batch since the last reset.
    fn compute(&self) -> Result<MetricValue>;
    /// Forgets every batch.
    fn reset(&mut self);
}

impl Metric for Box<dyn Metric> {
    fn name(&self) -> String {
        self.as_ref().name()
    }
    fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        self.as_mut().update(scores, targets)
    }
    fn compute(&self) -> Result<MetricValue> {
        self.as_ref().compute()
    }
    fn reset(&mut self) {
        self.as_mut().reset()
    }
}
