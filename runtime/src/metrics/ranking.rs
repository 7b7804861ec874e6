//! Metrics over the ranking of scores, one class against the rest: the precision-recall curve,
//! AUROC and average precision, with scikit-learn's definitions. They need every score of the
//! epoch, so batches stay on the device until `compute` reads them once.

use burn::tensor::{Int, Tensor};

use super::confusion::check_shapes;
use super::{Average, Metric, MetricValue};
use crate::error::{Error, Result};

/// The epoch's scores and targets, kept on the device.
#[derive(Debug, Clone)]
struct ScoreState {
    classes: usize,
    scores: Vec<Tensor<2>>,
    targets: Vec<Tensor<1, Int>>,
}

/// The epoch's scores and targets on the host, labels checked.
struct Host {
    classes: usize,
    scores: Vec<f32>,
    targets: Vec<i64>,
}

impl ScoreState {
    fn new(classes: usize) -> Self {
        ScoreState { classes, scores: Vec::new(), targets: Vec::new() }
    }

    fn update(&mut self, metric: &str, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        let [batch, classes] = scores.dims();
        check_shapes(metric, self.classes, [batch, classes], targets.dims()[0])?;
        self.scores.push(scores.clone().detach().without_autodiff());
        self.targets.push(targets.clone());
        Ok(())
    }

    fn read(&self, metric: &str) -> Result<Host> {
        let fail = |reason: String| Error::Metric { metric: metric.to_string(), reason };
        if self.scores.is_empty() {
            return Err(fail("no samples: update() was not called since the last reset (an empty epoch?)".into()));
        }
        let scores: Vec<f32> = Tensor::cat(self.scores.clone(), 0).into_data().convert::<f32>().try_to_vec().map_err(|e| fail(format!("cannot read scores: {e:?}")))?;
        let targets: Vec<i64> = Tensor::cat(self.targets.clone(), 0).into_data().convert::<i64>().try_to_vec().map_err(|e| fail(format!("cannot read targets: {e:?}")))?;
        if let Some(bad) = targets.iter().find(|&&t| t < 0 || t >= self.classes as i64) {
            return Err(fail(format!("label {bad} is outside 0..{} (num_classes = {})", self.classes, self.classes)));
        }
        if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
            return Err(fail(format!("a score is {bad}; scores must be finite")));
        }
        Ok(Host { classes: self.classes, scores, targets })
    }

    fn reset(&mut self) {
        self.scores.clear();
        self.targets.clear();
    }
}

/// One class's curve points at each distinct score, highest first: (threshold, tp, fp).
fn binary_curve(host: &Host, class: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let c = host.classes;
    let mut pairs: Vec<(f32, bool)> = host.targets.iter().enumerate().map(|(i, &t)| (host.scores[i * c + class], t == class as i64)).collect();
    // Highest score first; equal scores form one threshold (ties count together).
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut thresholds, mut tps, mut fps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0.0, 0.0);
    for (i, (score, positive)) in pairs.iter().enumerate() {
        if *positive { tp += 1.0 } else { fp += 1.0 }
        if pairs.get(i + 1).is_none_or(|next| next.0 != *score) {
            thresholds.push(*score as f64);
            tps.push(tp);
            fps.push(fp);
        }
    }
    (thresholds, tps, fps)
}

/// One class's precision-recall curve as scikit-learn's `precision_recall_curve`: precision and
/// recall by increasing threshold, ending with the point (recall 0, precision 1).
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    /// Precision at each threshold, then 1.
    pub precision: Vec<f64>,
    /// Recall at each threshold, then 0.
    pub recall: Vec<f64>,
    /// The distinct scores, increasing.
    pub thresholds: Vec<f64>,
}

fn pr_curve(host: &Host, class: usize) -> PrCurve {
    let (thresholds, tps, fps) = binary_curve(host, class);
    let positives = tps.last().copied().unwrap_or(0.0);
    let mut precision: Vec<f64> = tps.iter().zip(&fps).map(|(t, f)| if t + f == 0.0 { 0.0 } else { t / (t + f) }).rev().collect();
    let mut recall: Vec<f64> = tps.iter().map(|t| if positives == 0.0 { 1.0 } else { t / positives }).rev().collect();
    precision.push(1.0);
    recall.push(0.0);
    PrCurve { precision, recall, thresholds: thresholds.into_iter().rev().collect() }
}

/// Average precision: `Σ (R_n − R_{n−1}) P_n` over the curve (scikit-learn's step-wise sum).
fn average_precision(curve: &PrCurve) -> f64 {
    -curve.recall.windows(2).zip(&curve.precision).map(|(r, p)| (r[1] - r[0]) * p).sum::<f64>()
}

