//! A hand-written LightningModule (no derive) over a tiny deterministic data module: it logs
//! known values so the tests can check exactly what the Trainer writes.

use std::sync::Arc;

use fulmen::burn::data::dataloader::DataLoaderBuilder;
use fulmen::burn::data::dataloader::batcher::Batcher;
use fulmen::burn::data::dataset::{Dataset, DatasetError};
use fulmen::burn::nn::LinearConfig;
use fulmen::burn::tensor::TensorData;
use fulmen::data::Loader;
use fulmen::loss::cross_entropy;
use fulmen::prelude::*;

/// A linear classifier on 2 features that logs:
/// - `x` = batch index (host scalar), on_step + on_epoch, in training;
/// - `t` = batch index (device tensor), on_step + on_epoch, in training;
/// - `v` = batch index with the validation defaults;
/// - `val_loss` = the next value of `val_losses` per validation epoch (cycling).
#[derive(Module, Debug)]
pub struct Probe {
    pub linear: Linear,
    #[module(skip)]
    pub val_losses: Vec<f64>,
}

impl Probe {
    pub fn new(device: &Device, val_losses: Vec<f64>) -> Self {
        Probe { linear: LinearConfig::new(2, 2).init(device), val_losses }
    }

    /// The weight's and the bias's values, in that order.
    pub fn values(&self) -> Vec<f32> {
        let bias = self.linear.bias.as_ref().expect("a bias").val();
        [self.linear.weight.val().flatten::<1>(0, 1), bias].into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap()).collect()
    }
}

impl LightningModule for Probe {
    type Batch = ClassificationBatch<2>;
    type Input = Tensor<2>;
    type Output = Tensor<2>;
    type Prediction = Tensor<2>;

    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.linear.forward(input)
    }

    fn training_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> fulmen::Result<Tensor<1>> {
        let i = ctx.batch_idx() as f64;
        let device = batch.inputs.device();
        ctx.log_with("x", i, LogOptions::new().on_epoch(true))?;
        ctx.log_with("t", Tensor::<1>::from_floats([i as f32], &device), LogOptions::new().on_epoch(true).prog_bar(true))?;
        let out = self.forward(batch.inputs);
        Ok(cross_entropy(out, batch.targets))
    }

    fn validation_step(&self, _batch: Self::Batch, ctx: &mut StepContext) -> fulmen::Result<()> {
        let i = ctx.batch_idx() as f64;
        ctx.log("v", i)?;
        let loss = self.val_losses.get(ctx.epoch() as usize % self.val_losses.len().max(1)).copied().unwrap_or(0.0);
        ctx.log("val_loss", loss)
    }

    fn predict_step(&self, batch: Self::Batch, _ctx: &mut StepContext) -> fulmen::Result<Tensor<2>> {
        Ok(self.forward(batch.inputs))
    }

    fn configure_optimizers(&self) -> fulmen::Optimizers {
        fulmen::sgd(0.1).into()
    }
}

/// `n` points `(i, -i)` labelled `i % 2`.
#[derive(Clone)]
pub struct Points(pub usize);

impl Dataset<(f32, usize)> for Points {
    fn get(&self, index: usize) -> Result<(f32, usize), DatasetError> {
        Ok((index as f32 / self.0 as f32, index % 2))
    }
    fn len(&self) -> usize {
        self.0
    }
}

#[derive(Clone)]
pub struct PointBatcher;

impl Batcher<(f32, usize), ClassificationBatch<2>> for PointBatcher {
    fn batch(&self, items: Vec<(f32, usize)>, device: &Device) -> ClassificationBatch<2> {
        let n = items.len();
        let xs: Vec<f32> = items.iter().flat_map(|(x, _)| [*x, -*x]).collect();
        let ys: Vec<i64> = items.iter().map(|(_, y)| *y as i64).collect();
        ClassificationBatch { inputs: Tensor::from_data(TensorData::new(xs, [n, 2]), device), targets: Tensor::from_data(TensorData::new(ys, [n]), device) }
    }
}

/// `train` and `val` points, in order, `batch` per batch, loaded on the calling thread.
pub struct PointsData {
    pub train: usize,
    pub val: usize,
    pub batch: usize,
}

impl PointsData {
    fn loader(&self, n: usize) -> Loader<ClassificationBatch<2>> {
        let loader: Arc<_> = DataLoaderBuilder::new(PointBatcher).batch_size(self.batch).set_device(Device::flex()).build(Points(n));
        loader
    }
}

impl DataModule for PointsData {
    type Batch = ClassificationBatch<2>;
    fn train_dataloader(&self) -> fulmen::Result<Loader<Self::Batch>> {
        Ok(self.loader(self.train))
    }
    fn val_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        Ok((self.val > 0).then(|| self.loader(self.val)))
    }
    fn test_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        Ok(Some(self.loader(self.val.max(1))))
    }
    fn predict_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        Ok(Some(self.loader(self.val.max(1))))
    }
}

/// Reads a metrics.csv into (header, rows of optional values).
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<Option<f64>>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("header").split(',').map(String::from).collect();
    let rows = lines.map(|l| l.split(',').map(|c| if c.is_empty() { None } else { Some(c.parse().expect("number")) }).collect()).collect();
    (header, rows)
}

/// The value of `column` in each row that has it, with the row's `step`.
pub fn column(csv: &(Vec<String>, Vec<Vec<Option<f64>>>), name: &str) -> Vec<(u64, f64)> {
    let (header, rows) = csv;
    let col = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    let step = header.iter().position(|h| h == "step").expect("step column");
    rows.iter().filter_map(|r| Some((r[step]? as u64, r[col]?))).collect()
}

/// A fresh temporary folder.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fulmen-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `--features …` for a `cargo run` of this workspace's example that reuses this test build.
pub fn same_features() -> Vec<String> {
    let on: Vec<&str> =
        [("wgpu", cfg!(feature = "wgpu")), ("cuda", cfg!(feature = "cuda")), ("mpi", cfg!(feature = "mpi"))].into_iter().filter(|f| f.1).map(|f| f.0).collect();
    if on.is_empty() { Vec::new() } else { vec!["--features".into(), on.join(",")] }
}
