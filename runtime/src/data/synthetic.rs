//! A seeded, learnable stand-in for CIFAR-10: ten classes of 3x32x32 images (five shapes: square,
//! ring, horizontal bar, vertical bar, diagonal cross; in two colours), at random positions and
//! sizes on noisy backgrounds, generated on the fly.

use burn::data::dataset::{Dataset, DatasetError};

use rayon::prelude::*;

use super::batch::{ClassificationBatch, ImageBatcher, ImageItem, ImageSet, LoaderOptions};
use super::transforms::Compose;
use super::{DataModule, Loader, SetupStage};
use crate::error::Result;
use crate::rng::SplitMix64;

/// Class names of [`SyntheticImages`], by class index.
pub const SYNTHETIC_CLASSES: [&str; 10] =
    ["red square", "red ring", "red hbar", "red vbar", "red cross", "blue square", "blue ring", "blue hbar", "blue vbar", "blue cross"];

const SIDE: usize = 32;

/// `len` images, each a pure function of `(seed, index)`: the same seed gives the same dataset.
#[derive(Debug, Clone)]
pub struct SyntheticImages {
    len: usize,
    seed: u64,
}

impl SyntheticImages {
    /// A dataset of `len` images drawn from `seed`.
    pub fn new(len: usize, seed: u64) -> Self {
        SyntheticImages { len, seed }
    }

