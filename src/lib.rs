//! # fulmen — PyTorch Lightning for Rust, on Burn
//!
//! Annotate a Burn model with `#[derive(LightningModule)]` and its config with
//! `#[hyperparameters]`, then hand both to a [`Trainer`]:
//!
//! ```text
//! use fulmen::prelude::*;
//! let mut trainer = Trainer::builder().max_epochs(3).build()?;
//! let model = LitModel::new(LitConfig::new([3, 32, 32], 10), trainer.device())?;
//! let model = trainer.fit(model, &mut dm)?;
//! trainer.test(&model, &mut dm)?;
//! ```

// The macros' expansions name `::fulmen`; this lets them expand inside this crate too.
extern crate self as fulmen;

pub mod cli;

pub use fulmen_macros::{Layers, LightningModule, hyperparameters};
pub use fulmen_runtime::*;

/// Burn, as fulmen uses it (so user crates need no second dependency).
pub use fulmen_runtime::burn_reexport as burn;

/// Everything a training script needs.
pub mod prelude {
    /// Burn's `#[derive(Module)]` expands to `burn::...` paths; this makes them resolve in
    /// crates that depend on fulmen alone.
    pub use crate::burn;
    pub use crate::burn::data::dataloader::batcher::Batcher;
    pub use crate::burn::data::dataset::{Dataset, DatasetError};
    pub use crate::burn::module::Module;
    pub use crate::burn::nn::conv::{Conv1d, Conv2d, ConvTranspose2d};
    pub use crate::burn::nn::{BatchNorm, Embedding, GroupNorm, LayerNorm, Linear};
    pub use crate::burn::tensor::{Device, Int, Tensor, TensorData};
    pub use crate::data::{
        ColorJitter, Compose, ImageBatch, ImageFolderDataModule, InMemoryDataModule, Loader, Normalize, OrderedLoader, RandomCrop, RandomHorizontalFlip,
        TensorDataset,
    };
    pub use crate::{
        Accelerator, Batch, Callback, Cifar10DataModule, CkptPath, ClassificationBatch, CsvLogger, DataConfig, DataModule, EarlyStopping, EmaWeightAveraging,
        FromHparams, GradientClip, Hyperparameters, ImagePredictionLogger, Interval, Layers, LearningRateMonitor, LightningModule, LogOptions, Logger,
        ManualStep, Mode, ModelCheckpoint, OptimizerConfig, Optimizers, Precision, Result, SetupStage, Stage, StepContext, Strategy, SyntheticDataModule,
        TensorBoardLogger, Trainer, TrainerView, WandbLogger, hparams, hyperparameters, seed_everything,
    };
}

/// Paths used by the macros' generated code. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use fulmen_runtime::burn_reexport as burn;
    pub use fulmen_runtime::*;
}
