//! The tutorial "Image Classification using PyTorch Lightning and Weights & Biases", in Rust:
//! CIFAR-10, a 4-conv CNN, EarlyStopping + ModelCheckpoint, ~70% test accuracy, driven by
//! fulmen's LightningCLI.
//!
//! ```text
//! cargo run --release --example cifar                            # fit + test on CIFAR-10 (downloaded into ./data)
//! cargo run --release --example cifar -- fit --data.synthetic true --trainer.max_epochs 3   # no download
//! cargo run --release --example cifar -- fit --trainer.fast_dev_run 1   # one batch of everything
//! cargo run --release --example cifar -- fit --model.learning_rate 1e-3
//! cargo run --release --example cifar -- fit --config lightning_logs/version_0/config.yaml
//! cargo run --release --example cifar -- fit --print_config > my.yaml   # every option, documented
//! cargo run --release --example cifar -- test --ckpt_path best
//! cargo run --release --example cifar -- fit --trainer.logger '[csv, {class_path: WandbLogger, init_args: {project: wandb-lightning}}]'
//! ```
//!
//! With a WandbLogger the run is written as a W&B offline run under `./wandb/`; upload it with
//! `wandb sync wandb/latest-run`. Metric curves, 32 validation images with their predicted and
//! true classes every epoch, and the test set's precision-recall curve and confusion matrix
//! reach the W&B run, TensorBoard (`tensorboard --logdir lightning_logs`), and PNGs in the log
//! folder. `fit` saves the resolved config as `config.yaml` in the run's version folder.
//!
//! Before the CLI the example took flags of its own; README "The tutorial's command line" maps them.

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;

use fulmen::cli::{LightningCli, Subcommand, TransformSpec};
use fulmen::prelude::*;
use fulmen::usage::{Usage, peak_rss_bytes};

/// The model's hyperparameters, saved to hparams.yaml and into every checkpoint.
#[hyperparameters]
pub struct LitConfig {
    /// Shape of one image.
    pub input_shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// Adam's learning rate.
    #[hparam(default = 2e-4, range = 1e-6..=1.0)]
    pub learning_rate: f64,
}

/// The tutorial's CNN: fc1's input size (64·5·5 for 3×32×32) is inferred from the conv chain
/// and `hparams.input_shape`.
#[derive(Module, LightningModule, Debug)]
#[lightning(
    hparams = LitConfig,
    loss = nll,
    metrics(accuracy),
    optimizer = adam(lr = learning_rate)
)]
pub struct LitModel {
    #[layer(conv2d(3 -> 32, kernel = 3), relu)]
    conv1: Conv2d,
    #[layer(conv2d(32 -> 32, kernel = 3), relu, max_pool(2))]
    conv2: Conv2d,
    #[layer(conv2d(32 -> 64, kernel = 3), relu)]
    conv3: Conv2d,
    #[layer(conv2d(64 -> 64, kernel = 3), relu, max_pool(2))]
    conv4: Conv2d,
    #[layer(linear(auto -> 512), relu)]
    fc1: Linear,
    #[layer(linear(512 -> 128), relu)]
    fc2: Linear,
    #[layer(linear(128 -> num_classes), log_softmax)]
    fc3: Linear,
    #[module(skip)]
    hparams: LitConfig,
}

/// The tutorial's data: CIFAR-10, or generated images of the same shape and classes.
#[hyperparameters]
pub struct TutorialData {
    /// Train on generated images (10 classes of coloured shapes) instead of CIFAR-10.
    #[hparam(default = false)]
    pub synthetic: bool,
    /// With `synthetic`: generate the images once, at setup, and hold them in memory (default:
    /// each image is drawn by the loader's workers when a batch needs it).
    #[hparam(default = false)]
    pub in_memory: bool,
    /// Where CIFAR-10 is downloaded and extracted.
    #[hparam(default = "./data")]
    pub data_dir: String,
    /// A mirror of cifar-10-binary.tar.gz (null: FULMEN_CIFAR10_URL, else the official URL).
    #[hparam(default = None)]
    pub cifar_url: Option<String>,
    /// Images per batch.
    #[hparam(default = 32, range = 1..)]
    pub batch_size: usize,
    /// Loader worker threads.
    #[hparam(default = 2)]
    pub num_workers: usize,
    /// Seed of the train/validation split, the shuffle and the generated images.
    #[hparam(default = 42)]
    pub seed: u64,
    /// Transforms of the training images (the standard recipe: RandomCrop size 32 padding 4,
    /// then RandomHorizontalFlip).
    #[hparam(default = Vec::new())]
    pub train_transforms: Vec<TransformSpec>,
    /// Validation images logged with their predictions after every validation epoch.
    #[hparam(default = 32)]
    pub num_samples: usize,
}

