//! Image transforms as torchvision names them, on channel-major `[C, H, W]` bytes: `RandomCrop`
//! (with padding), `RandomHorizontalFlip`, `ColorJitter` (brightness, contrast), chained by
//! `Compose`, and `Normalize`, which the batcher applies when it turns bytes into floats.
//!
//! A loader applies the training transforms on its workers with a generator drawn from
//! `(seed, epoch, item index)` ([`item_rng`]): an item gets the same augmentation in a resumed
//! run as in the full one, whatever the batch size or the number of workers.

use std::fmt::Debug;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// One step of a transform pipeline.
pub trait Transform: Debug + Send + Sync {
    /// The shape this transform makes of an input of `shape` (`[C, H, W]`), or why it cannot
    /// take such an input.
    fn output_shape(&self, shape: [usize; 3]) -> Result<[usize; 3]>;
    /// Transforms `pixels` (channel-major, of `shape`, checked by `output_shape`), drawing any
    /// randomness from `rng`.
    fn apply(&self, pixels: Vec<u8>, shape: [usize; 3], rng: &mut SplitMix64) -> Vec<u8>;
}

/// The generator of the transforms of item `index` in `epoch` of a loader seeded with `seed`.
pub fn item_rng(seed: u64, epoch: u64, index: usize) -> SplitMix64 {
    let mut mix = SplitMix64::new(seed ^ 0xA076_1D64_78BD_642F);
    let a = mix.next_u64() ^ epoch;
    let b = SplitMix64::new(a).next_u64() ^ index as u64;
    SplitMix64::new(SplitMix64::new(b).next_u64())
}

/// Transforms applied in order, as torchvision's `Compose`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Compose {
    steps: Vec<Arc<dyn Transform>>,
}

impl Compose {
    /// No transforms.
    pub fn new() -> Self {
        Compose::default()
    }
    /// Appends `transform`.
    pub fn then(mut self, transform: impl Transform + 'static) -> Self {
        self.steps.push(Arc::new(transform));
        self
    }
    /// The standard CIFAR training recipe: `RandomCrop(size, padding = 4)` then
    /// `RandomHorizontalFlip(0.5)`.
    pub fn crop_and_flip(size: usize) -> Self {
        Compose::new().then(RandomCrop::new(size).padding(4)).then(RandomHorizontalFlip::new(0.5))
    }
    /// Whether there are no transforms.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
    /// Checks that the pipeline takes `input` images and gives `output` ones (the shape the
    /// validation images, and so the model, have).
    pub fn check(&self, input: [usize; 3], output: [usize; 3]) -> Result<()> {
        let shape = self.output_shape(input)?;
        if shape != output {
            return Err(Error::Config(format!(
                "the training transforms turn {input:?} images into {shape:?}, but validation and test images are {output:?}; \
                 crop to the same size (RandomCrop::new({}).padding(4) keeps it)",
                output[1]
            )));
        }
        Ok(())
    }
}

impl Transform for Compose {
    fn output_shape(&self, shape: [usize; 3]) -> Result<[usize; 3]> {
        self.steps.iter().try_fold(shape, |shape, step| step.output_shape(shape))
    }
    fn apply(&self, pixels: Vec<u8>, shape: [usize; 3], rng: &mut SplitMix64) -> Vec<u8> {
        let mut shape = shape;
        let mut pixels = pixels;
        for step in &self.steps {
            let next = step.output_shape(shape).unwrap_or(shape);
            pixels = step.apply(pixels, shape, rng);
            shape = next;
        }
        pixels
    }
}

/// Pads each side with `padding` pixels of `fill`, then crops a random `size` window, as
/// torchvision's `RandomCrop(size, padding)` with constant padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomCrop {
    size: [usize; 2],
    padding: usize,
    fill: u8,
}

