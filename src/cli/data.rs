//! The `data:` sections of fulmen's own data modules: `#[hyperparameters]` structs that build
//! them, with torchvision's transforms as a list (`train_transforms: [{RandomCrop: {size: 32,
//! padding: 4}}, {RandomHorizontalFlip: {p: 0.5}}]`).

use fulmen_runtime::data::{ColorJitter, Compose, ImageFolderDataModule, RandomCrop, RandomHorizontalFlip};
use fulmen_runtime::{Cifar10DataModule, DataConfig, Error, Result, SyntheticDataModule};
use serde::{Deserialize, Serialize};

use crate::hyperparameters;

/// One training transform, by torchvision's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TransformSpec {
    /// A random `size × size` crop of the image padded by `padding` on every side.
    RandomCrop {
        /// The crop's side.
        size: usize,
        /// Zero padding added around the image first.
        #[serde(default)]
        padding: usize,
    },
    /// A left-right flip with probability `p`.
    RandomHorizontalFlip {
        /// The probability of a flip.
        #[serde(default = "half")]
        p: f64,
    },
    /// Brightness and contrast each scaled by a factor drawn from `[1 - x, 1 + x]`.
    ColorJitter {
        /// Brightness jitter (0: none).
        #[serde(default)]
        brightness: f64,
        /// Contrast jitter (0: none).
        #[serde(default)]
        contrast: f64,
    },
}

fn half() -> f64 {
    0.5
}

/// The transforms as a `Compose`, in order; `field` names the config key in errors.
pub fn compose(specs: &[TransformSpec], field: &str) -> Result<Compose> {
    let mut compose = Compose::new();
    for (i, spec) in specs.iter().enumerate() {
        let bad = |what: &str, value: f64, allowed: &str| Error::Hyperparameter {
            field: format!("{field}[{i}].{what}"),
            value: value.to_string(),
            reason: format!("must be {allowed}"),
        };
        compose = match *spec {
            TransformSpec::RandomCrop { size, padding } => {
                if size == 0 {
                    return Err(bad("size", 0.0, "at least 1"));
                }
                compose.then(RandomCrop::new(size).padding(padding))
            }
            TransformSpec::RandomHorizontalFlip { p } => {
                if !(0.0..=1.0).contains(&p) {
                    return Err(bad("p", p, "in 0.0..=1.0"));
                }
                compose.then(RandomHorizontalFlip::new(p))
            }
            TransformSpec::ColorJitter { brightness, contrast } => {
                for (what, value) in [("brightness", brightness), ("contrast", contrast)] {
                    if !(value.is_finite() && value >= 0.0) {
                        return Err(bad(what, value, "a finite number ≥ 0"));
                    }
                }
                compose.then(ColorJitter::new(brightness, contrast))
            }
        };
    }
    Ok(compose)
}

/// [`ImageFolderDataModule`]'s options.
#[hyperparameters]
pub struct ImageFolderConfig {
    /// The training folder: one subfolder of images per class.
    pub root: String,
    /// Images are resized so the shorter side is this, then centre-cropped to a square.
    #[hparam(default = 32, range = 1..)]
    pub image_size: usize,
    /// Read the images as one grey channel.
    #[hparam(default = false)]
    pub grayscale: bool,
    /// The share of the training folder held out for validation (0: none).
    #[hparam(default = 0.2, range = 0.0..1.0)]
    pub val_fraction: f64,
    /// A validation folder with the same class folders (instead of a held-out share).
    #[hparam(default = None)]
    pub val_dir: Option<String>,
    /// A test folder with the same class folders.
    #[hparam(default = None)]
    pub test_dir: Option<String>,
    /// Per-channel mean of the normalization (x/255 - mean) / std (null: 0.5 per channel).
    #[hparam(default = None)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel std of the normalization (null: 0.5 per channel).
    #[hparam(default = None)]
    pub std: Option<Vec<f32>>,
    /// Images per batch.
    #[hparam(default = 32, range = 1..)]
    pub batch_size: usize,
    /// Loader worker threads (0: load on the training thread).
    #[hparam(default = 2)]
    pub num_workers: usize,
    /// Seed of the split and of the training shuffle.
    #[hparam(default = 42)]
    pub seed: u64,
    /// Transforms of the training images, in order.
    #[hparam(default = Vec::new())]
    pub train_transforms: Vec<TransformSpec>,
}

impl DataConfig for ImageFolderConfig {
    type DataModule = ImageFolderDataModule;
    fn build(&self) -> Result<ImageFolderDataModule> {
        let mut dm = ImageFolderDataModule::new(&self.root)
            .image_size(self.image_size)
            .val_fraction(self.val_fraction)
            .batch_size(self.batch_size)
            .num_workers(self.num_workers)
            .seed(self.seed)
            .train_transforms(compose(&self.train_transforms, "train_transforms")?);
        if self.grayscale {
            dm = dm.grayscale();
        }
        match (&self.mean, &self.std) {
            (Some(mean), Some(std)) => dm = dm.normalize(mean, std),
            (None, None) => {}
            _ => {
                return Err(Error::Hyperparameter {
                    field: "mean".into(),
                    value: format!("{:?}", self.mean),
                    reason: "mean and std go together: set both or neither".into(),
                });
            }
        }
        if let Some(dir) = &self.val_dir {
            dm = dm.val_dir(dir);
        }
        if let Some(dir) = &self.test_dir {
            dm = dm.test_dir(dir);
        }
        Ok(dm)
    }
}

