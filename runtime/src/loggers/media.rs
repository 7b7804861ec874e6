//! What loggers receive besides numbers: RGB images (PNG-encoded on the way out), tables, and
//! the test set's precision-recall curves and confusion matrix.

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::metrics::PrCurve;

/// An 8-bit RGB image with an optional caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    width: u32,
    height: u32,
    /// Row-major RGB bytes, `3 * width * height` of them.
    rgb: Vec<u8>,
    caption: Option<String>,
}

impl Image {
    /// An image from row-major RGB bytes; errors when the length is not `3 * width * height`.
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self> {
        if width == 0 || height == 0 || rgb.len() != 3 * width as usize * height as usize {
            let reason = format!("a {width}×{height} image needs {} RGB bytes, got {}", 3 * width as usize * height as usize, rgb.len());
            return Err(Error::Media { what: "an image".into(), reason });
        }
        Ok(Image { width, height, rgb, caption: None })
    }

    /// An image from a `[3, height, width]` (or `[1, height, width]`, grey) tensor of values in
    /// [0, 1], after undoing a per-channel normalization: `x * std + mean`. Values outside
    /// [0, 1] are clipped.
    pub fn from_tensor(image: Tensor<3>, mean: [f64; 3], std: [f64; 3]) -> Result<Self> {
        let [channels, height, width] = image.dims();
        if channels != 3 && channels != 1 {
            let reason = format!("an image tensor needs 1 or 3 channels first ([C, H, W]), got shape {:?}", image.dims());
            return Err(Error::Media { what: "an image".into(), reason });
        }
        let values: Vec<f32> = image
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Media { what: "an image".into(), reason: format!("cannot read the image tensor: {e:?}") })?;
        let plane = height * width;
        let mut rgb = Vec::with_capacity(3 * plane);
        for i in 0..plane {
            for c in 0..3 {
                let channel = if channels == 1 { 0 } else { c };
                let v = values[channel * plane + i] as f64 * std[channel] + mean[channel];
                rgb.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
        Image::from_rgb(width as u32, height as u32, rgb)
    }

    /// Sets the caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The caption, if any.
    pub fn caption(&self) -> Option<&str> {
        self.caption.as_deref()
    }
    /// The RGB bytes, row by row.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }
    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = 3 * (y as usize * self.width as usize + x as usize);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The image as a PNG file.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let fail = |e: png::EncodingError| Error::Media { what: "an image".into(), reason: format!("cannot encode a PNG: {e}") };
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&self.rgb).map_err(fail)?;
        writer.finish().map_err(fail)?;
        Ok(out)
    }
}

/// A table of JSON cells (W&B's `wandb.Table`).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Table {
    /// A table; errors when a row's length differs from the column count.
    pub fn new(columns: Vec<String>, rows: Vec<Vec<serde_json::Value>>) -> Result<Self> {
        if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != columns.len()) {
            let reason = format!("row {i} has {} cells but there are {} columns", row.len(), columns.len());
            return Err(Error::Media { what: "a table".into(), reason });
        }
        Ok(Table { columns, rows })
    }
}

/// One precision-recall curve per class (one class against the rest), with class names.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassCurves {
    /// Class names, one per curve.
    pub classes: Vec<String>,
    /// The curves.
    pub curves: Vec<PrCurve>,
}

/// A confusion matrix (rows: true class, columns: predicted class) with class names.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionTable {
    /// Class names, one per row and column.
    pub classes: Vec<String>,
    /// Counts (or normalized values), row by row.
    pub matrix: Vec<Vec<f64>>,
}

/// Class names `0`, `1`, ... for `n` classes, when the data module names none.
pub fn numbered_classes(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normalized_tensor_comes_back_as_its_rgb_bytes() {
        // Pixels 0, 51, 255 in each channel, normalized with mean 0.5 and std 0.5 as the tutorial's.
        let bytes = [0u8, 51, 255, 128];
        let values: Vec<f32> = (0..3).flat_map(|_| bytes.iter().map(|&b| (b as f32 / 255.0 - 0.5) / 0.5)).collect();
        let tensor = Tensor::<3>::from_floats(burn::tensor::TensorData::new(values, [3, 2, 2]), &burn::tensor::Device::flex());
        let image = Image::from_tensor(tensor, [0.5; 3], [0.5; 3]).unwrap().with_caption("Pred: cat, Label: dog");
        assert_eq!((image.width(), image.height()), (2, 2));
        assert_eq!(image.pixel(1, 0), [51, 51, 51]);
        assert_eq!(image.pixel(0, 1), [255, 255, 255]);
        let png = image.to_png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut decoded = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut decoded).unwrap();
        assert_eq!(&decoded[..12], image.rgb());
        assert!(Image::from_rgb(2, 2, vec![0; 11]).is_err());
    }
}
