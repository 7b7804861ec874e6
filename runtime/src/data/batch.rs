//! Image items, their batcher (normalization on the host, one copy to the device) and batches.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::kind::Basic;
use burn::tensor::{Device, Float, FloatDType, Int, Tensor, TensorData};

use super::transforms::{Compose, Normalize, Transform};
use crate::module::{Batch, StepContext};

/// One image as stored: `C*H*W` bytes in channel-major order, and its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// Pixels, channel-major (`[C, H, W]`), 0..=255.
    pub pixels: Vec<u8>,
    /// Class index.
    pub label: usize,
}

/// Inputs and integer class targets of a classification batch: `Float` inputs (images
/// `[B, C, H, W]`, sequences `[B, C, L]`, vectors `[B, F]`) or `Int` token ids `[B, L]`.
#[derive(Debug, Clone)]
pub struct ClassificationBatch<const D: usize, K: Basic = Float> {
    /// Inputs, batch first.
    pub inputs: Tensor<D, K>,
    /// Class indices `[batch]`.
    pub targets: Tensor<1, Int>,
}

/// What a batch's inputs can be: `Float` values or `Int` token ids. It says how they take a
/// low precision, and how values held as `f32` on the host become them.
pub trait InputKind: Basic + Send + Sync + 'static {
    /// The inputs in `dtype` under a low precision (token ids stay integers).
    fn cast<const D: usize>(inputs: Tensor<D, Self>, dtype: FloatDType) -> Tensor<D, Self>;
    /// Host values (row-major, `shape`) as inputs on `device`.
    fn from_values<const D: usize>(values: Vec<f32>, shape: Vec<usize>, device: &Device) -> Tensor<D, Self>;
    /// Why these host values cannot be inputs of this kind, if they cannot.
    fn check_values(values: &[f32]) -> std::result::Result<(), String>;
    /// Token ids checked against a `vocab` on the device ([`StepContext::checked_tokens`];
    /// values pass as they are).
    fn checked<const D: usize>(ctx: &mut StepContext, inputs: Tensor<D, Self>, vocab: usize) -> Tensor<D, Self>;
}

impl InputKind for Float {
    fn cast<const D: usize>(inputs: Tensor<D>, dtype: FloatDType) -> Tensor<D> {
        crate::precision::cast(inputs, dtype.into())
    }
    fn from_values<const D: usize>(values: Vec<f32>, shape: Vec<usize>, device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), device)
    }
    fn check_values(_: &[f32]) -> std::result::Result<(), String> {
        Ok(())
    }
    fn checked<const D: usize>(_: &mut StepContext, inputs: Tensor<D>, _: usize) -> Tensor<D> {
        inputs
    }
}

/// Token ids are held as `f32` on the host, exact up to 2^24.
const LARGEST_EXACT_ID: f32 = 16_777_216.0;

impl InputKind for Int {
    fn cast<const D: usize>(inputs: Tensor<D, Int>, _: FloatDType) -> Tensor<D, Int> {
        inputs
    }
    fn from_values<const D: usize>(values: Vec<f32>, shape: Vec<usize>, device: &Device) -> Tensor<D, Int> {
        let ids: Vec<i64> = values.into_iter().map(|v| v as i64).collect();
        Tensor::from_data(TensorData::new(ids, shape), device)
    }
    fn check_values(values: &[f32]) -> std::result::Result<(), String> {
        match values.iter().position(|&v| v.fract() != 0.0 || !(0.0..=LARGEST_EXACT_ID).contains(&v)) {
            None => Ok(()),
            Some(i) => Err(format!("input value {} (at {i}) is not a token id: ids are whole numbers in 0..=2^24", values[i])),
        }
    }
    fn checked<const D: usize>(ctx: &mut StepContext, inputs: Tensor<D, Int>, vocab: usize) -> Tensor<D, Int> {
        ctx.checked_tokens(inputs, vocab)
    }
}

impl<const D: usize, K: InputKind> Batch for ClassificationBatch<D, K> {
    fn batch_size(&self) -> usize {
        self.targets.dims()[0]
    }
    fn cast_inputs(self, dtype: FloatDType) -> Self {
        ClassificationBatch { inputs: K::cast(self.inputs, dtype), targets: self.targets }
    }
}

/// A batch of images (as the model takes them) with class labels: what
/// [`ImagePredictionLogger::from_batch`](crate::ImagePredictionLogger::from_batch) needs of a
/// data module's batches. Implement it for your own batch type.
pub trait ImageBatch: Batch {
    /// The images `[N, C, H, W]`, as the model's `forward` takes them.
    fn images(&self) -> Tensor<4>;
    /// Their classes `[N]`.
    fn labels(&self) -> Tensor<1, Int>;
}

impl ImageBatch for ClassificationBatch<4> {
    fn images(&self) -> Tensor<4> {
        self.inputs.clone()
    }
    fn labels(&self) -> Tensor<1, Int> {
        self.targets.clone()
    }
}

/// Turns [`ImageItem`]s into a `[B, C, H, W]` batch normalized per channel: `(x/255 - mean) / std`.
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    shape: [usize; 3],
    normalize: Normalize,
}

