//! `ImagePredictionLogger`: the tutorial's callback. After every validation epoch it classifies
//! a fixed set of validation images and logs them with "Pred: <class>, Label: <class>" captions
//! to every logger that takes images.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Tensor};

use super::{Callback, TrainerView};
use crate::data::{ImageBatch, ImageBatcher, ImageItem};
use crate::error::{Error, Result};
use crate::loggers::{Image, numbered_classes};
use crate::module::LightningModule;

/// Logs a fixed set of images with the model's predictions after each validation epoch (not
/// during the sanity check), under `key` (default `examples`).
#[derive(Debug, Clone)]
pub struct ImagePredictionLogger {
    /// The images as the model takes them `[N, C, H, W]` (`None`: no samples).
    inputs: Option<Tensor<4>>,
    labels: Vec<usize>,
    /// The images as people see them: width, height, interleaved RGB bytes.
    pictures: Vec<(u32, u32, Vec<u8>)>,
    key: String,
    class_names: Option<Vec<String>>,
}

impl ImagePredictionLogger {
    /// Logs fulmen's image `samples` (e.g. `dm.val_samples(32)`), normalized for the model by
    /// `batcher` and shown as stored.
    pub fn new(samples: Vec<ImageItem>, batcher: ImageBatcher) -> Self {
        let [channels, height, width] = batcher.shape();
        let plane = height * width;
        // Channel-major bytes to interleaved RGB (a grey image repeats its one channel).
        let pictures = samples
            .iter()
            .map(|item| (width as u32, height as u32, (0..plane).flat_map(|i| (0..3).map(move |c| item.pixels[c.min(channels - 1) * plane + i])).collect()))
            .collect();
        let labels = samples.iter().map(|s| s.label).collect();
        let inputs = (!samples.is_empty()).then(|| batcher.batch(samples, &Device::flex()).inputs);
        Self::from_parts(inputs, labels, pictures)
    }

    /// Logs the first `n` images of `batch`, any batch of images with labels (say, the first
    /// batch of your validation loader). They are shown rescaled, each from its darkest to its
    /// brightest value.
    pub fn from_batch(batch: &impl ImageBatch, n: usize) -> Result<Self> {
        let images = batch.images();
        let [count, channels, height, width] = images.dims();
        let n = n.min(count);
        let fail = |what: &str, e: String| Error::Callback { callback: "ImagePredictionLogger".into(), reason: format!("cannot read the batch's {what}: {e}") };
        let inputs = images.narrow(0, 0, n);
        let values: Vec<f32> = inputs.clone().into_data().convert::<f32>().try_to_vec().map_err(|e| fail("images", format!("{e:?}")))?;
        let labels: Vec<i64> = batch.labels().narrow(0, 0, n).into_data().convert::<i64>().try_to_vec().map_err(|e| fail("labels", format!("{e:?}")))?;
        let plane = height * width;
        let pictures = values
            .chunks_exact(channels * plane)
            .map(|image| {
                let (low, high) = image.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
                let byte = |v: f32| if high > low { ((v - low) / (high - low) * 255.0).round() as u8 } else { 128 };
                (width as u32, height as u32, (0..plane).flat_map(|i| (0..3).map(move |c| byte(image[c.min(channels - 1) * plane + i]))).collect())
            })
            .collect();
        let inputs = (n > 0).then_some(inputs);
        Ok(Self::from_parts(inputs, labels.into_iter().map(|l| l.max(0) as usize).collect(), pictures))
    }

    fn from_parts(inputs: Option<Tensor<4>>, labels: Vec<usize>, pictures: Vec<(u32, u32, Vec<u8>)>) -> Self {
        ImagePredictionLogger { inputs, labels, pictures, key: "examples".into(), class_names: None }
    }

    /// The key the images are logged under.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Names for the captions (default: the data module's `class_names`, else numbers).
    pub fn class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = Some(names);
        self
    }

    /// The captioned images for predicted classes `predicted`.
    pub fn images(&self, predicted: &[usize], names: &[String]) -> Result<Vec<Image>> {
        let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
        self.pictures
            .iter()
            .zip(&self.labels)
            .zip(predicted)
            .map(|(((width, height, rgb), &label), &p)| {
                Ok(Image::from_rgb(*width, *height, rgb.clone())?.with_caption(format!("Pred: {}, Label: {}", name(p), name(label))))
            })
            .collect()
    }
}

impl<M> Callback<M> for ImagePredictionLogger
where
    M: LightningModule<Input = Tensor<4>, Output = Tensor<2>>,
{
    fn on_validation_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        let Some(inputs) = &self.inputs else { return Ok(()) };
        if trainer.state().sanity_checking || !trainer.loggers.iter().any(|l| l.takes_images()) {
            return Ok(());
        }
        let precision = trainer.state().precision;
        let model = crate::precision::for_compute(trainer.module.valid(), precision);
        let device = model.devices().into_iter().next().unwrap_or_default();
        let inputs = crate::precision::cast(inputs.clone().to_device(&device), precision.compute_dtype().into());
        let n = self.labels.len();
        let predicted: Vec<i64> = model
            .forward(inputs)
            .argmax(1)
            .reshape([n])
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .map_err(|e| Error::Callback { callback: "ImagePredictionLogger".into(), reason: format!("cannot read the predictions: {e:?}") })?;
        let predicted: Vec<usize> = predicted.into_iter().map(|p| p as usize).collect();
        let classes = predicted.iter().chain(&self.labels).max().map_or(0, |m| m + 1);
        let names = self.class_names.clone().or_else(|| trainer.state().class_names.clone()).unwrap_or_else(|| numbered_classes(classes));
        let images = self.images(&predicted, &names)?;
        trainer.log_images(&self.key, &images)
    }
}
