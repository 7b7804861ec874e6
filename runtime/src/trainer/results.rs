//! Lightning's `log` semantics for one stage's epoch: step values kept on the device until they
//! are written or shown, epoch values reduced on the device (batch-size-weighted means), and the
//! `name_step` / `name_epoch` split when a value is logged both ways.

use burn::tensor::{Tensor, Transaction};

use crate::error::{Error, Result};
use crate::flagged::FirstFlagged;
use crate::metrics::{MetricValue, Replicas};
use crate::module::{LogValue, Logged, MetricUpdate, Metrics, Reduce, Stage, StepContext};
use crate::strategy::Ddp;

#[derive(Debug)]
struct Entry {
    name: String,
    on_step: bool,
    on_epoch: bool,
    prog_bar: bool,
    logger: bool,
    reduce: Reduce,
    /// Reduce the epoch value across the ranks of a data-parallel run.
    sync_dist: bool,
    /// Latest step value, not yet read to the host.
    last: Option<LogValue>,
    /// Latest step value read to the host.
    last_host: Option<f64>,
    /// Device-side reduction of tensor values (weighted sum for `Mean`).
    device_acc: Option<Tensor<1>>,
    /// Host-side reduction of scalar values.
    host_acc: Option<f64>,
    weight: usize,
}

/// The values one stage logged in the current epoch.
#[derive(Debug, Default)]
pub struct EpochResults {
    entries: Vec<Entry>,
    /// Streaming metrics by name, updated every step and computed at the epoch end.
    metrics: Vec<MetricUpdate>,
    /// The first batch with a label outside the model's classes, and where it came from.
    labels: FirstFlagged,
    label_source: Option<(Stage, u64, usize)>,
    /// The first batch with a token id outside the embedding's vocabulary, and where.
    tokens: FirstFlagged,
    token_source: Option<(Stage, u64, usize)>,
}

/// Which of an entry's values a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Values bound for the loggers.
    Logger,
    /// Values bound for the progress bar.
    ProgBar,
}

impl EpochResults {
    /// Takes what one step logged and checked.
    pub fn record_step(&mut self, ctx: &mut StepContext) -> Result<()> {
        for check in ctx.take_label_checks() {
            let (flagged, source) = if check.tokens { (&mut self.tokens, &mut self.token_source) } else { (&mut self.labels, &mut self.label_source) };
            source.get_or_insert((ctx.stage(), ctx.epoch(), check.classes));
            flagged.record(ctx.batch_idx(), check.flag, check.offending);
        }
        self.record(ctx.take_logged())?;
        self.record_metrics(ctx.take_metrics())
    }

    /// Fails with the first batch whose token ids were outside the vocabulary or whose labels
    /// were outside the model's classes (a read each).
    pub fn check_labels(&self) -> Result<()> {
        if let (Some(bad), Some((stage, epoch, vocab))) = (self.tokens.read(), self.token_source) {
            let id = bad.value as i64;
            let fix = if id < 0 { "token ids count from 0".to_string() } else { format!("give the embedding a vocabulary of at least {}", id + 1) };
            return Err(Error::Batch {
                stage: stage.noun(),
                batch: bad.index,
                epoch,
                reason: format!("token id {id} is outside the embedding's vocabulary 0..{vocab}; {fix}, or fix the dataset's token ids"),
            });
        }
        let (Some(bad), Some((stage, epoch, classes))) = (self.labels.read(), self.label_source) else { return Ok(()) };
        let label = bad.value as i64;
        let fix =
            if label < 0 { "labels are class indices from 0".to_string() } else { format!("give the model at least {} classes (num_classes)", label + 1) };
        Err(Error::Batch {
            stage: stage.noun(),
            batch: bad.index,
            epoch,
            reason: format!("label {label} is outside the model's classes 0..{classes} (num_classes = {classes}); {fix}, or fix the dataset's labels"),
        })
    }

