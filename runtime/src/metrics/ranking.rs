//! Metrics over the ranking of scores, one class against the rest: the precision-recall curve,
//! AUROC and average precision, with scikit-learn's definitions. They need every score of the
//! epoch, so batches stay on the device until `compute` reads them once.

use burn::tensor::{Int, Tensor};

use super::confusion::{check_shapes, label_error};
use super::{Average, Metric, MetricValue};
use crate::error::{Error, Result};
use crate::flagged::{FirstFlagged, out_of_range};

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
        if batch == 0 {
            return Ok(());
        }
        self.scores.push(scores.clone().detach().without_autodiff());
        self.targets.push(targets.clone());
        Ok(())
    }

    /// Keeps every rank's scores and targets.
    fn sync(&mut self, replicas: &super::Replicas<'_>) -> Result<()> {
        replicas.concat(&mut self.scores)?;
        replicas.concat_int(&mut self.targets)
    }

    fn read(&self, metric: &str) -> Result<Host> {
        let fail = |reason: String| Error::Metric { metric: metric.to_string(), reason };
        if self.scores.is_empty() {
            return Err(fail("no samples: update() was not called since the last reset (an empty epoch?)".into()));
        }
        let scores: Vec<f32> =
            Tensor::cat(self.scores.clone(), 0).into_data().convert::<f32>().try_to_vec().map_err(|e| fail(format!("cannot read scores: {e:?}")))?;
        let targets: Vec<i64> =
            Tensor::cat(self.targets.clone(), 0).into_data().convert::<i64>().try_to_vec().map_err(|e| fail(format!("cannot read targets: {e:?}")))?;
        // The batch a sample came from, counted from the last reset.
        let batch_of = |sample: usize| {
            let mut end = 0;
            self.targets.iter().position(|t| {
                end += t.dims()[0];
                sample < end
            })
        };
        if let Some(i) = targets.iter().position(|&t| t < 0 || t >= self.classes as i64) {
            return Err(fail(label_error(targets[i], batch_of(i).unwrap_or(0), self.classes)));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            let batch = batch_of(i / self.classes).unwrap_or(0);
            return Err(fail(format!("batch {batch} (counted from the last reset) has a score of {}; scores must be finite", scores[i])));
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
        if *positive {
            tp += 1.0
        } else {
            fp += 1.0
        }
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
    /// Samples of the class scored at or above each threshold.
    pub true_positives: Vec<f64>,
    /// Samples of other classes scored at or above each threshold.
    pub false_positives: Vec<f64>,
    /// Samples of the class.
    pub positives: f64,
    /// Samples of other classes.
    pub negatives: f64,
}

impl PrCurve {
    /// Counts at `n` evenly spaced thresholds `k / (n - 1)` (TensorBoard's pr_curves layout):
    /// rows true positives, false positives, true negatives, false negatives, precision, recall.
    pub fn at_thresholds(&self, n: usize) -> [Vec<f64>; 6] {
        let mut rows: [Vec<f64>; 6] = Default::default();
        for k in 0..n {
            let t = if n < 2 { 0.0 } else { k as f64 / (n - 1) as f64 };
            // The first stored threshold at or above t; every sample scored ≥ t is counted there.
            let i = self.thresholds.partition_point(|&s| s < t - 1e-12);
            let (tp, fp) = (self.true_positives.get(i).copied().unwrap_or(0.0), self.false_positives.get(i).copied().unwrap_or(0.0));
            let (tn, fn_) = (self.negatives - fp, self.positives - tp);
            rows[0].push(tp);
            rows[1].push(fp);
            rows[2].push(tn);
            rows[3].push(fn_);
            rows[4].push(if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 });
            rows[5].push(if self.positives > 0.0 { tp / self.positives } else { 0.0 });
        }
        rows
    }

    /// Precision at `n` recall points from 1 down to 0, as `wandb.plot.pr_curve` draws it: the
    /// precision made non-increasing in recall, taken at the first point reaching each recall,
    /// rounded to 3 decimals. Returns (recall, precision) pairs.
    pub fn interpolated(&self, n: usize) -> Vec<(f64, f64)> {
        let mut precision = self.precision.clone();
        for i in 1..precision.len() {
            precision[i] = precision[i].max(precision[i - 1]);
        }
        precision.reverse();
        let recall: Vec<f64> = self.recall.iter().rev().copied().collect();
        // numpy's rounding (half to even) and linspace (k · step, the last point exactly 1).
        let round = |v: f64| (v * 1000.0).round_ties_even() / 1000.0;
        (0..n)
            .rev()
            .map(|k| {
                let r = if k + 1 == n { 1.0 } else { k as f64 * (1.0 / (n - 1) as f64) };
                let i = recall.partition_point(|&x| x < r).min(precision.len() - 1);
                (round(r), round(precision[i]))
            })
            .collect()
    }
}

