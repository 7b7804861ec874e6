//! What one rank runs: a seeded fit of a small MLP (plain SGD, so a gradient summed instead of
//! averaged would show in the weights) on rows whose first feature names the row, recording
//! which rows this rank was served; its outcome goes to `<out>/rank<R>.json`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fulmen::burn::module::{ModuleVisitor, Param};
use fulmen::data::Loader;
use fulmen::prelude::*;
use fulmen::serde_json::{self, json};
use fulmen::{DdpStrategy, Strategy, TrainerView};

/// Training rows (10 batches of 32) and validation rows.
pub const TRAIN: usize = 320;
const VAL: usize = 96;
const FEATURES: usize = 8;

/// Hyperparameters of [`Net`].
#[hyperparameters]
pub struct NetConfig {
    /// Hidden width.
    #[hparam(default = 16)]
    pub hidden: usize,
}

/// 8 → 16 → 3, SGD.
#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = NetConfig, metrics(accuracy), optimizer = sgd(lr = 0.2))]
pub struct Net {
    #[layer(linear(8 -> hidden), relu)]
    fc1: Linear,
    #[layer(linear(hidden -> 3))]
    fc2: Linear,
    #[module(skip)]
    hparams: NetConfig,
}

/// Row `i` of a set: feature 0 is `i / 1000` (so a batch tells which rows it holds), the others
/// seeded noise; the class is the sign pattern of two features.
fn row(i: usize, seed: u64) -> (Vec<f32>, usize) {
    let mut rng = fulmen::rng::SplitMix64::new(seed.wrapping_mul(1_000_003) ^ i as u64);
    let mut x: Vec<f32> = (0..FEATURES).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    x[0] = i as f32 / 1000.0;
    let class = usize::from(x[1] > 0.0) + usize::from(x[2] > 0.3);
    (x, class)
}

/// A set of rows that records which rows it was asked for.
#[derive(Clone)]
struct Rows {
    rows: Arc<Vec<(Vec<f32>, usize)>>,
    served: Arc<Mutex<Vec<usize>>>,
}

impl Dataset<(Vec<f32>, usize)> for Rows {
    fn get(&self, index: usize) -> Result<(Vec<f32>, usize), DatasetError> {
        self.served.lock().unwrap().push(index);
        self.rows.get(index).cloned().ok_or_else(|| DatasetError::new(fulmen::Error::Data(format!("no row {index}"))))
    }
    fn len(&self) -> usize {
        self.rows.len()
    }
}

#[derive(Clone)]
struct RowBatcher;

impl Batcher<(Vec<f32>, usize), ClassificationBatch<2>> for RowBatcher {
    fn batch(&self, items: Vec<(Vec<f32>, usize)>, device: &Device) -> ClassificationBatch<2> {
        let n = items.len();
        let targets: Vec<i64> = items.iter().map(|(_, c)| *c as i64).collect();
        let inputs: Vec<f32> = items.into_iter().flat_map(|(x, _)| x).collect();
        ClassificationBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, FEATURES]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        }
    }
}

struct Data {
    train: Rows,
    val: Rows,
    batch_size: usize,
}

impl DataModule for Data {
    type Batch = ClassificationBatch<2>;
    fn train_dataloader(&self) -> fulmen::Result<Loader<Self::Batch>> {
        Ok(OrderedLoader::new(self.train.clone(), RowBatcher, self.batch_size).shuffle(7).into_loader())
    }
    fn val_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        Ok(Some(OrderedLoader::new(self.val.clone(), RowBatcher, self.batch_size).into_loader()))
    }
}

/// Dies (SIGKILL) or fails at a global step, on rank 1.
struct Sabotage {
    kill_at: Option<u64>,
    fail_at: Option<u64>,
}

impl Callback<Net> for Sabotage {
    fn on_train_batch_start(&mut self, trainer: &mut TrainerView<'_, Net>, _batch_idx: usize) -> fulmen::Result<()> {
        let state = trainer.state();
        if state.global_rank != 1 {
            return Ok(());
        }
        if self.kill_at == Some(state.global_step) {
            kill_this_process();
        }
        if self.fail_at == Some(state.global_step) {
            return Err(fulmen::Error::user("the sabotage callback failed on purpose"));
        }
        Ok(())
    }
}