    /// Adds one step's logged values.
    pub fn record(&mut self, logged: Vec<Logged>) -> Result<()> {
        for l in logged {
            let index = match self.entries.iter().position(|e| e.name == l.name) {
                Some(i) => {
                    let e = &self.entries[i];
                    if (e.on_step, e.on_epoch, e.reduce) != (l.on_step, l.on_epoch, l.reduce) {
                        return Err(Error::Log {
                            name: l.name,
                            reason: "logged with different on_step/on_epoch/reduce options in the same epoch; use the same options every step".into(),
                        });
                    }
                    i
                }
                None => {
                    self.entries.push(Entry {
                        name: l.name.clone(),
                        on_step: l.on_step,
                        on_epoch: l.on_epoch,
                        prog_bar: l.prog_bar,
                        logger: l.logger,
                        reduce: l.reduce,
                        sync_dist: l.sync_dist,
                        last: None,
                        last_host: None,
                        device_acc: None,
                        host_acc: None,
                        weight: 0,
                    });
                    self.entries.len() - 1
                }
            };
            let e = &mut self.entries[index];
            if l.on_epoch {
                e.weight += l.weight;
                match &l.value {
                    LogValue::Tensor(t) => {
                        let term = match l.reduce {
                            Reduce::Mean => t.clone().mul_scalar(l.weight as f64),
                            _ => t.clone(),
                        };
                        e.device_acc = Some(match e.device_acc.take() {
                            None => term,
                            Some(acc) => combine_tensor(acc, term, l.reduce),
                        });
                    }
                    LogValue::Scalar(v) => {
                        let term = if l.reduce == Reduce::Mean { v * l.weight as f64 } else { *v };
                        e.host_acc = Some(match e.host_acc {
                            None => term,
                            Some(acc) => combine_host(acc, term, l.reduce),
                        });
                    }
                }
            }
            if l.on_step {
                e.last = Some(l.value);
            }
        }
        Ok(())
    }

    /// Adds one step's streaming-metric batches.
    pub fn record_metrics(&mut self, updates: Vec<MetricUpdate>) -> Result<()> {
        for update in updates {
            if self.entries.iter().any(|e| e.name == update.name) {
                return Err(Error::Log { name: update.name, reason: "logged both as a value and as a metric object in one epoch".into() });
            }
            match self.metrics.iter_mut().find(|m| m.name == update.name) {
                Some(kept) => kept.metric.update(&update.scores, &update.targets)?,
                None => {
                    let mut first = update;
                    first.metric.reset();
                    first.metric.update(&first.scores, &first.targets)?;
                    self.metrics.push(first);
                }
            }
        }
        Ok(())
    }

