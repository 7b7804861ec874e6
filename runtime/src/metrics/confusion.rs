//! The confusion matrix, accumulated on the device, and the counts every classification metric
//! is computed from.

use burn::tensor::{Int, Tensor};

use super::{Metric, MetricValue};
use crate::error::{Error, Result};
use crate::flagged::{FirstFlagged, out_of_range};

/// Confusion counts accumulated batch by batch on the device: one `[C, C]` matmul of one-hot
/// rows per batch, plus the first batch with a label out of range or a non-finite score
/// (tracked on the device, checked when read).
#[derive(Debug, Clone)]
pub(crate) struct ConfusionState {
    classes: usize,
    matrix: Option<Tensor<2>>,
    batches: usize,
    bad_label: FirstFlagged,
    bad_score: FirstFlagged,
}

impl ConfusionState {
    pub fn new(classes: usize) -> Self {
        ConfusionState { classes, matrix: None, batches: 0, bad_label: FirstFlagged::default(), bad_score: FirstFlagged::default() }
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Checks the shapes and adds a batch of predicted labels (arg-max of `scores`); a batch
    /// of no rows adds nothing.
    pub fn update(&mut self, metric: &str, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        let [batch, classes] = scores.dims();
        check_shapes(metric, self.classes, [batch, classes], targets.dims()[0])?;
        if batch == 0 {
            return Ok(());
        }
        let scores = scores.clone().detach().without_autodiff();
        let non_finite = scores.clone().is_finite().bool_not().any();
        self.bad_score.record(self.batches, non_finite, Tensor::zeros([1], &scores.device()));
        let predicted = scores.argmax(1).reshape([batch]);
        self.add(predicted, targets.clone());
        Ok(())
    }

    /// Sums the counts of every rank.
    pub fn sync(&mut self, replicas: &super::Replicas<'_>) -> Result<()> {
        replicas.sum(&mut self.matrix)
    }

    /// Adds predicted and true labels, both `[batch]`.
    fn add(&mut self, predicted: Tensor<1, Int>, targets: Tensor<1, Int>) {
        let device = targets.device();
        let (flag, targets, offending) = out_of_range(targets, self.classes);
        self.bad_label.record(self.batches, flag, offending);
        self.batches += 1;
        let classes = Tensor::<1, Int>::arange(0..self.classes as i64, &device).reshape([1, self.classes]);
        let batch = targets.dims()[0];
        let one_hot = |labels: Tensor<1, Int>| labels.reshape([batch, 1]).equal(classes.clone()).float();
        let counts = one_hot(targets).transpose().matmul(one_hot(predicted));
        self.matrix = Some(match self.matrix.take() {
            Some(m) => m + counts,
            None => counts,
        });
    }

    /// Reads the counts (one read), checking that every label was in range and every score finite.
    pub fn counts(&self, metric: &str) -> Result<Counts> {
        let fail = |reason: String| Error::Metric { metric: metric.to_string(), reason };
        let Some(matrix) = &self.matrix else {
            return Err(fail("no samples: update() was not called since the last reset (an empty epoch?)".into()));
        };
        if let Some(bad) = self.bad_label.read() {
            return Err(fail(label_error(bad.value as i64, bad.index, self.classes)));
        }
        if let Some(bad) = self.bad_score.read() {
            return Err(fail(format!("batch {} (counted from the last reset) has a NaN or infinite score; scores must be finite", bad.index)));
        }
        let values: Vec<f32> = matrix.clone().into_data().convert::<f32>().try_to_vec().map_err(|e| fail(format!("cannot read the counts: {e:?}")))?;
        let c = self.classes;
        Ok(Counts { matrix: (0..c).map(|i| (0..c).map(|j| values[i * c + j].round() as u64).collect()).collect() })
    }

    pub fn reset(&mut self) {
        self.matrix = None;
        self.batches = 0;
        self.bad_label.reset();
        self.bad_score.reset();
    }
}

/// The message for label `label` of batch `batch` (counted from the last reset) outside `0..classes`.
pub(crate) fn label_error(label: i64, batch: usize, classes: usize) -> String {
    format!("label {label} in batch {batch} (counted from the last reset) is outside 0..{classes} (num_classes = {classes})")
}

/// Checks scores `[batch, classes]` against the metric's class count and the targets' length.
pub(crate) fn check_shapes(metric: &str, expected_classes: usize, [batch, classes]: [usize; 2], targets: usize) -> Result<()> {
    let fail = |reason: String| Err(Error::Metric { metric: metric.to_string(), reason });
    if expected_classes == 0 {
        return fail("it was built for 0 classes; give it the number of classes (at least 1)".into());
    }
    if classes != expected_classes {
        return fail(format!("scores have {classes} columns but the metric counts {expected_classes} classes; pass scores [batch, {expected_classes}]"));
    }
    if targets != batch {
        return fail(format!("{batch} rows of scores but {targets} targets"));
    }
    Ok(())
}

/// Confusion counts: `matrix[t][p]` samples of true class `t` predicted as `p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Rows are true classes, columns predicted ones.
    pub matrix: Vec<Vec<u64>>,
}

