//! fulmen's runtime: the `LightningModule` trait, the `Trainer` and its loops, callbacks,
//! loggers, metrics, data modules and checkpoints. Users depend on the `fulmen` facade crate.

pub mod accelerator;
pub mod allocator;
pub mod callbacks;
pub mod checkpoint;
pub mod data;
mod error;
mod flagged;
pub mod fs;
pub mod grad;
pub mod hparams;
pub mod interrupt;
pub mod kernels;
pub mod loggers;
pub mod loss;
pub mod metrics;
pub mod module;
pub mod nn;
pub mod optim;
pub mod plots;
pub mod precision;
pub mod progress;
pub mod rng;
pub mod shape;
pub mod steps;
pub mod strategy;
pub mod summary;
pub mod trainer;
pub mod usage;

pub use accelerator::{Accelerator, Devices, SelectedDevice, seed_everything};
pub use callbacks::{Callback, EarlyStopping, EmaWeightAveraging, ImagePredictionLogger, LearningRateMonitor, Mode, ModelCheckpoint, TrainerView};
pub use checkpoint::{Checkpoint, FromHparams};
pub use data::{Cifar10DataModule, ClassificationBatch, DataConfig, DataModule, SetupStage, SyntheticDataModule};
pub use error::{Error, Result};
pub use hparams::Hyperparameters;
pub use loggers::{CsvLogger, Image, Logger, RunStatus, TensorBoardLogger, WandbLogger};
pub use module::{Batch, LightningModule, LogOptions, LogValue, Metrics, Reduce, Stage, StepContext};
pub use optim::{Interval, OptimizerConfig, Optimizers, adam, adam_betas, adamw, sgd};
pub use precision::{GradScalerConfig, Precision};
pub use strategy::{DdpStrategy, ProcessGroupBackend, Strategy};
pub use trainer::{
    CkptPath, GradientClip, Hook, Limit, ManualStep, OptimizerHandle, OptimizerRef, Trainer, TrainerBuilder, TrainerConfig, TrainerState, metrics_table,
};

/// The Burn crate fulmen is built on.
pub use burn as burn_reexport;
/// serde, for the `#[hyperparameters]` expansion.
pub use serde;
/// serde_json, for hyperparameter values.
pub use serde_json;