/// [`SyntheticDataModule`]'s options: CIFAR-10-shaped images of ten kinds of coloured shapes.
#[hyperparameters]
pub struct SyntheticConfig {
    /// Training images.
    #[hparam(default = 9_000, range = 1..)]
    pub train_size: usize,
    /// Validation images.
    #[hparam(default = 1_000)]
    pub val_size: usize,
    /// Test images.
    #[hparam(default = 2_000)]
    pub test_size: usize,
    /// Images per batch.
    #[hparam(default = 32, range = 1..)]
    pub batch_size: usize,
    /// Loader worker threads (0: load on the training thread).
    #[hparam(default = 2)]
    pub num_workers: usize,
    /// Seed of the images and of the training shuffle.
    #[hparam(default = 42)]
    pub seed: u64,
    /// Transforms of the training images, in order.
    #[hparam(default = Vec::new())]
    pub train_transforms: Vec<TransformSpec>,
}

impl DataConfig for SyntheticConfig {
    type DataModule = SyntheticDataModule;
    fn build(&self) -> Result<SyntheticDataModule> {
        Ok(SyntheticDataModule::new(self.seed)
            .sizes(self.train_size, self.val_size, self.test_size)
            .batch_size(self.batch_size)
            .num_workers(self.num_workers)
            .train_transforms(compose(&self.train_transforms, "train_transforms")?))
    }
}

/// [`Cifar10DataModule`]'s options.
#[hyperparameters]
pub struct Cifar10Config {
    /// Where CIFAR-10 is downloaded and extracted.
    #[hparam(default = "./data")]
    pub data_dir: String,
    /// A mirror of cifar-10-binary.tar.gz (null: FULMEN_CIFAR10_URL, else the official URL).
    #[hparam(default = None)]
    pub url: Option<String>,
    /// Training images held out for validation.
    #[hparam(default = 5_000)]
    pub val_size: usize,
    /// Images per batch.
    #[hparam(default = 32, range = 1..)]
    pub batch_size: usize,
    /// Loader worker threads (0: load on the training thread).
    #[hparam(default = 2)]
    pub num_workers: usize,
    /// Seed of the split and of the training shuffle.
    #[hparam(default = 42)]
    pub seed: u64,
    /// Transforms of the training images, in order (the standard recipe: RandomCrop size 32
    /// padding 4, then RandomHorizontalFlip).
    #[hparam(default = Vec::new())]
    pub train_transforms: Vec<TransformSpec>,
}

impl DataConfig for Cifar10Config {
    type DataModule = Cifar10DataModule;
    fn build(&self) -> Result<Cifar10DataModule> {
        let dm = Cifar10DataModule::new(&self.data_dir)
            .val_size(self.val_size)
            .batch_size(self.batch_size)
            .num_workers(self.num_workers)
            .seed(self.seed)
            .train_transforms(compose(&self.train_transforms, "train_transforms")?);
        Ok(match &self.url {
            Some(url) => dm.url(url),
            None => dm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fulmen_runtime::Hyperparameters;

    /// The configs' defaults are the modules' own (two sources, kept equal by this test).
    #[test]
    fn defaults_build_the_default_modules() {
        let folder = ImageFolderConfig::new("imgs".into()).build().unwrap();
        assert_eq!(format!("{folder:?}"), format!("{:?}", ImageFolderDataModule::new("imgs")));
        let synthetic = SyntheticConfig::from_yaml_str("{}").unwrap().build().unwrap();
        assert_eq!(format!("{synthetic:?}"), format!("{:?}", SyntheticDataModule::new(42)));
        let cifar = Cifar10Config::from_yaml_str("{}").unwrap().build().unwrap();
        assert_eq!(format!("{cifar:?}"), format!("{:?}", Cifar10DataModule::new("./data")));
    }

    #[test]
    fn transforms_from_yaml_and_their_errors() {
        let text = "root: x\ntrain_transforms:\n  - RandomCrop: {size: 32, padding: 4}\n  - RandomHorizontalFlip: {}\n  - ColorJitter: {brightness: 0.2}\n";
        let config = ImageFolderConfig::from_yaml_str(text).unwrap();
        assert_eq!(
            config.train_transforms,
            [
                TransformSpec::RandomCrop { size: 32, padding: 4 },
                TransformSpec::RandomHorizontalFlip { p: 0.5 },
                TransformSpec::ColorJitter { brightness: 0.2, contrast: 0.0 }
            ]
        );
        let compose = compose(&config.train_transforms, "train_transforms").unwrap();
        assert_eq!(format!("{compose:?}"), format!("{:?}", Compose::crop_and_flip(32).then(ColorJitter::new(0.2, 0.0))));
        let err = compose_err(&[TransformSpec::RandomHorizontalFlip { p: 1.5 }]);
        assert!(err.contains("train_transforms[0].p") && err.contains("0.0..=1.0"), "{err}");
        let err = compose_err(&[TransformSpec::RandomCrop { size: 8, padding: 0 }, TransformSpec::ColorJitter { brightness: -1.0, contrast: 0.0 }]);
        assert!(err.contains("train_transforms[1].brightness"), "{err}");
        let err = ImageFolderConfig::from_yaml_str("root: x\ntrain_transforms: [{RandomFlip: {}}]").unwrap_err().to_string();
        assert!(err.contains("RandomFlip") && err.contains("RandomHorizontalFlip"), "{err}");
    }

    fn compose_err(specs: &[TransformSpec]) -> String {
        compose(specs, "train_transforms").unwrap_err().to_string()
    }
}
