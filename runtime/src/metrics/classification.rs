//! Accuracy, precision, recall and F-beta over classes, with scikit-learn's averaging and
//! `zero_division` rules (and torchmetrics' macro accuracy), computed from confusion counts.

use burn::tensor::{Int, Tensor};

use super::confusion::{ConfusionState, Counts, check_shapes};
use super::{Metric, MetricValue};
use crate::error::{Error, Result};

/// How per-class values are combined (scikit-learn's `average`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// From the counts summed over classes.
    Micro,
    /// The unweighted mean over classes.
    Macro,
    /// The mean over classes weighted by their support (true count).
    Weighted,
    /// No averaging: one value per class.
    PerClass,
}

/// The value of a ratio whose denominator is 0 (scikit-learn's `zero_division`); NaN values are
/// left out of macro and weighted means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZeroDivision {
    /// 0 (scikit-learn's default, without its warning).
    Zero,
    /// 1.
    One,
    /// NaN, and skipped when averaging.
    Nan,
}

impl ZeroDivision {
    fn value(self) -> f64 {
        match self {
            ZeroDivision::Zero => 0.0,
            ZeroDivision::One => 1.0,
            ZeroDivision::Nan => f64::NAN,
        }
    }
}

fn average_name(average: Average) -> &'static str {
    match average {
        Average::Micro => "micro",
        Average::Macro => "macro",
        Average::Weighted => "weighted",
        Average::PerClass => "per_class",
    }
}

/// Mean of the non-NaN values, weighted when `weights` is given (all-zero weights fall back to
/// the plain mean, as scikit-learn's `_nanaverage`); NaN when every value is NaN.
fn nan_average(values: &[f64], weights: Option<&[f64]>) -> f64 {
    let kept: Vec<(f64, f64)> = values.iter().enumerate().filter(|(_, v)| !v.is_nan()).map(|(i, v)| (*v, weights.map_or(1.0, |w| w[i]))).collect();
    if kept.is_empty() {
        return f64::NAN;
    }
    let total: f64 = kept.iter().map(|(_, w)| w).sum();
    if total == 0.0 {
        return kept.iter().map(|(v, _)| v).sum::<f64>() / kept.len() as f64;
    }
    kept.iter().map(|(v, w)| v * w).sum::<f64>() / total
}

/// `numerator / denominator` per class, then averaged; a zero denominator gives `zero_division`.
fn ratio(counts: &Counts, numerator: Vec<f64>, denominator: Vec<f64>, average: Average, zero_division: ZeroDivision) -> MetricValue {
    let divide = |n: f64, d: f64| if d == 0.0 { zero_division.value() } else { n / d };
    match average {
        Average::Micro => MetricValue::Scalar(divide(numerator.iter().sum(), denominator.iter().sum())),
        _ => {
            let per_class: Vec<f64> = numerator.iter().zip(&denominator).map(|(n, d)| divide(*n, *d)).collect();
            match average {
                Average::Macro => MetricValue::Scalar(nan_average(&per_class, None)),
                Average::Weighted => MetricValue::Scalar(nan_average(&per_class, Some(&counts.support()))),
                _ => MetricValue::PerClass(per_class),
            }
        }
    }
}

/// Which ratio a [`Prf`] metric computes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Precision,
    Recall,
    FBeta(f64),
}

/// Precision, recall or F-beta, streaming.
#[derive(Debug, Clone)]
struct Prf {
    state: ConfusionState,
    kind: Kind,
    average: Average,
    zero_division: ZeroDivision,
    /// Why the options make no sense, reported at the first update.
    invalid: Option<String>,
}

impl Prf {
    fn new(classes: usize, kind: Kind) -> Self {
        Prf { state: ConfusionState::new(classes), kind, average: Average::Macro, zero_division: ZeroDivision::Zero, invalid: None }
    }

    fn check(&self) -> Result<()> {
        refuse(&self.name(), &self.invalid)
    }

    fn name(&self) -> String {
        let base = match self.kind {
            Kind::Precision => "precision".to_string(),
            Kind::Recall => "recall".to_string(),
            Kind::FBeta(1.0) => "f1".to_string(),
            Kind::FBeta(b) => format!("f{b}"),
        };
        format!("{base}_{}", average_name(self.average))
    }