fn pr_curve(host: &Host, class: usize) -> PrCurve {
    let (thresholds, tps, fps) = binary_curve(host, class);
    let positives = tps.last().copied().unwrap_or(0.0);
    let mut precision: Vec<f64> = tps.iter().zip(&fps).map(|(t, f)| if t + f == 0.0 { 0.0 } else { t / (t + f) }).rev().collect();
    let mut recall: Vec<f64> = tps.iter().map(|t| if positives == 0.0 { 1.0 } else { t / positives }).rev().collect();
    precision.push(1.0);
    recall.push(0.0);
    let negatives = fps.last().copied().unwrap_or(0.0);
    PrCurve {
        precision,
        recall,
        thresholds: thresholds.into_iter().rev().collect(),
        true_positives: tps.into_iter().rev().collect(),
        false_positives: fps.into_iter().rev().collect(),
        positives,
        negatives,
    }
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

/// Every (sample, class) pair as one binary problem, positive when the class is the sample's
/// label: class 0 of the result (micro averaging).
fn one_against_all(host: &Host) -> Host {
    let c = host.classes;
    let targets = (0..host.scores.len()).map(|j| if host.targets[j / c] == (j % c) as i64 { 0 } else { 1 }).collect();
    Host { classes: 1, scores: host.scores.clone(), targets }
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
            /// Macro, weighted (by support), micro (every sample-class pair as one binary
            /// problem, scikit-learn's `average="micro"`) or per class.
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
                    Average::Micro => format!("{}_micro", $label),
                    Average::Macro => $label.to_string(),
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
                if self.average == Average::Micro {
                    return Ok(MetricValue::Scalar($per_class(&one_against_all(&host), 0)));
                }
                let per_class = (0..host.classes).map(|c| $per_class(&host, c)).collect();
                Ok(combine(per_class, &supports(&host), self.average))
            }
            fn reset(&mut self) {
                self.state.reset();
            }
            fn sync(&mut self, replicas: &super::Replicas<'_>) -> Result<()> {
                self.state.sync(replicas)
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

/// The precision-recall curve of every class against the rest (what `wandb.plot.pr_curve`
/// draws): exact (every score kept until `compute`), or binned at `n` evenly spaced thresholds
/// in [0, 1] (torchmetrics' `thresholds = n`: counts on the device, memory `classes × n`, the
/// scores must be probabilities).
#[derive(Debug, Clone)]
pub struct PrecisionRecallCurve {
    mode: CurveMode,
}

#[derive(Debug, Clone)]
enum CurveMode {
    Exact(ScoreState),
    Binned(Box<Binned>),
}

/// Per class and threshold: predicted positives and true positives, plus supports and the
/// first batch with a label out of range, a non-finite score or a score outside [0, 1]
/// (tracked on the device, checked at `compute`).
#[derive(Debug, Clone, Default)]
struct Binned {
    classes: usize,
    thresholds: usize,
    predicted: Option<Tensor<2>>,
    true_positive: Option<Tensor<2>>,
    support: Option<Tensor<1>>,
    batches: usize,
    bad_label: FirstFlagged,
    bad_score: FirstFlagged,
    not_probability: FirstFlagged,
}

const CURVE: &str = "pr_curve";

impl Binned {
    fn threshold_values(&self) -> Vec<f64> {
        let n = self.thresholds;
        (0..n).map(|k| if n == 1 { 0.0 } else { k as f64 / (n - 1) as f64 }).collect()
    }

    fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        let [batch, classes] = scores.dims();
        check_shapes(CURVE, self.classes, [batch, classes], targets.dims()[0])?;
        if batch == 0 {
            return Ok(());
        }
        let device = targets.device();
        let scores = scores.clone().detach().without_autodiff();
        let nan = scores.clone().is_nan();
        self.bad_score.record(self.batches, scores.clone().is_finite().bool_not().any(), Tensor::zeros([1], &device));
        // Finite scores outside [0, 1]; the report shows the lowest below 0, else the highest above 1.
        let inside = scores.clone().greater_equal_elem(0.0).bool_and(scores.clone().lower_equal_elem(1.0)).bool_or(nan);
        let low = scores.clone().mask_fill(inside.clone(), f32::INFINITY).min();
        let high = scores.clone().mask_fill(inside.clone(), f32::NEG_INFINITY).max();
        let shown = high.mask_where(low.clone().lower_elem(0.0), low);
        self.not_probability.record(self.batches, inside.bool_not().any(), shown);
        let (flag, targets, offending) = out_of_range(targets.clone(), self.classes);
        self.bad_label.record(self.batches, flag, offending);
        self.batches += 1;
        let values: Vec<f32> = self.threshold_values().iter().map(|&t| t as f32).collect();
        let thresholds = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 1, self.thresholds]);
        // [batch, classes, thresholds]: score ≥ threshold.
        let above = scores.reshape([batch, classes, 1]).greater_equal(thresholds).float();
        let class_ids = Tensor::<1, Int>::arange(0..classes as i64, &device).reshape([1, classes]);
        let positive = targets.clone().reshape([batch, 1]).equal(class_ids).float();
        let predicted: Tensor<2> = above.clone().sum_dim(0).reshape([classes, self.thresholds]);
        let true_positive: Tensor<2> = (above * positive.clone().reshape([batch, classes, 1])).sum_dim(0).reshape([classes, self.thresholds]);
        let support: Tensor<1> = positive.sum_dim(0).reshape([classes]);
        self.predicted = Some(self.predicted.take().map_or(predicted.clone(), |a| a + predicted));
        self.true_positive = Some(self.true_positive.take().map_or(true_positive.clone(), |a| a + true_positive));
        self.support = Some(self.support.take().map_or(support.clone(), |a| a + support));
        Ok(())
    }

    fn compute(&self) -> Result<Vec<PrCurve>> {
        let fail = |reason: String| Error::Metric { metric: CURVE.to_string(), reason };
        let (Some(predicted), Some(tp), Some(support)) = (&self.predicted, &self.true_positive, &self.support) else {
            return Err(fail("no samples: update() was not called since the last reset (an empty epoch?)".into()));
        };
        if let Some(bad) = self.bad_score.read() {
            return Err(fail(format!("batch {} (counted from the last reset) has a NaN or infinite score; scores must be finite", bad.index)));
        }
        if let Some(bad) = self.not_probability.read() {
            return Err(fail(format!(
                "a score of batch {} (counted from the last reset) is {}, but binned thresholds need probabilities in [0, 1]; apply softmax (or sigmoid) first",
                bad.index, bad.value
            )));
        }
        if let Some(bad) = self.bad_label.read() {
            return Err(fail(label_error(bad.value as i64, bad.index, self.classes)));
        }
        let read = |t: &Tensor<2>| t.clone().into_data().convert::<f64>().try_to_vec::<f64>().map_err(|e| fail(format!("cannot read counts: {e:?}")));
        let (predicted, tp) = (read(predicted)?, read(tp)?);
        let support: Vec<f64> = support.clone().into_data().convert::<f64>().try_to_vec().map_err(|e| fail(format!("cannot read counts: {e:?}")))?;
        let n = self.thresholds;
        let divide = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        Ok((0..self.classes)
            .map(|c| {
                let row = |v: &[f64], k: usize| v[c * n + k];
                let mut precision: Vec<f64> = (0..n).map(|k| divide(row(&tp, k), row(&predicted, k))).collect();
                let mut recall: Vec<f64> = (0..n).map(|k| divide(row(&tp, k), support[c])).collect();
                precision.push(1.0);
                recall.push(0.0);
                let true_positives: Vec<f64> = (0..n).map(|k| row(&tp, k)).collect();
                let false_positives: Vec<f64> = (0..n).map(|k| row(&predicted, k) - row(&tp, k)).collect();
                PrCurve {
                    precision,
                    recall,
                    thresholds: self.threshold_values(),
                    true_positives,
                    false_positives,
                    positives: support[c],
                    negatives: support.iter().sum::<f64>() - support[c],
                }
            })
            .collect())
    }
}

