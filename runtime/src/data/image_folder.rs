//! Images in class folders, as torchvision's `ImageFolder`: `root/<class>/<image>`, PNG or
//! JPEG, classes named and numbered by their folders in sorted order, decoded (resized and
//! centre-cropped) on the loader's workers, with a seeded train/validation split.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};

use super::batch::{ClassificationBatch, ImageBatcher, ImageItem, LoaderOptions};
use super::transforms::Compose;
use super::{DataModule, Loader, SetupStage};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// The file extensions read as images.
const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "jpe"];

/// One folder of class folders: the images' paths and classes, the class names.
#[derive(Debug, Clone)]
struct Folder {
    files: Arc<Vec<(PathBuf, usize)>>,
    classes: Vec<String>,
}

impl Folder {
    /// Lists `root`'s class folders (sorted; hidden entries skipped) and their images. An empty
    /// class folder, a file that is not an image, or one whose header cannot be read is an error
    /// naming it (all of them at once).
    fn scan(root: &Path, classes: Option<&[String]>) -> Result<Folder> {
        let read = |dir: &Path| -> Result<Vec<PathBuf>> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(Error::io("cannot read the image folder", dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .collect();
            entries.sort();
            Ok(entries)
        };
        let entries = read(root)?;
        let stray: Vec<&PathBuf> = entries.iter().filter(|p| !p.is_dir()).collect();
        if !stray.is_empty() {
            return Err(Error::Data(format!(
                "{} holds files beside its class folders ({}); an image folder holds one folder per class: move them into one",
                root.display(),
                list(&stray)
            )));
        }
        let names: Vec<String> = entries.iter().map(|p| p.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned())).collect();
        if names.is_empty() {
            return Err(Error::Data(format!("{} has no class folders; put the images of each class in a folder of its own under it", root.display())));
        }
        if let Some(expected) = classes
            && names != expected
        {
            return Err(Error::Data(format!(
                "{} has the classes [{}], the training folder [{}]; give both the same class folders",
                root.display(),
                names.join(", "),
                expected.join(", ")
            )));
        }
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for (class, dir) in entries.iter().enumerate() {
            let images: Vec<PathBuf> = read(dir)?;
            if images.is_empty() {
                problems.push(format!("the class folder {} is empty (remove it, or add its images)", dir.display()));
            }
            for path in images {
                let extension = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
                if !EXTENSIONS.contains(&extension.as_str()) {
                    problems.push(format!("{} is not a PNG or JPEG image (by its name); remove it or convert it", path.display()));
                } else if let Err(e) = image::image_dimensions(&path) {
                    problems.push(format!("{} cannot be read as an image: {e}", path.display()));
                } else {
                    files.push((path, class));
                }
            }
        }
        if !problems.is_empty() {
            let more = if problems.len() > 10 { format!(" (and {} more)", problems.len() - 10) } else { String::new() };
            return Err(Error::Data(format!("image folder {}: {}{more}", root.display(), problems[..problems.len().min(10)].join("; "))));
        }
        Ok(Folder { files: Arc::new(files), classes: names })
    }
}