    fn compute(&self) -> Result<MetricValue> {
        let counts = self.state.counts(&self.name())?;
        let (tp, predicted, support) = (counts.tp(), counts.predicted(), counts.support());
        let (numerator, denominator) = match self.kind {
            Kind::Precision | Kind::FBeta(0.0) => (tp, predicted),
            Kind::Recall => (tp, support),
            Kind::FBeta(b) if b.is_infinite() => (tp, support),
            Kind::FBeta(b) => {
                let b2 = b * b;
                let numerator = tp.iter().map(|t| (1.0 + b2) * t).collect();
                (numerator, support.iter().zip(&predicted).map(|(s, p)| b2 * s + p).collect())
            }
        };
        Ok(ratio(&counts, numerator, denominator, self.average, self.zero_division))
    }
}

macro_rules! prf_metric {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(Prf);

        impl $name {
            /// How classes are averaged (default macro).
            pub fn average(mut self, average: Average) -> Self {
                self.0.average = average;
                self
            }
            /// The value of undefined ratios (default 0).
            pub fn zero_division(mut self, zero_division: ZeroDivision) -> Self {
                self.0.zero_division = zero_division;
                self
            }
        }

        impl Metric for $name {
            fn name(&self) -> String {
                self.0.name()
            }
            fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
                self.0.check()?;
                let name = self.0.name();
                self.0.state.update(&name, scores, targets)
            }
            fn compute(&self) -> Result<MetricValue> {
                self.0.check()?;
                self.0.compute()
            }
            fn reset(&mut self) {
                self.0.state.reset();
            }
            fn sync(&mut self, replicas: &super::Replicas<'_>) -> Result<()> {
                self.0.state.sync(replicas)
            }
        }
    };
}

prf_metric!(
    /// Precision `tp / (tp + fp)` (scikit-learn's `precision_score`), arg-max predictions.
    Precision
);
prf_metric!(
    /// Recall `tp / (tp + fn)` (scikit-learn's `recall_score`).
    Recall
);
prf_metric!(
    /// F-beta `(1 + β²)·tp / ((1 + β²)·tp + β²·fn + fp)` (scikit-learn's `fbeta_score`).
    FBeta
);

impl Precision {
    /// Precision over `num_classes` classes, macro-averaged, zero division 0.
    pub fn new(num_classes: usize) -> Self {
        Precision(Prf::new(num_classes, Kind::Precision))
    }
}

impl Recall {
    /// Recall over `num_classes` classes, macro-averaged, zero division 0.
    pub fn new(num_classes: usize) -> Self {
        Recall(Prf::new(num_classes, Kind::Recall))
    }
}

impl FBeta {
    /// F-beta over `num_classes` classes (`beta` ≥ 0; 0 is precision, infinity recall; anything
    /// else is an error at the first update).
    pub fn new(num_classes: usize, beta: f64) -> Self {
        let valid = beta >= 0.0;
        let mut prf = Prf::new(num_classes, Kind::FBeta(if valid { beta } else { 1.0 }));
        if !valid {
            prf.invalid = Some(format!("beta must be a number ≥ 0 (0 is precision, infinity recall), got {beta}"));
        }
        FBeta(prf)
    }
}

/// F1: [`FBeta`] with β = 1.
pub fn f1(num_classes: usize) -> FBeta {
    FBeta::new(num_classes, 1.0)
}

/// Accuracy: micro (the fraction right), macro (torchmetrics': the mean recall over classes that
/// occur in the targets or the predictions), or top-k (the target among the k best scores).
#[derive(Debug, Clone)]
pub struct Accuracy {
    state: ConfusionState,
    average: Average,
    top_k: usize,
    hits: Option<Tensor<1>>,
    /// Why the options make no sense, reported at the first update.
    invalid: Option<String>,
}

/// The error for a metric built with options that make no sense.
fn refuse(metric: &str, invalid: &Option<String>) -> Result<()> {
    match invalid {
        Some(reason) => Err(Error::Metric { metric: metric.to_string(), reason: reason.clone() }),
        None => Ok(()),
    }
}

impl Accuracy {
    /// Micro accuracy over `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Accuracy { state: ConfusionState::new(num_classes), average: Average::Micro, top_k: 1, hits: None, invalid: None }
    }
    /// Micro or macro (per-class values with `PerClass`).
    pub fn average(mut self, average: Average) -> Self {
        self.average = average;
        self
    }
    /// Counts a sample right when its target is among its `k` highest scores (micro only;
    /// `k` ≥ 1, else an error at the first update).
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k.max(1);
        if k == 0 {
            self.invalid = Some("top_k must be at least 1 (1 is plain accuracy)".into());
        }
        self
    }
}

impl Metric for Accuracy {
    fn name(&self) -> String {
        match (self.top_k, self.average) {
            (1, Average::Micro) => "accuracy".into(),
            (1, average) => format!("accuracy_{}", average_name(average)),
            (k, _) => format!("top{k}_accuracy"),
        }
    }