    /// Reads the latest step values bound for `target` (one device sync for all of them).
    /// Names get a `_step` suffix when the value is also logged per epoch.
    pub fn step_values(&mut self, target: Target) -> Metrics {
        let wanted = |e: &Entry| {
            e.on_step
                && match target {
                    Target::Logger => e.logger,
                    Target::ProgBar => e.prog_bar,
                }
        };
        let mut pending = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if wanted(e)
                && let Some(LogValue::Tensor(t)) = &e.last
            {
                pending.push((i, t.clone()));
            }
        }
        for (i, value) in read_all(pending) {
            self.entries[i].last_host = Some(value);
            self.entries[i].last = None;
        }
        let mut out = Metrics::new();
        for e in self.entries.iter_mut() {
            if let Some(LogValue::Scalar(v)) = e.last.take() {
                e.last_host = Some(v);
            }
            if wanted(e)
                && let Some(v) = e.last_host
            {
                out.insert(step_name(e), v);
            }
        }
        out
    }

    /// The epoch's reduced values (one device sync) and computed metrics, by output name, with
    /// their routing.
    pub fn epoch_values(&mut self) -> Result<EpochOutput> {
        self.epoch_values_across(None)
    }

    /// [`epoch_values`](Self::epoch_values) over every rank of a data-parallel run: values
    /// logged with `sync_dist` and streaming metrics reduced over all their batches.
    pub(crate) fn epoch_values_across(&mut self, ddp: Option<&Ddp>) -> Result<EpochOutput> {
        self.check_labels()?;
        let pending: Vec<(usize, Tensor<1>)> = self.entries.iter().enumerate().filter_map(|(i, e)| Some((i, e.device_acc.clone()?))).collect();
        let mut device: Vec<Option<f64>> = vec![None; self.entries.len()];
        for (i, v) in read_all(pending) {
            device[i] = Some(v);
        }
        // Each epoch entry's reduction over this rank's steps and its weight.
        let mut partial: Vec<Option<(f64, f64)>> = self
            .entries
            .iter()
            .zip(device)
            .map(|(e, dev)| {
                let reduced = match (dev, e.host_acc) {
                    (Some(a), Some(b)) => combine_host(a, b, e.reduce),
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => f64::NAN,
                };
                (e.on_epoch && e.weight > 0).then_some((reduced, e.weight as f64))
            })
            .collect();
        if let Some(ddp) = ddp {
            self.sync(ddp, &mut partial)?;
        }
        let values = self
            .entries
            .iter()
            .zip(partial)
            .filter_map(|(e, p)| {
                let (reduced, weight) = p?;
                let value = if e.reduce == Reduce::Mean { reduced / weight } else { reduced };
                let name = if e.on_step { format!("{}_epoch", e.name) } else { e.name.clone() };
                Some(EpochValue { name, base: e.name.clone(), value, logger: e.logger, prog_bar: e.prog_bar })
            })
            .collect::<Vec<_>>();
        let mut values = values;
        let mut plots = Vec::new();
        for m in &self.metrics {
            let value = match m.metric.compute()? {
                MetricValue::Scalar(value) => value,
                MetricValue::Matrix(matrix) => {
                    plots.push(EpochPlot { name: m.name.clone(), value: PlotValue::ConfusionMatrix(matrix), logger: m.logger });
                    continue;
                }
                MetricValue::Curves(curves) => {
                    plots.push(EpochPlot { name: m.name.clone(), value: PlotValue::PrCurves(curves), logger: m.logger });
                    continue;
                }
                MetricValue::PerClass(_) => {
                    return Err(Error::Log {
                        name: m.name.clone(),
                        reason: "per-class values cannot be logged as one metric; use an average (macro, weighted) or log each class's value".into(),
                    });
                }
            };
            values.push(EpochValue { name: m.name.clone(), base: m.name.clone(), value, logger: m.logger, prog_bar: m.prog_bar });
        }
        Ok(EpochOutput { values, plots })
    }
}

impl EpochResults {
    /// Reduces the `sync_dist` entries of `partial` and every streaming metric over the ranks:
    /// one exchange of what each rank logged (the names must agree: a value logged on some
    /// ranks only cannot be reduced, and waiting for it would hang the others), then one per
    /// metric, in name order.
    fn sync(&mut self, ddp: &Ddp, partial: &mut [Option<(f64, f64)>]) -> Result<()> {
        let synced: Vec<usize> = (0..self.entries.len()).filter(|&i| self.entries[i].sync_dist && partial[i].is_some()).collect();
        let mine = RankValues {
            values: synced.iter().map(|&i| (self.entries[i].name.clone(), partial[i].unwrap_or_default())).collect(),
            metrics: self.metrics.iter().map(|m| m.name.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
        };
        let bytes = serde_json::to_vec(&mine).map_err(|e| Error::serde("cannot encode the logged values for the other ranks").caused_by(e))?;
        let what = "the epoch-end reduction of logged values (sync_dist) and metrics";
        let all: Vec<RankValues> = ddp
            .gather(bytes, what)?
            .iter()
            .map(|b| serde_json::from_slice(b).map_err(|e| Error::serde(format!("{what}: a rank sent values that cannot be read")).caused_by(e)))
            .collect::<Result<_>>()?;
        let names = |l: &RankValues| (l.values.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), l.metrics.clone());
        for (rank, theirs) in all.iter().enumerate() {
            if names(theirs) != names(&all[0]) {
                let list = |l: &RankValues| {
                    let (values, metrics) = names(l);
                    format!("[{}]", values.into_iter().chain(metrics).collect::<Vec<_>>().join(", "))
                };
                return Err(Error::Distributed {
                    rank: ddp.rank(),
                    reason: format!(
                        "{what}: rank 0 logged {} this epoch and rank {rank} {}; log the same names with sync_dist on every rank \
                         (a rank with no batch logs nothing: give every rank at least one batch)",
                        list(&all[0]),
                        list(theirs)
                    ),
                });
            }
        }
        for (k, &i) in synced.iter().enumerate() {
            let reduce = self.entries[i].reduce;
            let per_rank = all.iter().map(|l| l.values[k].1);
            partial[i] = per_rank.reduce(|(a, wa), (b, wb)| (combine_host(a, b, reduce), wa + wb));
        }
        let device = self.metrics.first().map(|m| m.scores.device());
        if let Some(device) = device {
            let gather = |bytes: Vec<u8>| ddp.gather(bytes, "the epoch-end reduction of a metric's state");
            let replicas = Replicas::new(&gather, device);
            self.metrics.sort_by(|a, b| a.name.cmp(&b.name));
            for m in &mut self.metrics {
                m.metric.sync(&replicas)?;
            }
        }
        Ok(())
    }
}

