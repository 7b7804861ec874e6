//! Shape tracking in a derived model's `new()`: how `#[layer(linear(auto -> n))]` learns `n`'s
//! input size without a dummy forward pass, and how an impossible chain becomes an error naming
//! the layer. The arithmetic and the rules are `fulmen-rules`', the ones the derive applies at
//! compile time to literal shapes.

pub use fulmen_rules::shape::{Padding, Shape, ShapeError, Window};

use crate::error::{Error, Result};

/// The shape flowing through a layer chain, with each step's error naming its layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeTracker(Shape);

impl ShapeTracker {
    /// Starts from an input shape `[C, H, W]`.
    pub fn image(shape: [usize; 3]) -> Self {
        ShapeTracker(Shape::Map(shape))
    }

    /// Starts from a flat input of `n` features.
    pub fn flat(n: usize) -> Self {
        ShapeTracker(Shape::Flat(n))
    }

    /// The current shape.
    pub fn shape(&self) -> Shape {
        self.0
    }

    /// Applies a conv2d with `in_channels -> out_channels`.
    pub fn conv2d(&mut self, layer: &str, in_channels: usize, out_channels: usize, window: Window) -> Result<()> {
        self.0 = self.0.conv2d(Some(in_channels), out_channels, window).map_err(|e| shape_error(layer, e))?;
        Ok(())
    }

    /// Applies a transposed conv2d with `in_channels -> out_channels`.
    pub fn conv_transpose2d(&mut self, layer: &str, in_channels: usize, out_channels: usize, window: Window, output_padding: usize) -> Result<()> {
        self.0 = self.0.conv_transpose2d(Some(in_channels), out_channels, window, output_padding).map_err(|e| shape_error(layer, e))?;
        Ok(())
    }

    /// Applies nearest-neighbour upsampling by `scale`.
    pub fn upsample(&mut self, layer: &str, scale: usize) -> Result<()> {
        self.0 = self.0.upsample(scale).map_err(|e| shape_error(layer, e))?;
        Ok(())
    }

    /// Applies a max or average pool.
    pub fn pool(&mut self, layer: &str, window: Window) -> Result<()> {
        self.0 = self.0.pool(window).map_err(|e| shape_error(layer, e))?;
        Ok(())
    }

    /// Applies an adaptive average pool to `[out_h, out_w]`.
    pub fn adaptive_pool(&mut self, layer: &str, out: [usize; 2]) -> Result<()> {
        self.0 = self.0.adaptive_pool(out).map_err(|e| shape_error(layer, e))?;
        Ok(())
    }

    /// Flattens a feature map (a flat vector stays as it is).
    pub fn flatten(&mut self) {
        self.0 = self.0.flatten();
    }

    /// Applies a linear layer; `in_features: None` (`auto`) takes the incoming size.
    /// Returns the resolved input size.
    pub fn linear(&mut self, layer: &str, in_features: Option<usize>, out_features: usize) -> Result<usize> {
        let (shape, input) = self.0.linear(in_features, out_features).map_err(|e| shape_error(layer, e))?;
        self.0 = shape;
        Ok(input)
    }

    /// Channels (or features) of the current shape, for batch norm.
    pub fn channels(&self) -> usize {
        self.0.channels()
    }
}

fn shape_error(layer: &str, error: ShapeError) -> Error {
    Error::Shape { layer: layer.to_string(), reason: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_layer() {
        let mut s = ShapeTracker::image([3, 4, 4]);
        let k5 = Window { kernel: 5, stride: 1, padding: Padding::Valid, dilation: 1 };
        let err = s.conv2d("conv9", 3, 8, k5).unwrap_err().to_string();
        assert!(err.starts_with("layer `conv9`: conv2d kernel 5") && err.contains("4x4"), "{err}");
        assert_eq!(s.shape(), Shape::Map([3, 4, 4]), "a refused layer leaves the shape as it was");
        assert_eq!(s.linear("fc", None, 2).unwrap(), 48);
    }
}
