//! The tutorial "Image Classification using PyTorch Lightning and Weights & Biases", in Rust:
//! CIFAR-10, a 4-conv CNN, EarlyStopping + ModelCheckpoint, ~70% test accuracy.
//!
//! ```text
//! cargo run --release --example cifar                       # CIFAR-10 (downloaded once into ./data)
//! cargo run --release --example cifar -- --synthetic --max-epochs 3   # no download
//! cargo run --release --example cifar -- --fast-dev-run     # one batch of everything
//! cargo run --release --example cifar -- --set learning_rate=1e-3   # override a hyperparameter
//! cargo run --release --example cifar -- --hparams lightning_logs/version_0/hparams.yaml
//! cargo run --release --example cifar -- --logger wandb --logger csv   # W&B offline run + CSV
//! ```
//!
//! With `--logger wandb` the run is written as a W&B offline run under `./wandb/`; upload it
//! with `wandb sync wandb/latest-run`. Metric curves, 32 validation images with their predicted
//! and true classes every epoch, and the test set's precision-recall curve and confusion matrix
//! reach the W&B run, TensorBoard (`tensorboard --logdir lightning_logs`), and PNGs in the log folder.

use std::process::ExitCode;
use std::time::Instant;

use clap::{CommandFactory, FromArgMatches, Parser};
use fulmen::prelude::*;

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

/// Train the tutorial's CNN on CIFAR-10 (or on generated images with --synthetic).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where CIFAR-10 is downloaded and extracted.
    #[arg(long, default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Upper bound on epochs (EarlyStopping on val_loss usually stops sooner).
    #[arg(long, default_value_t = 50)]
    max_epochs: u64,
    /// auto, cpu, cuda or wgpu.
    #[arg(long, default_value = "auto")]
    accelerator: String,
    /// Which device: auto, a count (1) or an index list ([1] is the second GPU).
    #[arg(long, default_value = "auto")]
    devices: String,
    /// auto, single_device or ddp (one process per device, started by mpirun or srun; needs
    /// the `mpi` feature).
    #[arg(long, default_value = "auto")]
    strategy: String,
    /// The machines of a ddp run.
    #[arg(long, default_value_t = 1)]
    num_nodes: usize,
    /// 32-true, 16-mixed, bf16-mixed, 16-true or bf16-true (Lightning's names).
    #[arg(long, default_value = "32-true")]
    precision: String,
    /// Run one batch of train, validation and test, then stop.
    #[arg(long)]
    fast_dev_run: bool,
    /// Seed for weights, shuffling and the train/validation split.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Train on generated images (10 classes of coloured shapes) instead of CIFAR-10.
    #[arg(long)]
    synthetic: bool,
    /// Augment the training images with the standard recipe: a random 32x32 crop of the image
    /// padded by 4, flipped left to right half of the time.
    #[arg(long)]
    augment: bool,
    /// A mirror of cifar-10-binary.tar.gz (also FULMEN_CIFAR10_URL).
    #[arg(long)]
    cifar_url: Option<String>,
    /// Start from the hyperparameters in this YAML file (a run's hparams.yaml, for instance).
    #[arg(long, value_name = "FILE")]
    hparams: Option<std::path::PathBuf>,
    /// Override one hyperparameter (repeatable), e.g. `--set learning_rate=1e-3`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    overrides: Vec<String>,
    /// Where lightning_logs/ goes.
    #[arg(long, default_value = ".")]
    default_root_dir: std::path::PathBuf,
    /// Data loader worker threads.
    #[arg(long, default_value_t = 2)]
    num_workers: usize,
    /// Resume from a checkpoint: a path, `last` (the newest under --default-root-dir) or `best`.
    #[arg(long, value_name = "PATH|last|best")]
    ckpt_path: Option<String>,
    /// Where to log (repeatable); default: csv and tensorboard.
    #[arg(long = "logger", value_enum)]
    loggers: Vec<LoggerKind>,
    /// The W&B project of `--logger wandb`.
    #[arg(long, default_value = "wandb-lightning")]
    wandb_project: String,
    /// Runs `wandb sync` at the end when the `wandb` command is installed (`--logger wandb`).
    #[arg(long)]
    wandb_sync: bool,
    /// Validation images logged with their predictions after every validation epoch.
    #[arg(long, default_value_t = 32)]
    num_samples: usize,
}

/// A logger for `--logger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LoggerKind {
    Csv,
    Tensorboard,
    Wandb,
}