    fn update(&mut self, scores: &Tensor<2>, targets: &Tensor<1, Int>) -> Result<()> {
        refuse(&self.name(), &self.invalid)?;
        if self.top_k == 1 {
            let name = self.name();
            return self.state.update(&name, scores, targets);
        }
        let [batch, classes] = scores.dims();
        check_shapes(&self.name(), self.state.classes(), [batch, classes], targets.dims()[0])?;
        if batch == 0 {
            return Ok(());
        }
        if self.top_k > classes {
            return Err(Error::Metric { metric: self.name(), reason: format!("top_k = {} but there are only {classes} classes", self.top_k) });
        }
        if self.average != Average::Micro {
            return Err(Error::Metric { metric: self.name(), reason: "top-k accuracy is micro-averaged only".into() });
        }
        let scores = scores.clone().detach().without_autodiff();
        let (_, best) = scores.clone().topk_with_indices(self.top_k, 1);
        let hits = best.equal(targets.clone().reshape([batch, 1]).repeat_dim(1, self.top_k)).int().sum().float();
        self.hits = Some(match self.hits.take() {
            Some(h) => h + hits,
            None => hits,
        });
        // The state's counts give the sample total and check the labels' range.
        self.state.update(&self.name(), &scores, targets)
    }

    fn compute(&self) -> Result<MetricValue> {
        refuse(&self.name(), &self.invalid)?;
        let counts = self.state.counts(&self.name())?;
        if self.top_k > 1 {
            let hits = self.hits.as_ref().map_or(0.0, |h| h.clone().into_scalar::<f32>() as f64);
            return Ok(MetricValue::Scalar(hits / counts.total()));
        }
        let (tp, predicted, support) = (counts.tp(), counts.predicted(), counts.support());
        match self.average {
            Average::Micro => Ok(MetricValue::Scalar(tp.iter().sum::<f64>() / counts.total())),
            average => {
                let per_class: Vec<f64> = (0..tp.len()).map(|c| if support[c] == 0.0 { 0.0 } else { tp[c] / support[c] }).collect();
                // Classes that never occur, in targets or predictions, are left out.
                let occurs: Vec<f64> = (0..tp.len()).map(|c| if support[c] + predicted[c] > 0.0 { 1.0 } else { 0.0 }).collect();
                match average {
                    Average::PerClass => Ok(MetricValue::PerClass(per_class)),
                    Average::Weighted => Ok(MetricValue::Scalar(nan_average(&per_class, Some(&support)))),
                    _ => {
                        let n: f64 = occurs.iter().sum();
                        Ok(MetricValue::Scalar(per_class.iter().zip(&occurs).map(|(v, o)| v * o).sum::<f64>() / n))
                    }
                }
            }
        }
    }

    fn reset(&mut self) {
        self.state.reset();
        self.hits = None;
    }
    fn sync(&mut self, replicas: &super::Replicas<'_>) -> Result<()> {
        self.state.sync(replicas)?;
        replicas.sum(&mut self.hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonsense_options_are_errors_that_name_them() {
        let device = burn::tensor::Device::flex();
        let scores = Tensor::<2>::from_floats([[0.9, 0.1], [0.2, 0.8]], &device);
        let targets = Tensor::<1, Int>::from_ints([0, 1], &device);
        let mut metrics: Vec<(Box<dyn Metric>, &str)> = vec![
            (Box::new(FBeta::new(2, f64::NAN)), "beta must be a number ≥ 0"),
            (Box::new(FBeta::new(2, -1.0)), "got -1"),
            (Box::new(Accuracy::new(2).top_k(0)), "top_k must be at least 1"),
            (Box::new(Accuracy::new(0)), "built for 0 classes"),
            (Box::new(Precision::new(0)), "built for 0 classes"),
        ];
        for (metric, said) in &mut metrics {
            let err = metric.update(&scores, &targets).unwrap_err().to_string();
            assert!(err.contains(*said), "{err}");
        }
        let mut fine = FBeta::new(2, 0.5);
        fine.update(&scores, &targets).unwrap();
        assert!(matches!(fine.compute().unwrap(), MetricValue::Scalar(v) if (v - 1.0).abs() < 1e-12));
    }

    #[test]
    fn nan_average_skips_nans_and_falls_back_on_zero_weights() {
        assert_eq!(nan_average(&[1.0, f64::NAN, 0.0], None), 0.5);
        assert!(nan_average(&[f64::NAN], None).is_nan());
        assert_eq!(nan_average(&[1.0, 0.0], Some(&[0.0, 0.0])), 0.5);
        assert_eq!(nan_average(&[1.0, 0.0], Some(&[3.0, 1.0])), 0.75);
    }
}
