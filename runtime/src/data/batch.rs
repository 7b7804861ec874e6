//! Image items, their batcher (normalization on the host, one copy to the device) and batches.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::module::Batch;

/// One image as stored: `C*H*W` bytes in channel-major order, and its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// Pixels, channel-major (`[C, H, W]`), 0..=255.
    pub pixels: Vec<u8>,
    /// Class index.
    pub label: usize,
}

/// Inputs and integer class targets of a classification batch.
#[derive(Debug, Clone)]
pub struct ClassificationBatch<const D: usize> {
    /// Inputs, batch first.
    pub inputs: Tensor<D>,
    /// Class indices `[batch]`.
    pub targets: Tensor<1, Int>,
}

impl<const D: usize> Batch for ClassificationBatch<D> {
    fn batch_size(&self) -> usize {
        self.targets.dims()[0]
    }
    fn cast_inputs(self, dtype: burn::tensor::FloatDType) -> Self {
        ClassificationBatch { inputs: crate::precision::cast(self.inputs, dtype.into()), targets: self.targets }
    }
}

/// Turns [`ImageItem`]s into a `[B, C, H, W]` batch normalized per channel: `(x/255 - mean) / std`.
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    shape: [usize; 3],
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl ImageBatcher {
    /// A batcher for images of `shape` `[C, H, W]` with per-channel `mean` and `std`.
    pub fn new(shape: [usize; 3], mean: &[f32], std: &[f32]) -> Self {
        assert_eq!(mean.len(), shape[0], "one mean per channel");
        assert_eq!(std.len(), shape[0], "one std per channel");
        ImageBatcher { shape, mean: mean.to_vec(), std: std.to_vec() }
    }

    /// Normalizes one image's pixels into `out`.
    pub fn normalize_into(&self, pixels: &[u8], out: &mut Vec<f32>) {
        let plane = self.shape[1] * self.shape[2];
        for (c, channel) in pixels.chunks_exact(plane).enumerate() {
            let (m, s) = (self.mean[c], self.std[c]);
            out.extend(channel.iter().map(|&p| (p as f32 / 255.0 - m) / s));
        }
    }

    /// Undoes the normalization of one `[C, H, W]` image, back to bytes.
    pub fn denormalize(&self, values: &[f32]) -> Vec<u8> {
        let plane = self.shape[1] * self.shape[2];
        values
            .chunks_exact(plane)
            .enumerate()
            .flat_map(|(c, channel)| {
                let (m, s) = (self.mean[c], self.std[c]);
                channel.iter().map(move |&v| ((v * s + m) * 255.0).round().clamp(0.0, 255.0) as u8)
            })
            .collect()
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

    /// A loader over `dataset`, shuffled (reshuffled every epoch) when `shuffle`.
    pub fn loader<D: Dataset<ImageItem> + 'static>(&self, batcher: ImageBatcher, dataset: D, shuffle: bool) -> super::Loader<ClassificationBatch<4>> {
        let loader = super::OrderedLoader::new(dataset, batcher, self.batch_size).num_workers(self.num_workers);
        if shuffle { loader.shuffle(self.seed).into_loader() } else { loader.into_loader() }
    }
}