/// CIFAR-10 or the synthetic stand-in, chosen by the config.
type TutorialDataModule = Box<dyn DataModule<Batch = ClassificationBatch<4>>>;

impl DataConfig for TutorialData {
    type DataModule = TutorialDataModule;
    fn build(&self) -> fulmen::Result<TutorialDataModule> {
        let transforms = fulmen::cli::compose(&self.train_transforms, "train_transforms")?;
        if self.synthetic {
            let dm = SyntheticDataModule::new(self.seed)
                .in_memory(self.in_memory)
                .batch_size(self.batch_size)
                .num_workers(self.num_workers)
                .train_transforms(transforms);
            return Ok(Box::new(dm));
        }
        let dm = Cifar10DataModule::new(&self.data_dir).batch_size(self.batch_size).num_workers(self.num_workers).seed(self.seed).train_transforms(transforms);
        Ok(Box::new(match &self.cifar_url {
            Some(url) => dm.url(url),
            None => dm,
        }))
    }
}

/// The tutorial's defaults: what a config file or `--section.key VALUE` changes.
const DEFAULTS: &str = "
seed_everything: 42
trainer:
  max_epochs: 50
  callbacks:
    - {class_path: EarlyStopping, init_args: {monitor: val_loss}}
    - {class_path: ModelCheckpoint, init_args: {monitor: val_loss, save_last: true}}
model:
  input_shape: [3, 32, 32]
  num_classes: 10
";

fn main() -> ExitCode {
    let started = Rc::new(Cell::new(Usage::now()));
    let start = started.clone();
    LightningCli::<LitModel, TutorialData>::new("cifar")
        .about("Train the tutorial's CNN on CIFAR-10 (or on generated images with --data.synthetic true)")
        .default_config(DEFAULTS)
        .default_subcommand(Subcommand::Fit)
        .configure_trainer(move |trainer, dm, data| {
            let trainer = trainer.callback(predictions(dm, data)?);
            start.set(Usage::now());
            Ok(trainer)
        })
        .after_fit(move |trainer, fitted, dm, data| test_and_report(trainer, fitted, dm, data, started.get()))
        .run()
}

/// As the tutorial: the first validation images, picked before training, logged with their
/// predictions after every validation epoch. Gets CIFAR-10 first, saying what to do if it cannot.
fn predictions(dm: &mut TutorialDataModule, data: &TutorialData) -> fulmen::Result<ImagePredictionLogger> {
    if let Err(e) = dm.prepare_data() {
        return Err(fulmen::Error::Data(format!(
            "could not get CIFAR-10 ({e})\n\
             Three ways out:\n  \
             1. put cifar-10-binary.tar.gz (or its extracted cifar-10-batches-bin/ folder) into {dir}\n  \
             2. download from a mirror: --data.cifar_url URL (or FULMEN_CIFAR10_URL=URL)\n  \
             3. train on generated images instead: --data.synthetic true",
            dir = data.data_dir
        )));
    }
    dm.setup(SetupStage::Fit)?;
    let loader = dm.val_dataloader()?.ok_or_else(|| fulmen::Error::Data("the tutorial's data has no validation set".into()))?;
    let batch =
        loader.iter().next().ok_or_else(|| fulmen::Error::Data("the validation set is empty".into()))?.map_err(|e| fulmen::Error::Data(format!("{e}")))?;
    ImagePredictionLogger::from_batch(&batch, data.num_samples)
}

/// As Lightning's `trainer.test()` after fit: the best checkpoint when there is one; then the
/// throughput, how busy the fit kept the cores, and the peak memory.
fn test_and_report(trainer: &mut Trainer<LitModel>, fitted: &LitModel, dm: &mut TutorialDataModule, data: &TutorialData, start: Usage) -> fulmen::Result<()> {
    let fit = start.since();
    let fit_time = fit.wall;
    match trainer.state().best_model_path.clone() {
        Some(path) => {
            println!("Testing the best checkpoint {}", path.display());
            trainer.test_from(dm, "best")?;
        }
        None => {
            trainer.test(fitted, dm)?;
        }
    }
    let state = trainer.state();
    // Every rank of a data-parallel run trains on its own batch of `batch_size`.
    let images = state.global_step as f64 * data.batch_size as f64 * state.world_size.max(1) as f64;
    println!(
        "Trained {} epochs ({} steps) in {:.1}s ({:.0} img/s, validation included; {:.0}% CPU, peak RSS {} MB){}",
        state.epoch,
        state.global_step,
        fit_time.as_secs_f64(),
        images / fit_time.as_secs_f64(),
        fit.cpu_percent(),
        peak_rss_bytes().map_or(0, |b| b >> 20),
        state.log_dir.as_ref().map(|d| format!("; logs in {}", d.display())).unwrap_or_default()
    );
    Ok(())
}