fn list(paths: &[&PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().take(3).map(|p| p.display().to_string()).collect();
    if paths.len() > 3 { format!("{}, and {} more", shown.join(", "), paths.len() - 3) } else { shown.join(", ") }
}

/// Some images of a [`Folder`], decoded when the loader asks for them.
#[derive(Debug, Clone)]
pub struct FolderImages {
    files: Arc<Vec<(PathBuf, usize)>>,
    indices: Arc<Vec<usize>>,
    shape: [usize; 3],
}

impl FolderImages {
    /// Decodes image `index`: resized so its shorter side is the target size (bilinear, as
    /// torchvision's `Resize`), centre-cropped to it, as RGB or grey bytes, channel-major.
    fn decode(&self, index: usize) -> Result<ImageItem> {
        let &i = self.indices.get(index).ok_or_else(|| Error::Data(format!("image {index} is out of range 0..{}", self.indices.len())))?;
        let (path, label) = &self.files[i];
        let [channels, height, width] = self.shape;
        let image = image::open(path).map_err(|e| Error::Data(format!("{} cannot be decoded: {e}", path.display())))?;
        let (w, h) = (image.width() as f64, image.height() as f64);
        let scale = (width as f64 / w).max(height as f64 / h);
        let (rw, rh) = (((w * scale).round() as u32).max(width as u32), ((h * scale).round() as u32).max(height as u32));
        let resized = image.resize_exact(rw, rh, image::imageops::FilterType::Triangle);
        let cropped = resized.crop_imm((rw - width as u32) / 2, (rh - height as u32) / 2, width as u32, height as u32);
        let interleaved = if channels == 1 { cropped.to_luma8().into_raw() } else { cropped.to_rgb8().into_raw() };
        // Channel-major, as the batcher and the transforms take it.
        let plane = height * width;
        let mut pixels = vec![0u8; channels * plane];
        for (p, chunk) in interleaved.chunks_exact(channels).enumerate() {
            for (c, &v) in chunk.iter().enumerate() {
                pixels[c * plane + p] = v;
            }
        }
        Ok(ImageItem { pixels, label: *label })
    }
}

impl Dataset<ImageItem> for FolderImages {
    fn get(&self, index: usize) -> std::result::Result<ImageItem, DatasetError> {
        self.decode(index).map_err(DatasetError::new)
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// Torchvision's `ImageFolder` as a data module: training images in `root/<class>/`, a seeded
/// share of them held out for validation (or a folder of its own), an optional test folder.
#[derive(Debug, Clone)]
pub struct ImageFolderDataModule {
    root: PathBuf,
    val_root: Option<PathBuf>,
    test_root: Option<PathBuf>,
    val_fraction: f64,
    shape: [usize; 3],
    mean: Vec<f32>,
    std: Vec<f32>,
    options: LoaderOptions,
    transforms: Compose,
    splits: Option<Splits>,
}

#[derive(Debug, Clone)]
struct Splits {
    classes: Vec<String>,
    train: FolderImages,
    val: Option<FolderImages>,
    test: Option<FolderImages>,
}

impl ImageFolderDataModule {
    /// Images under `root/<class>/`, 32×32 RGB, a fifth held out for validation, normalized
    /// with mean and std 0.5, batch size 32, 2 loader workers, seed 42.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ImageFolderDataModule {
            root: root.into(),
            val_root: None,
            test_root: None,
            val_fraction: 0.2,
            shape: [3, 32, 32],
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
            options: LoaderOptions { batch_size: 32, num_workers: 2, seed: 42 },
            transforms: Compose::new(),
            splits: None,
        }
    }
    /// Resizes every image so its shorter side is `size`, then crops its centre to
    /// `size × size` (torchvision's `Resize(size)` + `CenterCrop(size)`).
    pub fn image_size(mut self, size: usize) -> Self {
        self.shape = [self.shape[0], size, size];
        self
    }
    /// Reads the images as one grey channel (mean and std become one value each).
    pub fn grayscale(mut self) -> Self {
        self.shape[0] = 1;
        self.mean.truncate(1);
        self.std.truncate(1);
        self
    }
    /// Per-channel normalization `(x/255 - mean) / std` (default 0.5, 0.5).
    pub fn normalize(mut self, mean: &[f32], std: &[f32]) -> Self {
        self.mean = mean.to_vec();
        self.std = std.to_vec();
        self
    }
    /// The share of the training folder held out for validation (default 0.2; 0: none).
    pub fn val_fraction(mut self, fraction: f64) -> Self {
        self.val_fraction = fraction;
        self
    }
    /// Validates on a folder of its own (same class folders) instead of a held-out share.
    pub fn val_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.val_root = Some(dir.into());
        self
    }
    /// Tests (and predicts) on a folder with the same class folders.
    pub fn test_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.test_root = Some(dir.into());
        self
    }
    super::batch::loader_setters!();
    /// The seed of the split and of the training shuffle (default 42).
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self
    }
    /// The batcher (this module's normalization).
    pub fn batcher(&self) -> ImageBatcher {
        ImageBatcher::new(self.shape, &self.mean, &self.std)
    }
    /// The class names, by folder (after `setup`).
    pub fn classes(&self) -> Option<&[String]> {
        self.splits.as_ref().map(|s| s.classes.as_slice())
    }
    /// The first `n` validation images, decoded, for an image-prediction callback (after `setup`).
    pub fn val_samples(&self, n: usize) -> Result<Vec<ImageItem>> {
        let splits = self.splits.as_ref().ok_or_else(|| Error::Data("call setup before val_samples".into()))?;
        let val = splits.val.as_ref().ok_or_else(|| Error::Data("this image folder has no validation images (val_fraction 0, no val_dir)".into()))?;
        (0..n.min(val.len())).map(|i| val.decode(i)).collect()
    }

    fn check(&self) -> Result<()> {
        self.options.check()?;
        let [c, h, _] = self.shape;
        if h == 0 {
            return Err(Error::Config("image_size must be at least 1".into()));
        }
        if self.mean.len() != c || self.std.len() != c {
            return Err(Error::Config(format!("normalize needs one mean and one std per channel ({c}), got {} and {}", self.mean.len(), self.std.len())));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Config(format!("normalize: std {s} must be positive and finite")));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(Error::Config(format!("val_fraction = {} must be in 0.0..1.0", self.val_fraction)));
        }
        self.transforms.check(self.shape, self.shape)
    }

    fn images(&self, folder: &Folder, indices: Vec<usize>) -> FolderImages {
        FolderImages { files: folder.files.clone(), indices: Arc::new(indices), shape: self.shape }
    }

    fn load(&self) -> Result<Splits> {
        let train = Folder::scan(&self.root, None)?;
        let n = train.files.len();
        let mut order: Vec<usize> = (0..n).collect();
        let (train_set, val) = match &self.val_root {
            Some(dir) => {
                let val = Folder::scan(dir, Some(&train.classes))?;
                (self.images(&train, order), Some(self.images(&val, (0..val.files.len()).collect())))
            }
            None if self.val_fraction > 0.0 => {
                if n < 2 {
                    return Err(Error::Data(format!("{} has {n} image; a validation share needs at least 2 (or val_fraction(0.0))", self.root.display())));
                }
                SplitMix64::new(self.options.seed).shuffle(&mut order);
                let held = ((n as f64 * self.val_fraction).round() as usize).clamp(1, n - 1);
                let mut val_indices = order.split_off(n - held);
                val_indices.sort();
                order.sort();
                (self.images(&train, order), Some(self.images(&train, val_indices)))
            }
            None => (self.images(&train, order), None),
        };
        let test = match &self.test_root {
            Some(dir) => {
                let test = Folder::scan(dir, Some(&train.classes))?;
                Some(self.images(&test, (0..test.files.len()).collect()))
            }
            None => None,
        };
        Ok(Splits { classes: train.classes, train: train_set, val, test })
    }

    fn loader(&self, set: &FolderImages, train: bool) -> Loader<ClassificationBatch<4>> {
        self.options.loader(self.batcher(), set.clone(), train.then_some(&self.transforms))
    }

    fn splits(&self) -> Result<&Splits> {
        self.splits.as_ref().ok_or_else(|| Error::Data("the image folder is not set up: the Trainer calls setup first".into()))
    }
}

impl DataModule for ImageFolderDataModule {
    type Batch = ClassificationBatch<4>;

    /// Scans the folders once (a later stage reuses the splits).
    fn setup(&mut self, _stage: SetupStage) -> Result<()> {
        self.check()?;
        if self.splits.is_none() {
            self.splits = Some(self.load()?);
        }
        Ok(())
    }
    fn class_names(&self) -> Option<Vec<String>> {
        self.classes().map(<[String]>::to_vec)
    }
    fn train_dataloader(&self) -> Result<Loader<Self::Batch>> {
        Ok(self.loader(&self.splits()?.train, true))
    }
    fn val_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(self.splits()?.val.as_ref().map(|v| self.loader(v, false)))
    }
    fn test_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(self.splits()?.test.as_ref().map(|t| self.loader(t, false)))
    }
    fn predict_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        self.test_dataloader()
    }
}