impl Counts {
    /// True positives per class.
    pub fn tp(&self) -> Vec<f64> {
        (0..self.matrix.len()).map(|c| self.matrix[c][c] as f64).collect()
    }
    /// Predicted count per class (tp + fp).
    pub fn predicted(&self) -> Vec<f64> {
        (0..self.matrix.len()).map(|c| self.matrix.iter().map(|row| row[c]).sum::<u64>() as f64).collect()
    }
    /// True count per class (tp + fn, the support).
    pub fn support(&self) -> Vec<f64> {
        self.matrix.iter().map(|row| row.iter().sum::<u64>() as f64).collect()
    }
    /// All samples.
    pub fn total(&self) -> f64 {
        self.support().iter().sum()
    }
}

/// How `ConfusionMatrix` normalizes (scikit-learn's `normalize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    /// Counts.
    None,
    /// Each row sums to 1 (over the true class).
    True,
    /// Each column sums to 1 (over the predicted class).
    Pred,
    /// Everything sums to 1.
    All,
}

/// The confusion matrix (rows true, columns predicted), optionally normalized; rows or columns
/// with no samples normalize to 0, as scikit-learn's.
#[derive(Debug, Clone)]
pub struct ConfusionMatrix {
    state: ConfusionState,
    normalize: Normalize,
}

impl ConfusionMatrix {
    /// Counts over `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        ConfusionMatrix { state: ConfusionState::new(num_classes), normalize: Normalize::None }
    }
    /// Normalizes the result.
    pub fn normalize(mut self, normalize: Normalize) -> Self {
        self.normalize = normalize;
        self
    }
    /// The raw counts.
    pub fn counts(&self) -> Result<Counts> {
        self.state.counts(&Metric::name(self))
    }
}

impl Metric for ConfusionMatrix {
    fn name(&self) -> String {
        "confusion_matrix".into()
    }
    fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        self.state.update("confusion_matrix", scores, targets)
    }
    fn sync(&mut self, replicas: &super::Replicas<'_>) -> Result<()> {
        self.state.sync(replicas)
    }
    fn compute(&self) -> Result<MetricValue> {
        let counts = self.counts()?;
        let m: Vec<Vec<f64>> = counts.matrix.iter().map(|row| row.iter().map(|&v| v as f64).collect()).collect();
        let div = |v: f64, d: f64| if d == 0.0 { 0.0 } else { v / d };
        let (rows, cols, total) = (counts.support(), counts.predicted(), counts.total());
        let out = m
            .iter()
            .enumerate()
            .map(|(i, row)| {
                row.iter()
                    .enumerate()
                    .map(|(j, &v)| match self.normalize {
                        Normalize::None => v,
                        Normalize::True => div(v, rows[i]),
                        Normalize::Pred => div(v, cols[j]),
                        Normalize::All => div(v, total),
                    })
                    .collect()
            })
            .collect();
        Ok(MetricValue::Matrix(out))
    }
    fn reset(&mut self) {
        self.state.reset();
    }
}
