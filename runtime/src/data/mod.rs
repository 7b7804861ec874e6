//! Data: the `DataModule` trait, image batches and transforms, data held in memory, images in
//! class folders, CIFAR-10 and a learnable synthetic dataset.

use std::sync::Arc;

use burn::data::dataloader::DataLoader;

use crate::error::Result;

mod batch;
mod cifar10;
mod download;
mod image_folder;
mod in_memory;
mod loader;
mod synthetic;
pub mod transforms;

pub use batch::{ClassificationBatch, ImageBatch, ImageBatcher, ImageItem, ImageSet, InputKind, LoaderOptions};
pub use cifar10::{CIFAR10_MD5, CIFAR10_SIZE, CIFAR10_URL, Cifar10DataModule};
pub use download::{Download, md5_file};
pub use image_folder::{FolderImages, ImageFolderDataModule};
pub use in_memory::{InMemoryDataModule, TensorDataset, TensorItem};
pub use loader::OrderedLoader;
pub use synthetic::{SYNTHETIC_CLASSES, SyntheticDataModule, SyntheticImages};
pub use transforms::{ColorJitter, Compose, Normalize, RandomCrop, RandomHorizontalFlip, Transform};

/// A data loader as the Trainer consumes it (Burn's, with worker threads).
pub type Loader<B> = Arc<dyn DataLoader<B>>;

/// What `setup` is called for, as Lightning's `stage` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupStage {
    /// `Trainer::fit` (train + validation data).
    Fit,
    /// `Trainer::validate`.
    Validate,
    /// `Trainer::test`.
    Test,
    /// `Trainer::predict`.
    Predict,
}

/// The data side of a run, as Lightning's `LightningDataModule`: download once in
/// `prepare_data`, build datasets in `setup`, hand out loaders.
pub trait DataModule {
    /// The batch type the loaders yield.
    type Batch: crate::Batch;

    /// Downloads or prepares data on disk. Called once per `fit`/`validate`/`test`/`predict`.
    fn prepare_data(&mut self) -> Result<()> {
        Ok(())
    }
    /// Builds the datasets a stage needs.
    fn setup(&mut self, stage: SetupStage) -> Result<()> {
        let _ = stage;
        Ok(())
    }
    /// Names of the classes, by label (for image captions and chart legends; `None`: numbered).
    fn class_names(&self) -> Option<Vec<String>> {
        None
    }
    /// The shuffled training loader.
    fn train_dataloader(&self) -> Result<Loader<Self::Batch>>;
    /// The validation loader (`None`: no validation).
    fn val_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(None)
    }
    /// The test loader (`None`: `Trainer::test` is an error).
    fn test_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(None)
    }
    /// The prediction loader (`None`: `Trainer::predict` is an error).
    fn predict_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(None)
    }
}

/// A boxed data module is one, so a program can choose its data at run time
/// (`Box<dyn DataModule<Batch = ClassificationBatch<4>>>`).
impl<D: DataModule + ?Sized> DataModule for Box<D> {
    type Batch = D::Batch;
    fn prepare_data(&mut self) -> Result<()> {
        (**self).prepare_data()
    }
    fn setup(&mut self, stage: SetupStage) -> Result<()> {
        (**self).setup(stage)
    }
    fn class_names(&self) -> Option<Vec<String>> {
        (**self).class_names()
    }
    fn train_dataloader(&self) -> Result<Loader<Self::Batch>> {
        (**self).train_dataloader()
    }
    fn val_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        (**self).val_dataloader()
    }
    fn test_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        (**self).test_dataloader()
    }
    fn predict_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        (**self).predict_dataloader()
    }
}

/// A data module's options as a `#[hyperparameters]` struct, which builds the module: what
/// `fulmen::cli` reads from a config file's `data:` section, as it reads the model's from `model:`.
pub trait DataConfig: crate::Hyperparameters {
    /// The data module these options build.
    type DataModule: DataModule;
    /// Builds the data module (nothing is read or downloaded yet: that is `prepare_data`/`setup`).
    fn build(&self) -> Result<Self::DataModule>;
}