/// Area under the ROC curve by the trapezoidal rule; NaN when the class has no positives or no
/// negatives (the curve is undefined).
fn auroc(host: &Host, class: usize) -> f64 {
    let (_, tps, fps) = binary_curve(host, class);
    let (positives, negatives) = (tps.last().copied().unwrap_or(0.0), fps.last().copied().unwrap_or(0.0));
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    let (mut area, mut prev) = (0.0, (0.0, 0.0));
    for (tp, fp) in tps.iter().zip(&fps) {
        let point = (fp / negatives, tp / positives);
        area += (point.0 - prev.0) * (point.1 + prev.1) / 2.0;
        prev = point;
    }
    area
}

/// Combines per-class values: NaN (undefined) classes are left out; weights are supports.
fn combine(per_class: Vec<f64>, support: &[f64], average: Average) -> MetricValue {
    let mean = |weights: Option<&[f64]>| {
        let kept: Vec<(f64, f64)> = per_class.iter().enumerate().filter(|(_, v)| !v.is_nan()).map(|(i, v)| (*v, weights.map_or(1.0, |w| w[i]))).collect();
        let total: f64 = kept.iter().map(|(_, w)| w).sum();
        if total == 0.0 { f64::NAN } else { kept.iter().map(|(v, w)| v * w).sum::<f64>() / total }
    };
    match average {
        Average::PerClass => MetricValue::PerClass(per_class),
        Average::Weighted => MetricValue::Scalar(mean(Some(support))),
        _ => MetricValue::Scalar(mean(None)),
    }
}

fn supports(host: &Host) -> Vec<f64> {
    (0..host.classes).map(|c| host.targets.iter().filter(|&&t| t == c as i64).count() as f64).collect()
}

macro_rules! ranking_metric {
    ($(#[$doc:meta])* $name:ident, $label:literal, $per_class:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            state: ScoreState,
            average: Average,
        }

        impl $name {
            /// Over `num_classes` classes, macro-averaged (with 2 classes: class 1's value, as
            /// scikit-learn's binary case).
            pub fn new(num_classes: usize) -> Self {
                $name { state: ScoreState::new(num_classes), average: Average::Macro }
            }
            /// Macro, weighted (by support) or per class; `Micro` is not defined here and reads as macro.
            pub fn average(mut self, average: Average) -> Self {
                self.average = average;
                self
            }
        }

        impl Metric for $name {
            fn name(&self) -> String {
                match self.average {
                    Average::PerClass => format!("{}_per_class", $label),
                    Average::Weighted => format!("{}_weighted", $label),
                    _ => $label.to_string(),
                }
            }
            fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
                let name = Metric::name(self);
                self.state.update(&name, scores, targets)
            }
            fn compute(&self) -> Result<MetricValue> {
                let host = self.state.read(&Metric::name(self))?;
                if host.classes == 2 && self.average != Average::PerClass {
                    return Ok(MetricValue::Scalar($per_class(&host, 1)));
                }
                let per_class = (0..host.classes).map(|c| $per_class(&host, c)).collect();
                Ok(combine(per_class, &supports(&host), self.average))
            }
            fn reset(&mut self) {
                self.state.reset();
            }
        }
    };
}

fn ap_of(host: &Host, class: usize) -> f64 {
    average_precision(&pr_curve(host, class))
}

ranking_metric!(
    /// Area under the ROC curve, one class against the rest (scikit-learn's `roc_auc_score`
    /// with `multi_class="ovr"`); classes without positives or negatives are left out.
    Auroc,
    "auroc",
    auroc
);
ranking_metric!(
    /// Average precision, one class against the rest (scikit-learn's `average_precision_score`).
    AveragePrecision,
    "average_precision",
    ap_of
);

/// The precision-recall curve of every class against the rest (what `wandb.plot.pr_curve` draws).
#[derive(Debug, Clone)]
pub struct PrecisionRecallCurve {
    state: ScoreState,
}

impl PrecisionRecallCurve {
    /// Over `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        PrecisionRecallCurve { state: ScoreState::new(num_classes) }
    }
    /// Adds a batch.
    pub fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        self.state.update("precision_recall_curve", scores, targets)
    }
    /// One curve per class (exact: a point at every distinct score).
    pub fn compute(&self) -> Result<Vec<PrCurve>> {
        let host = self.state.read("precision_recall_curve")?;
        Ok((0..host.classes).map(|c| pr_curve(&host, c)).collect())
    }
    /// Forgets every batch.
    pub fn reset(&mut self) {
        self.state.reset();
    }
}
