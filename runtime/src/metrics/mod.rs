//! Metrics computed on the tensors' device: the batch `accuracy` the generated steps log, and
//! streaming metrics (update per batch, compute at epoch end, reset) with scikit-learn's and
//! torchmetrics' definitions.

use burn::tensor::{Device, Int, Tensor, TensorData};

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
    /// Merges the state of every rank of a data-parallel run into this one, so that `compute`
    /// gives the value over all their batches (torchmetrics' `dist_reduce_fx`: counts are
    /// summed, kept scores concatenated). Called at each epoch end of such a run; the default
    /// refuses, naming the metric.
    fn sync(&mut self, replicas: &Replicas<'_>) -> Result<()> {
        let _ = replicas;
        Err(crate::Error::Metric {
            metric: self.name(),
            reason: "cannot be reduced across the ranks of a data-parallel run: implement `Metric::sync` (Replicas::sum for counts, concat for kept scores)"
                .into(),
        })
    }
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
    fn sync(&mut self, replicas: &Replicas<'_>) -> Result<()> {
        self.as_mut().sync(replicas)
    }
}

/// The ranks of a data-parallel run, as a metric's [`Metric::sync`] merges its state over them.
pub struct Replicas<'a> {
    gather: &'a dyn Fn(Vec<u8>) -> Result<Vec<Vec<u8>>>,
    device: Device,
}

impl<'a> Replicas<'a> {
    /// Ranks whose states `gather` exchanges (every rank's bytes, by rank); merged tensors go
    /// to `device` where this rank has none.
    pub fn new(gather: &'a dyn Fn(Vec<u8>) -> Result<Vec<Vec<u8>>>, device: Device) -> Self {
        Replicas { gather, device }
    }

    /// Sums a state tensor (counts) over the ranks; a rank without one adds nothing.
    pub fn sum<const D: usize>(&self, state: &mut Option<Tensor<D>>) -> Result<()> {
        let mine = state.take().map(|t| t.into_data().convert::<f64>());
        let parts = self.exchange(mine)?;
        let mut total: Option<(Vec<usize>, Vec<f64>)> = None;
        for (shape, values) in parts.into_iter().flatten() {
            match &mut total {
                None => total = Some((shape, values)),
                Some((s, sum)) if *s == shape => sum.iter_mut().zip(values).for_each(|(a, b)| *a += b),
                Some((s, _)) => return Err(mismatch(s, &shape)),
            }
        }
        *state = total.map(|(shape, values)| Tensor::<D>::from_data(TensorData::new(values, shape).convert::<f32>(), &self.device));
        Ok(())
    }

    /// Every rank's kept batches of scores, in rank order.
    pub fn concat<const D: usize>(&self, parts: &mut Vec<Tensor<D>>) -> Result<()> {
        let mine = (!parts.is_empty()).then(|| Tensor::cat(std::mem::take(parts), 0).into_data().convert::<f64>());
        *parts = self
            .exchange(mine)?
            .into_iter()
            .flatten()
            .map(|(shape, v)| Tensor::<D>::from_data(TensorData::new(v, shape).convert::<f32>(), &self.device))
            .collect();
        Ok(())
    }

    /// Every rank's kept batches of labels, in rank order.
    pub fn concat_int<const D: usize>(&self, parts: &mut Vec<Tensor<D, Int>>) -> Result<()> {
        let mine = (!parts.is_empty()).then(|| Tensor::cat(std::mem::take(parts), 0).into_data().convert::<f64>());
        *parts = self
            .exchange(mine)?
            .into_iter()
            .flatten()
            .map(|(shape, v)| Tensor::<D, Int>::from_data(TensorData::new(v.into_iter().map(|x| x as i64).collect::<Vec<_>>(), shape), &self.device))
            .collect();
        Ok(())
    }

    /// Sends this rank's (shape, values) and returns every rank's.
    fn exchange(&self, mine: Option<TensorData>) -> Result<Vec<Option<HostState>>> {
        let mut bytes = Vec::new();
        if let Some(data) = mine {
            let shape = data.shape().to_vec();
            bytes.extend((shape.len() as u64).to_le_bytes());
            shape.iter().for_each(|&d| bytes.extend((d as u64).to_le_bytes()));
            data.iter::<f64>().for_each(|v| bytes.extend(v.to_le_bytes()));
        }
        let words = |b: &[u8]| -> Vec<u64> { b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect() };
        (self.gather)(bytes)?
            .into_iter()
            .map(|b| {
                if b.is_empty() {
                    return Ok(None);
                }
                let w = words(&b);
                let rank = w[0] as usize;
                let shape: Vec<usize> = w.get(1..1 + rank).ok_or_else(corrupt)?.iter().map(|&d| d as usize).collect();
                let values: Vec<f64> = w[1 + rank..].iter().map(|&v| f64::from_bits(v)).collect();
                if values.len() != shape.iter().product::<usize>() {
                    return Err(corrupt());
                }
                Ok(Some((shape, values)))
            })
            .collect()
    }
}

/// A state tensor on the host: its shape and values.
type HostState = (Vec<usize>, Vec<f64>);

fn mismatch(a: &[usize], b: &[usize]) -> crate::Error {
    crate::Error::Metric {
        metric: "state".into(),
        reason: format!("the ranks hold states of different shapes ({a:?} and {b:?}): every rank must log the metric with the same number of classes"),
    }
}

fn corrupt() -> crate::Error {
    crate::Error::Metric { metric: "state".into(), reason: "a rank sent a state that cannot be read".into() }
}
