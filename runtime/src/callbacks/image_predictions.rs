//! `ImagePredictionLogger`: the tutorial's callback. After every validation epoch it classifies
//! a fixed set of validation images and logs them with "Pred: <class>, Label: <class>" captions
//! to every logger that takes images.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::Tensor;

use super::{Callback, TrainerView};
use crate::data::{ImageBatcher, ImageItem};
use crate::error::{Error, Result};
use crate::loggers::{Image, numbered_classes};
use crate::module::LightningModule;

/// Logs `samples` with the model's predictions after each validation epoch (not during the
/// sanity check), under `key` (default `examples`).
#[derive(Debug, Clone)]
pub struct ImagePredictionLogger {
    samples: Vec<ImageItem>,
    batcher: ImageBatcher,
    key: String,
    class_names: Option<Vec<String>>,
}

impl ImagePredictionLogger {
    /// Logs `samples` (e.g. `dm.val_samples(32)`), normalized for the model by `batcher`.
    pub fn new(samples: Vec<ImageItem>, batcher: ImageBatcher) -> Self {
        ImagePredictionLogger { samples, batcher, key: "examples".into(), class_names: None }
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
        let [channels, height, width] = self.batcher.shape();
        let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
        self.samples
            .iter()
            .zip(predicted)
            .map(|(item, &p)| {
                let plane = height * width;
                // Channel-major bytes to interleaved RGB (a grey image repeats its one channel).
                let rgb = (0..plane).flat_map(|i| (0..3).map(move |c| item.pixels[c.min(channels - 1) * plane + i])).collect();
                Ok(Image::from_rgb(width as u32, height as u32, rgb)?.with_caption(format!("Pred: {}, Label: {}", name(p), name(item.label))))
            })
            .collect()
    }
}

impl<M> Callback<M> for ImagePredictionLogger
where
    M: LightningModule<Input = Tensor<4>, Output = Tensor<2>>,
{
    fn on_validation_epoch_end(&mut self, trainer: &mut TrainerView<'_, M>) -> Result<()> {
        if trainer.state().sanity_checking || self.samples.is_empty() || !trainer.loggers.iter().any(|l| l.takes_images()) {
            return Ok(());
        }
        let precision = trainer.state().precision;
        let model = crate::precision::for_compute(trainer.module.valid(), precision);
        let device = model.devices().into_iter().next().unwrap_or_default();
        let batch = crate::precision::cast_batch(self.batcher.batch(self.samples.clone(), &device), precision);
        let n = self.samples.len();
        let predicted: Vec<i64> = model
            .forward(batch.inputs)
            .argmax(1)
            .reshape([n])
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .map_err(|e| Error::Callback { callback: "ImagePredictionLogger".into(), reason: format!("cannot read the predictions: {e:?}") })?;
        let predicted: Vec<usize> = predicted.into_iter().map(|p| p as usize).collect();
        let classes = predicted.iter().chain(self.samples.iter().map(|s| &s.label)).max().map_or(0, |m| m + 1);
        let names = self.class_names.clone().or_else(|| trainer.state().class_names.clone()).unwrap_or_else(|| numbered_classes(classes));
        let images = self.images(&predicted, &names)?;
        trainer.log_images(&self.key, &images)
    }
}