impl RandomCrop {
    /// A square `size` crop, no padding.
    pub fn new(size: usize) -> Self {
        RandomCrop { size: [size, size], padding: 0, fill: 0 }
    }
    /// A `[height, width]` crop.
    pub fn size(mut self, height: usize, width: usize) -> Self {
        self.size = [height, width];
        self
    }
    /// Pixels of padding on each side (default 0).
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
    /// The padding's value in every channel (default 0).
    pub fn fill(mut self, fill: u8) -> Self {
        self.fill = fill;
        self
    }
    /// The crop of the padded image with its top-left corner at (`top`, `left`).
    pub fn crop_at(&self, pixels: &[u8], [c, h, w]: [usize; 3], top: usize, left: usize) -> Vec<u8> {
        let [th, tw] = self.size;
        let p = self.padding as isize;
        let mut out = Vec::with_capacity(c * th * tw);
        for channel in pixels.chunks_exact(h * w) {
            for y in 0..th {
                let sy = (top + y) as isize - p;
                for x in 0..tw {
                    let sx = (left + x) as isize - p;
                    let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                    out.push(if inside { channel[sy as usize * w + sx as usize] } else { self.fill });
                }
            }
        }
        out
    }
}

impl Transform for RandomCrop {
    fn output_shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3]> {
        let [th, tw] = self.size;
        let (ph, pw) = (h + 2 * self.padding, w + 2 * self.padding);
        if th == 0 || tw == 0 || th > ph || tw > pw {
            return Err(Error::Config(format!(
                "RandomCrop of {th}x{tw} does not fit a {h}x{w} image padded by {} ({ph}x{pw}); crop at most {ph}x{pw}",
                self.padding
            )));
        }
        Ok([c, th, tw])
    }
    fn apply(&self, pixels: Vec<u8>, shape: [usize; 3], rng: &mut SplitMix64) -> Vec<u8> {
        let [_, h, w] = shape;
        let top = rng.below((h + 2 * self.padding).saturating_sub(self.size[0]) + 1);
        let left = rng.below((w + 2 * self.padding).saturating_sub(self.size[1]) + 1);
        self.crop_at(&pixels, shape, top, left)
    }
}

/// Mirrors the image left to right with probability `p`, as torchvision's `RandomHorizontalFlip`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomHorizontalFlip {
    p: f64,
}

impl RandomHorizontalFlip {
    /// Flips with probability `p` (torchvision's default is 0.5).
    pub fn new(p: f64) -> Self {
        RandomHorizontalFlip { p }
    }
    /// The mirrored image.
    pub fn flip(pixels: &mut [u8], [_, _, w]: [usize; 3]) {
        for row in pixels.chunks_exact_mut(w) {
            row.reverse();
        }
    }
}

impl Transform for RandomHorizontalFlip {
    fn output_shape(&self, shape: [usize; 3]) -> Result<[usize; 3]> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(Error::Config(format!("RandomHorizontalFlip probability {} is not in 0..=1", self.p)));
        }
        Ok(shape)
    }
    fn apply(&self, mut pixels: Vec<u8>, shape: [usize; 3], rng: &mut SplitMix64) -> Vec<u8> {
        if rng.uniform(0.0, 1.0) < self.p {
            Self::flip(&mut pixels, shape);
        }
        pixels
    }
}

/// Scales brightness and contrast by factors drawn uniformly from `[max(0, 1 - b), 1 + b]` and
/// `[max(0, 1 - c), 1 + c]`, in a random order, as torchvision's `ColorJitter(brightness,
/// contrast)`; results are rounded to the nearest byte.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ColorJitter {
    brightness: f64,
    contrast: f64,
}

impl ColorJitter {
    /// Jitter of `brightness` and `contrast` (0: unchanged).
    pub fn new(brightness: f64, contrast: f64) -> Self {
        ColorJitter { brightness, contrast }
    }
    /// Multiplies every value by `factor`.
    pub fn adjust_brightness(pixels: &mut [u8], factor: f64) {
        for p in pixels {
            *p = (*p as f64 * factor).round().clamp(0.0, 255.0) as u8;
        }
    }
    /// Blends every value with the image's mean grey level (ITU-R 601 luma for 3 channels, the
    /// mean for others): `factor * x + (1 - factor) * mean`.
    pub fn adjust_contrast(pixels: &mut [u8], [c, h, w]: [usize; 3], factor: f64) {
        let plane = h * w;
        let sum = |ch: usize| pixels[ch * plane..(ch + 1) * plane].iter().map(|&p| p as f64).sum::<f64>();
        let mean = if c == 3 { (0.299 * sum(0) + 0.587 * sum(1) + 0.114 * sum(2)) / plane as f64 } else { (0..c).map(sum).sum::<f64>() / (c * plane) as f64 };
        for p in pixels {
            *p = (factor * *p as f64 + (1.0 - factor) * mean).round().clamp(0.0, 255.0) as u8;
        }
    }
    fn factor(amount: f64, rng: &mut SplitMix64) -> f64 {
        rng.uniform((1.0 - amount).max(0.0), 1.0 + amount)
    }
}