/// SIGKILL, as the OOM killer or a failed node does it: no unwinding, no goodbye.
fn kill_this_process() {
    let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// Every float parameter's values, in the model's order.
struct Weights(Vec<f32>);

impl ModuleVisitor for Weights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.extend(param.val().into_data().convert::<f32>().iter::<f32>());
    }
}

/// Options: `batch=N epochs=N resume=PATH every=STEPS loggers=1 kill_at=STEP fail_at=STEP
/// timeout=SECONDS`.
pub fn run(out: &Path, options: &[String]) -> i32 {
    let get = |key: &str| options.iter().find_map(|o| o.strip_prefix(&format!("{key}=")).map(str::to_string));
    let number = |key: &str, default: u64| get(key).map_or(default, |v| v.parse().expect("a number"));
    let rank = std::env::var("OMPI_COMM_WORLD_RANK").ok().and_then(|r| r.parse().ok()).unwrap_or(0usize);
    let served = Arc::new(Mutex::new(Vec::new()));
    let outcome = fit(out, &get, &number, served.clone());
    let served = served.lock().unwrap().clone();
    let record = match &outcome {
        Ok(result) => json!({ "ok": true, "served": served, "result": result }),
        Err(e) => json!({ "ok": false, "error": e.to_string(), "served": served }),
    };
    std::fs::write(out.join(format!("rank{rank}.json")), serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    match outcome {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("rank {rank}: error: {e}");
            1
        }
    }
}

fn fit(
    out: &Path,
    get: &dyn Fn(&str) -> Option<String>,
    number: &dyn Fn(&str, u64) -> u64,
    served: Arc<Mutex<Vec<usize>>>,
) -> fulmen::Result<serde_json::Value> {
    let rows = |n: usize, seed: u64| Arc::new((0..n).map(|i| row(i, seed)).collect::<Vec<_>>());
    let mut dm = Data {
        train: Rows { rows: rows(TRAIN, 1), served },
        val: Rows { rows: rows(VAL, 2), served: Arc::new(Mutex::new(Vec::new())) },
        batch_size: number("batch", 32) as usize,
    };
    let root = out.join("run");
    let mut ddp = DdpStrategy::new().timeout(std::time::Duration::from_secs(number("timeout", 600)));
    if let Some(backend) = get("backend") {
        ddp = ddp.process_group_backend(backend.parse()?);
    }
    let mut builder = Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .strategy(Strategy::Ddp(ddp))
        .seed(3)
        .max_epochs(number("epochs", 2))
        .num_sanity_val_steps(0)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .default_root_dir(&root)
        .callback(Sabotage { kill_at: get("kill_at").map(|v| v.parse().unwrap()), fail_at: get("fail_at").map(|v| v.parse().unwrap()) });
    // A checkpoint every N steps (mid-epoch ones among them), or the best and the last.
    let checkpoints = match get("every") {
        Some(n) => ModelCheckpoint::default().every_n_train_steps(n.parse().unwrap()).save_top_k(-1).filename("{step}"),
        None => ModelCheckpoint::monitor("val_loss").save_last(true),
    };
    builder = builder.callback(checkpoints.dirpath(root.join("checkpoints")));
    builder = if get("loggers").as_deref() == Some("1") {
        builder.logger(CsvLogger::new(&root)).logger(TensorBoardLogger::new(&root)).logger(WandbLogger::new("ddp-test").save_dir(&root))
    } else {
        builder.no_logger()
    };
    let mut trainer = builder.build()?;
    let model = Net::new(NetConfig::new(), trainer.device())?;
    let model = match get("resume") {
        Some(path) => trainer.fit_from(model, &mut dm, PathBuf::from(path))?,
        None => trainer.fit(model, &mut dm)?,
    };
    let mut weights = Weights(Vec::new());
    model.visit(&mut weights);
    let state = trainer.state();
    Ok(json!({
        "weights": weights.0,
        "global_step": state.global_step,
        "epoch": state.epoch,
        "world_size": state.world_size,
        "metrics": state.callback_metrics,
        "best_model_path": state.best_model_path,
    }))
}