impl ImageBatcher {
    /// A batcher for images of `shape` `[C, H, W]` with per-channel `mean` and `std`.
    pub fn new(shape: [usize; 3], mean: &[f32], std: &[f32]) -> Self {
        assert_eq!(mean.len(), shape[0], "one mean per channel");
        assert_eq!(std.len(), shape[0], "one std per channel");
        ImageBatcher { shape, normalize: Normalize::new(mean, std) }
    }

    /// Normalizes one image's pixels into `out`.
    pub fn normalize_into(&self, pixels: &[u8], out: &mut Vec<f32>) {
        self.normalize.extend(pixels, self.shape, out);
    }

    /// Undoes the normalization of one `[C, H, W]` image, back to bytes.
    pub fn denormalize(&self, values: &[f32]) -> Vec<u8> {
        self.normalize.invert(values, self.shape)
    }

    /// The image shape `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }
}

impl Batcher<ImageItem, ClassificationBatch<4>> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ClassificationBatch<4> {
        let [c, h, w] = self.shape;
        let mut pixels = Vec::with_capacity(items.len() * c * h * w);
        let mut labels = Vec::with_capacity(items.len());
        for item in &items {
            self.normalize_into(&item.pixels, &mut pixels);
            labels.push(item.label as i64);
        }
        let n = items.len();
        ClassificationBatch {
            inputs: Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device),
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

/// Images held in memory (shared, so splits cost nothing), viewed through an index list.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pixels: Arc<Vec<u8>>,
    labels: Arc<Vec<u8>>,
    indices: Arc<Vec<u32>>,
    image_len: usize,
}

impl ImageSet {
    /// All images of `pixels` (each `image_len` bytes) with their `labels`.
    pub fn new(pixels: Vec<u8>, labels: Vec<u8>, image_len: usize) -> Self {
        assert_eq!(pixels.len(), labels.len() * image_len, "one label per image");
        let indices = (0..labels.len() as u32).collect();
        ImageSet { pixels: Arc::new(pixels), labels: Arc::new(labels), indices: Arc::new(indices), image_len }
    }

    /// The subset at `indices` (positions in this set).
    pub fn select(&self, indices: &[usize]) -> Self {
        let indices = indices.iter().map(|&i| self.indices[i]).collect();
        ImageSet { indices: Arc::new(indices), ..self.clone() }
    }

    /// The item at `index`, if any.
    pub fn item(&self, index: usize) -> Option<ImageItem> {
        let i = *self.indices.get(index)? as usize;
        let start = i * self.image_len;
        Some(ImageItem { pixels: self.pixels[start..start + self.image_len].to_vec(), label: self.labels[i] as usize })
    }
}

impl Dataset<ImageItem> for ImageSet {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        self.item(index).ok_or_else(|| {
            let len = self.indices.len();
            burn::data::dataset::DatasetError::new(crate::Error::Data(format!("image index {index} is out of range 0..{len}")))
        })
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// The loader setters every image data module has (over its `options: LoaderOptions` and
/// `transforms: Compose` fields), written once.
macro_rules! loader_setters {
    () => {
        /// Images per batch (default 32).
        pub fn batch_size(mut self, batch_size: usize) -> Self {
            self.options.batch_size = batch_size;
            self
        }
        /// Loader worker threads (default 2; 0: load on the training thread).
        pub fn num_workers(mut self, n: usize) -> Self {
            self.options.num_workers = n;
            self
        }
        /// Transforms of the training images (default none); the standard recipe is
        /// [`Compose::crop_and_flip`]`(size)`: a random crop of the image padded by 4, flipped
        /// left to right half of the time. Validation and test images are not transformed.
        pub fn train_transforms(mut self, transforms: Compose) -> Self {
            self.transforms = transforms;
            self
        }
    };
}
pub(crate) use loader_setters;

/// Batch size, loader threads and shuffle seed, shared by the image data modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderOptions {
    /// Images per batch.
    pub batch_size: usize,
    /// Loader worker threads (0: load on the training thread).
    pub num_workers: usize,
    /// Seed of the training shuffle.
    pub seed: u64,
}

impl LoaderOptions {
    /// Checks the options.
    pub fn check(&self) -> crate::Result<()> {
        if self.batch_size == 0 {
            return Err(crate::Error::Config("batch_size must be at least 1".into()));
        }
        Ok(())
    }

    /// A loader over `dataset`: for training (`Some(transforms)`), reshuffled every epoch and
    /// transformed on the workers, both drawn from the seed; else in order, as stored.
    pub fn loader<D: Dataset<ImageItem> + 'static>(&self, batcher: ImageBatcher, dataset: D, train: Option<&Compose>) -> super::Loader<ClassificationBatch<4>> {
        let shape = batcher.shape();
        let loader = super::OrderedLoader::new(dataset, batcher, self.batch_size).num_workers(self.num_workers);
        match train {
            None => loader.into_loader(),
            Some(t) if t.is_empty() => loader.shuffle(self.seed).into_loader(),
            Some(t) => {
                let t = t.clone();
                let transform = move |item: ImageItem, rng: &mut crate::rng::SplitMix64| ImageItem { pixels: t.apply(item.pixels, shape, rng), ..item };
                loader.shuffle(self.seed).transform(self.seed, transform).into_loader()
            }
        }
    }
}