impl PrecisionRecallCurve {
    /// Exact curves over `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        PrecisionRecallCurve { mode: CurveMode::Exact(ScoreState::new(num_classes)) }
    }
    /// Curves at `thresholds` evenly spaced thresholds from 0 to 1 (at least 2).
    pub fn binned(num_classes: usize, thresholds: usize) -> Self {
        let binned = Binned { classes: num_classes, thresholds: thresholds.max(2), ..Binned::default() };
        PrecisionRecallCurve { mode: CurveMode::Binned(Box::new(binned)) }
    }
    /// Adds a batch.
    pub fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        match &mut self.mode {
            CurveMode::Exact(state) => state.update(CURVE, scores, targets),
            CurveMode::Binned(binned) => binned.update(scores, targets),
        }
    }
    /// One curve per class.
    pub fn compute(&self) -> Result<Vec<PrCurve>> {
        match &self.mode {
            CurveMode::Exact(state) => {
                let host = state.read(CURVE)?;
                Ok((0..host.classes).map(|c| pr_curve(&host, c)).collect())
            }
            CurveMode::Binned(binned) => binned.compute(),
        }
    }
    /// Forgets every batch.
    pub fn reset(&mut self) {
        match &mut self.mode {
            CurveMode::Exact(state) => state.reset(),
            CurveMode::Binned(binned) => **binned = Binned { classes: binned.classes, thresholds: binned.thresholds, ..Binned::default() },
        }
    }
}

impl Metric for PrecisionRecallCurve {
    fn name(&self) -> String {
        "pr_curve".into()
    }
    fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        PrecisionRecallCurve::update(self, scores, targets)
    }
    fn compute(&self) -> Result<MetricValue> {
        PrecisionRecallCurve::compute(self).map(MetricValue::Curves)
    }
    fn reset(&mut self) {
        PrecisionRecallCurve::reset(self)
    }
    fn sync(&mut self, replicas: &super::Replicas<'_>) -> Result<()> {
        match &mut self.mode {
            CurveMode::Exact(state) => state.sync(replicas),
            CurveMode::Binned(binned) => {
                replicas.sum(&mut binned.predicted)?;
                replicas.sum(&mut binned.true_positive)?;
                replicas.sum(&mut binned.support)
            }
        }
    }
}