    /// Generates image `index` (classes cycle with a seeded offset so every class is present).
    pub fn image(&self, index: usize) -> ImageItem {
        let mut rng = SplitMix64::new(self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let label = (index + (self.seed % 10) as usize) % 10;
        let (shape, blue) = (label % 5, label >= 5);
        let cx = 16.0 + rng.uniform(-5.0, 5.0);
        let cy = 16.0 + rng.uniform(-5.0, 5.0);
        let r = rng.uniform(7.0, 10.0);
        let fg = if blue {
            [rng.uniform(20.0, 80.0), rng.uniform(60.0, 130.0), rng.uniform(190.0, 250.0)]
        } else {
            [rng.uniform(190.0, 250.0), rng.uniform(40.0, 110.0), rng.uniform(20.0, 80.0)]
        };
        let gray = rng.uniform(20.0, 110.0);
        let bg = [gray + rng.uniform(-12.0, 12.0), gray + rng.uniform(-12.0, 12.0), gray + rng.uniform(-12.0, 12.0)];
        let mut pixels = vec![0u8; 3 * SIDE * SIDE];
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let dist = (dx * dx + dy * dy).sqrt();
                let inside = match shape {
                    0 => dx.abs() <= r * 0.8 && dy.abs() <= r * 0.8,
                    1 => (dist - r * 0.75).abs() <= 1.6,
                    2 => dy.abs() <= 2.0 && dx.abs() <= r * 1.3,
                    3 => dx.abs() <= 2.0 && dy.abs() <= r * 1.3,
                    _ => ((dx - dy).abs() <= 2.2 || (dx + dy).abs() <= 2.2) && dx.abs() <= r && dy.abs() <= r,
                };
                let base = if inside { fg } else { bg };
                for c in 0..3 {
                    let v = base[c] + rng.uniform(-20.0, 20.0);
                    pixels[c * SIDE * SIDE + y * SIDE + x] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        ImageItem { pixels, label }
    }
}

impl Dataset<ImageItem> for SyntheticImages {
    fn get(&self, index: usize) -> std::result::Result<ImageItem, DatasetError> {
        if index >= self.len {
            let err = crate::Error::Data(format!("synthetic image index {index} is out of range 0..{}", self.len));
            return Err(DatasetError::new(err));
        }
        Ok(self.image(index))
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// A [`DataModule`] over [`SyntheticImages`], laid out like [`Cifar10DataModule`](super::Cifar10DataModule):
/// the same shapes, normalization and loaders, no download.
#[derive(Debug, Clone)]
pub struct SyntheticDataModule {
    sizes: [usize; 3],
    options: LoaderOptions,
    transforms: Compose,
    in_memory: bool,
    /// The three splits, generated at the first `setup` when `in_memory`.
    stored: Option<[ImageSet; 3]>,
}

impl SyntheticDataModule {
    /// 9,000 training, 1,000 validation and 2,000 test images from `seed`, batch size 32.
    pub fn new(seed: u64) -> Self {
        let options = LoaderOptions { batch_size: 32, num_workers: 2, seed };
        SyntheticDataModule { sizes: [9_000, 1_000, 2_000], options, transforms: Compose::new(), in_memory: false, stored: None }
    }
    /// Sets the train/validation/test sizes.
    pub fn sizes(mut self, train: usize, val: usize, test: usize) -> Self {
        self.sizes = [train, val, test];
        self.stored = None;
        self
    }
    /// Generates every image once, at `setup`, and serves them from memory (3 KB each), as a
    /// data set of tensors held in memory would; by default each image is drawn when a loader
    /// worker asks for it. The images are the same either way.
    pub fn in_memory(mut self, in_memory: bool) -> Self {
        self.in_memory = in_memory;
        self
    }
    super::batch::loader_setters!();
    /// The batcher (mean/std 0.5 per channel, as the tutorial's transform).
    pub fn batcher(&self) -> ImageBatcher {
        ImageBatcher::new([3, SIDE, SIDE], &[0.5; 3], &[0.5; 3])
    }
    /// The first `n` validation images, as the tutorial's `val_samples`.
    pub fn val_samples(&self, n: usize) -> Vec<ImageItem> {
        let set = self.split(1);
        (0..n.min(set.len)).map(|i| set.image(i)).collect()
    }

    fn split(&self, which: usize) -> SyntheticImages {
        let seed = self.options.seed.wrapping_mul(31).wrapping_add(which as u64 + 1);
        SyntheticImages::new(self.sizes[which], seed)
    }

    fn loader(&self, which: usize) -> Loader<ClassificationBatch<4>> {
        let train = (which == 0).then_some(&self.transforms);
        match &self.stored {
            Some(sets) => self.options.loader(self.batcher(), sets[which].clone(), train),
            None => self.options.loader(self.batcher(), self.split(which), train),
        }
    }

    /// Split `which`, every image generated (in parallel) and stored.
    fn store(&self, which: usize) -> ImageSet {
        let split = self.split(which);
        let items: Vec<ImageItem> = (0..split.len).into_par_iter().map(|i| split.image(i)).collect();
        let labels = items.iter().map(|item| item.label as u8).collect();
        ImageSet::new(items.into_iter().flat_map(|item| item.pixels).collect(), labels, 3 * SIDE * SIDE)
    }
}

impl DataModule for SyntheticDataModule {
    type Batch = ClassificationBatch<4>;

    fn setup(&mut self, _stage: SetupStage) -> Result<()> {
        self.options.check()?;
        self.transforms.check([3, SIDE, SIDE], [3, SIDE, SIDE])?;
        if self.in_memory && self.stored.is_none() {
            self.stored = Some([0, 1, 2].map(|which| self.store(which)));
        }
        Ok(())
    }
    fn class_names(&self) -> Option<Vec<String>> {
        Some(SYNTHETIC_CLASSES.iter().map(|s| s.to_string()).collect())
    }
    fn train_dataloader(&self) -> Result<Loader<Self::Batch>> {
        Ok(self.loader(0))
    }
    fn val_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(Some(self.loader(1)))
    }
    fn test_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(Some(self.loader(2)))
    }
    fn predict_dataloader(&self) -> Result<Option<Loader<Self::Batch>>> {
        Ok(Some(self.loader(2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(loader: Loader<ClassificationBatch<4>>) -> Vec<(Vec<f32>, Vec<i64>)> {
        loader
            .iter()
            .map(|b| {
                let b = b.expect("batch");
                (b.inputs.to_data().try_to_vec::<f32>().expect("f32"), b.targets.to_data().convert::<i64>().try_to_vec::<i64>().expect("i64"))
            })
            .collect()
    }

    /// Stored images are the generated ones: every split serves the same batches in the same order.
    #[test]
    fn in_memory_serves_the_images_drawn_on_the_fly() {
        let make = |in_memory| {
            let mut dm = SyntheticDataModule::new(3).sizes(40, 12, 9).batch_size(8).in_memory(in_memory);
            dm.setup(SetupStage::Fit).expect("setup");
            dm
        };
        let (fly, stored) = (make(false), make(true));
        assert!(stored.stored.is_some() && fly.stored.is_none());
        assert_eq!(epoch(stored.train_dataloader().unwrap()), epoch(fly.train_dataloader().unwrap()));
        assert_eq!(epoch(stored.val_dataloader().unwrap().unwrap()), epoch(fly.val_dataloader().unwrap().unwrap()));
        assert_eq!(epoch(stored.test_dataloader().unwrap().unwrap()), epoch(fly.test_dataloader().unwrap().unwrap()));
    }
}