impl Transform for ColorJitter {
    fn output_shape(&self, shape: [usize; 3]) -> Result<[usize; 3]> {
        for (name, v) in [("brightness", self.brightness), ("contrast", self.contrast)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Config(format!("ColorJitter {name} {v} must be a finite number at least 0")));
            }
        }
        Ok(shape)
    }
    fn apply(&self, mut pixels: Vec<u8>, shape: [usize; 3], rng: &mut SplitMix64) -> Vec<u8> {
        let brightness_first = rng.below(2) == 0;
        let b = (self.brightness > 0.0).then(|| Self::factor(self.brightness, rng));
        let c = (self.contrast > 0.0).then(|| Self::factor(self.contrast, rng));
        let bright = |px: &mut Vec<u8>| b.into_iter().for_each(|f| Self::adjust_brightness(px, f));
        if brightness_first {
            bright(&mut pixels);
        }
        if let Some(f) = c {
            Self::adjust_contrast(&mut pixels, shape, f);
        }
        if !brightness_first {
            bright(&mut pixels);
        }
        pixels
    }
}

/// Per-channel `(x / 255 - mean) / std`, as torchvision's `ToTensor` then `Normalize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalize {
    /// One `mean` and one `std` per channel.
    pub fn new(mean: &[f32], std: &[f32]) -> Self {
        Normalize { mean: mean.to_vec(), std: std.to_vec() }
    }
    /// Checks there is one finite mean and one positive std per channel of `shape`.
    pub fn check(&self, shape: [usize; 3]) -> Result<()> {
        let c = shape[0];
        if self.mean.len() != c || self.std.len() != c {
            return Err(Error::Config(format!(
                "Normalize has {} means and {} stds for {c}-channel images; give one of each per channel",
                self.mean.len(),
                self.std.len()
            )));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Config(format!("Normalize std {s} must be a positive number")));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::Config(format!("Normalize mean {m} must be a finite number")));
        }
        Ok(())
    }
    /// Appends the normalized values of one `[C, H, W]` image to `out`.
    pub fn extend(&self, pixels: &[u8], [_, h, w]: [usize; 3], out: &mut Vec<f32>) {
        for (channel, (&m, &s)) in pixels.chunks_exact(h * w).zip(self.mean.iter().zip(&self.std)) {
            out.extend(channel.iter().map(|&p| (p as f32 / 255.0 - m) / s));
        }
    }
    /// Undoes the normalization of one `[C, H, W]` image, back to bytes.
    pub fn invert(&self, values: &[f32], [_, h, w]: [usize; 3]) -> Vec<u8> {
        values
            .chunks_exact(h * w)
            .zip(self.mean.iter().zip(&self.std))
            .flat_map(|(channel, (&m, &s))| channel.iter().map(move |&v| ((v * s + m) * 255.0).round().clamp(0.0, 255.0) as u8))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1x3x4 image whose pixels are their row-major positions, 1..=12.
    fn image() -> (Vec<u8>, [usize; 3]) {
        ((1..=12).collect(), [1, 3, 4])
    }

    #[test]
    fn crop_with_padding_takes_the_window_of_the_padded_image() {
        let (px, shape) = image();
        let crop = RandomCrop::new(3).padding(1).fill(0);
        assert_eq!(crop.output_shape(shape).unwrap(), [1, 3, 3]);
        // Padded 5x6; the window at (0, 0) holds the padding row and column.
        assert_eq!(crop.crop_at(&px, shape, 0, 0), [0, 0, 0, 0, 1, 2, 0, 5, 6]);
        assert_eq!(crop.crop_at(&px, shape, 2, 3), [7, 8, 0, 11, 12, 0, 0, 0, 0]);
        assert_eq!(RandomCrop::new(2).size(2, 3).crop_at(&px, shape, 1, 1), [6, 7, 8, 10, 11, 12]);
        assert!(RandomCrop::new(4).output_shape(shape).unwrap_err().to_string().contains("does not fit a 3x4 image"));
    }

    #[test]
    fn random_crops_cover_every_offset_and_only_those() {
        let (px, shape) = image();
        let crop = RandomCrop::new(3).padding(1);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..400 {
            let out = crop.apply(px.clone(), shape, &mut item_rng(1, 0, i));
            let offset = (0..3).flat_map(|t| (0..4).map(move |l| (t, l))).find(|&(t, l)| crop.crop_at(&px, shape, t, l) == out);
            seen.insert(offset.expect("a crop at a valid offset"));
        }
        assert_eq!(seen.len(), 12, "every one of the 3x4 offsets is drawn");
    }

    #[test]
    fn flips_mirror_rows_of_every_channel() {
        let mut px: Vec<u8> = (0..8).collect();
        RandomHorizontalFlip::flip(&mut px, [2, 2, 2]);
        assert_eq!(px, [1, 0, 3, 2, 5, 4, 7, 6]);
        let (img, shape) = image();
        let always = RandomHorizontalFlip::new(1.0).apply(img.clone(), shape, &mut item_rng(0, 0, 0));
        assert_eq!(always[..4], [4, 3, 2, 1]);
        assert_eq!(RandomHorizontalFlip::new(0.0).apply(img.clone(), shape, &mut item_rng(0, 0, 0)), img);
        let flips = (0..1000).filter(|&i| RandomHorizontalFlip::new(0.5).apply(img.clone(), shape, &mut item_rng(3, 1, i)) != img).count();
        assert!((430..570).contains(&flips), "{flips} of 1000 flipped at p = 0.5");
        assert!(RandomHorizontalFlip::new(1.5).output_shape(shape).is_err());
    }

    #[test]
    fn brightness_scales_and_contrast_blends_with_the_grey_mean() {
        let mut px = vec![10, 100, 200, 250];
        ColorJitter::adjust_brightness(&mut px, 1.5);
        assert_eq!(px, [15, 150, 255, 255]);
        // One channel: mean 100; factor 0.5 moves halfway to it.
        let mut px = vec![0, 100, 200, 100];
        ColorJitter::adjust_contrast(&mut px, [1, 2, 2], 0.5);
        assert_eq!(px, [50, 100, 150, 100]);
        // Three channels of one pixel: luma 0.299*200 + 0.587*100 + 0.114*0 = 118.5.
        let mut px = vec![200, 100, 0];
        ColorJitter::adjust_contrast(&mut px, [3, 1, 1], 0.0);
        assert_eq!(px, [119, 119, 119]);
        assert!(ColorJitter::new(-0.1, 0.0).output_shape([1, 1, 1]).is_err());
    }

    #[test]
    fn the_same_seed_epoch_and_index_give_the_same_augmentation() {
        let t = Compose::crop_and_flip(32).then(ColorJitter::new(0.4, 0.4));
        let px: Vec<u8> = (0..3 * 32 * 32).map(|i| (i * 7 % 256) as u8).collect();
        let run = |seed, epoch, index| t.apply(px.clone(), [3, 32, 32], &mut item_rng(seed, epoch, index));
        assert_eq!(run(1, 2, 3), run(1, 2, 3));
        let others = [run(2, 2, 3), run(1, 3, 3), run(1, 2, 4)];
        assert!(others.iter().all(|o| *o != run(1, 2, 3)), "seed, epoch and index each change the draw");
        t.check([3, 32, 32], [3, 32, 32]).unwrap();
        let err = Compose::new().then(RandomCrop::new(28)).check([3, 32, 32], [3, 32, 32]).unwrap_err().to_string();
        assert!(err.contains("into [3, 28, 28]"), "{err}");
    }

    #[test]
    fn normalize_needs_one_positive_std_per_channel() {
        assert!(Normalize::new(&[0.5; 3], &[0.5; 3]).check([3, 2, 2]).is_ok());
        assert!(Normalize::new(&[0.5], &[0.5; 3]).check([3, 2, 2]).unwrap_err().to_string().contains("1 means and 3 stds"));
        assert!(Normalize::new(&[0.5], &[0.0]).check([1, 2, 2]).unwrap_err().to_string().contains("positive"));
    }
}