/// What one rank logged in an epoch, as the others receive it: each `sync_dist` value's
/// reduction and weight, and its streaming metrics' names.
#[derive(serde::Serialize, serde::Deserialize)]
struct RankValues {
    values: Vec<(String, (f64, f64))>,
    metrics: Vec<String>,
}

/// An epoch's reduced values and its charts.
#[derive(Debug, Clone, Default)]
pub struct EpochOutput {
    /// Numbers, by output name.
    pub values: Vec<EpochValue>,
    /// Confusion matrices and precision-recall curves.
    pub plots: Vec<EpochPlot>,
}

/// A chart a metric computed at an epoch end.
#[derive(Debug, Clone)]
pub struct EpochPlot {
    /// The name passed to `log_metric`.
    pub name: String,
    /// What to draw.
    pub value: PlotValue,
    /// Send to loggers.
    pub logger: bool,
}

/// A chart's data.
#[derive(Debug, Clone)]
pub enum PlotValue {
    /// A confusion matrix (rows: true class).
    ConfusionMatrix(Vec<Vec<f64>>),
    /// One precision-recall curve per class.
    PrCurves(Vec<crate::metrics::PrCurve>),
}

/// One reduced epoch value.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochValue {
    /// Name written to loggers (`x` or `x_epoch`).
    pub name: String,
    /// The name passed to `log`.
    pub base: String,
    /// The value.
    pub value: f64,
    /// Send to loggers.
    pub logger: bool,
    /// Show in the progress bar.
    pub prog_bar: bool,
}

fn step_name(e: &Entry) -> String {
    if e.on_epoch { format!("{}_step", e.name) } else { e.name.clone() }
}

fn combine_tensor(acc: Tensor<1>, term: Tensor<1>, reduce: Reduce) -> Tensor<1> {
    match reduce {
        Reduce::Mean | Reduce::Sum => acc + term,
        Reduce::Max => acc.max_pair(term),
        Reduce::Min => acc.min_pair(term),
    }
}

fn combine_host(acc: f64, term: f64, reduce: Reduce) -> f64 {
    match reduce {
        Reduce::Mean | Reduce::Sum => acc + term,
        Reduce::Max => acc.max(term),
        Reduce::Min => acc.min(term),
    }
}

/// Reads several one-element tensors to the host in one transaction.
fn read_all(pending: Vec<(usize, Tensor<1>)>) -> Vec<(usize, f64)> {
    if pending.is_empty() {
        return Vec::new();
    }
    let mut tx = Transaction::default();
    let indices: Vec<usize> = pending.iter().map(|(i, _)| *i).collect();
    for (_, t) in pending {
        tx = tx.register(t);
    }
    indices.into_iter().zip(tx.execute()).map(|(i, data)| (i, data.iter::<f64>().next().unwrap_or(f64::NAN))).collect()
}