fn main() -> ExitCode {
    let help = format!("Hyperparameters (--set NAME=VALUE, or --hparams FILE):\n{}", LitConfig::help());
    let matches = Args::command().after_help(help).get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ fulmen::Error::Interrupted { .. }) => {
            eprintln!("{e}; resume with --ckpt-path last");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Trainer: EarlyStopping, ModelCheckpoint, the image-prediction callback, and the loggers.
fn trainer(args: &Args, predictions: ImagePredictionLogger) -> fulmen::Result<Trainer<LitModel>> {
    let mut builder = Trainer::builder()
        .max_epochs(args.max_epochs)
        .accelerator(args.accelerator.parse()?)
        .devices(args.devices.parse::<fulmen::Devices>()?)
        .strategy(args.strategy.parse::<fulmen::Strategy>()?)
        .num_nodes(args.num_nodes)
        .precision(args.precision.parse()?)
        .seed(args.seed)
        .fast_dev_run(usize::from(args.fast_dev_run))
        .default_root_dir(&args.default_root_dir)
        .callback(EarlyStopping::new("val_loss"))
        .callback(ModelCheckpoint::monitor("val_loss").save_last(true))
        .callback(predictions);
    let kinds = if args.loggers.is_empty() { vec![LoggerKind::Csv, LoggerKind::Tensorboard] } else { args.loggers.clone() };
    for kind in kinds {
        builder = match kind {
            LoggerKind::Csv => builder.logger(CsvLogger::default_root()),
            LoggerKind::Tensorboard => builder.logger(TensorBoardLogger::default_root()),
            LoggerKind::Wandb => builder.logger(WandbLogger::new(&args.wandb_project).job_type("train").sync_on_finish(args.wandb_sync)),
        };
    }
    builder.build()
}

fn run(args: &Args) -> fulmen::Result<()> {
    let base = match &args.hparams {
        Some(path) => LitConfig::from_yaml_file(path)?,
        None => LitConfig::new([3, 32, 32], 10),
    };
    let config = base.with_overrides(&args.overrides)?;

    if args.synthetic {
        let dm = SyntheticDataModule::new(args.seed).batch_size(args.batch_size).num_workers(args.num_workers).train_transforms(transforms(args));
        let predictions = ImagePredictionLogger::new(dm.val_samples(args.num_samples), dm.batcher());
        let mut trainer = trainer(args, predictions)?;
        let model = LitModel::new(config, trainer.device())?;
        return fit_and_test(&mut trainer, model, dm, args.ckpt_path.as_deref(), args.batch_size);
    }
    let mut dm =
        Cifar10DataModule::new(&args.data_dir).batch_size(args.batch_size).num_workers(args.num_workers).seed(args.seed).train_transforms(transforms(args));
    if let Some(url) = &args.cifar_url {
        dm = dm.url(url);
    }
    if let Err(e) = dm.prepare_data() {
        return Err(fulmen::Error::Data(format!(
            "could not get CIFAR-10 ({e})\n\
             Three ways out:\n  \
             1. put cifar-10-binary.tar.gz (or its extracted cifar-10-batches-bin/ folder) into {dir}\n  \
             2. download from a mirror: --cifar-url URL (or FULMEN_CIFAR10_URL=URL)\n  \
             3. train on generated images instead: --synthetic",
            dir = args.data_dir.display()
        )));
    }
    // As the tutorial: the first validation images, picked before training.
    dm.setup(SetupStage::Fit)?;
    let predictions = ImagePredictionLogger::new(dm.val_samples(args.num_samples)?, dm.batcher());
    let mut trainer = trainer(args, predictions)?;
    let model = LitModel::new(config, trainer.device())?;
    fit_and_test(&mut trainer, model, dm, args.ckpt_path.as_deref(), args.batch_size)
}

/// The training transforms `--augment` asks for.
fn transforms(args: &Args) -> Compose {
    if args.augment { Compose::crop_and_flip(32) } else { Compose::new() }
}

fn fit_and_test<D: DataModule<Batch = ClassificationBatch<4>>>(
    trainer: &mut Trainer<LitModel>,
    model: LitModel,
    mut dm: D,
    ckpt_path: Option<&str>,
    batch_size: usize,
) -> fulmen::Result<()> {
    let start = Instant::now();
    let fitted = match ckpt_path {
        Some(ckpt) => trainer.fit_from(model, &mut dm, ckpt)?,
        None => trainer.fit(model, &mut dm)?,
    };
    let fit_time = start.elapsed();
    // As Lightning's `trainer.test()`: evaluate the best checkpoint when there is one.
    match trainer.state().best_model_path.clone() {
        Some(path) => {
            println!("Testing the best checkpoint {}", path.display());
            trainer.test_from(&mut dm, "best")?;
        }
        None => {
            trainer.test(&fitted, &mut dm)?;
        }
    }
    let state = trainer.state();
    // Every rank of a data-parallel run trains on its own batch of `batch_size`.
    let images = state.global_step as f64 * batch_size as f64 * state.world_size.max(1) as f64;
    println!(
        "Trained {} epochs ({} steps) in {:.1}s ({:.0} img/s, validation included){}",
        state.epoch,
        state.global_step,
        fit_time.as_secs_f64(),
        images / fit_time.as_secs_f64(),
        state.log_dir.as_ref().map(|d| format!("; logs in {}", d.display())).unwrap_or_default()
    );
    Ok(())
}
