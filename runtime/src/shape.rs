//! Shape tracking in a derived model's `new()`: how `#[layer(linear(auto -> n))]` learns `n`'s
//! input size without a dummy forward pass, and how an impossible chain becomes an error naming
//! the layer. The arithmetic and the rules are `fulmen-rules`' [`Shape`] methods, the ones the
//! derive applies at compile time to literal shapes; the generated code calls them through
//! [`ShapeTracker::apply`].

pub use fulmen_rules::shape::{Layout, Padding, Shape, ShapeError, Window};

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

    /// Starts from an input shape (`[C, H, W]`, `[C, L]` or `[L]`) in the layout the model's first
    /// op takes; a shape of another length is an error saying which one to give.
    pub fn input(layout: Layout, dims: &[usize]) -> Result<Self> {
        Shape::new(layout, dims)
            .map(ShapeTracker)
            .ok_or_else(|| Error::Config(format!("input_shape {dims:?} does not fit a model whose first op takes {}; give its dimensions", layout.dims())))
    }

    /// The current shape.
    pub fn shape(&self) -> Shape {
        self.0
    }

    /// Applies one op's rule (`|s| s.conv2d(Some(3), 8, window)`); a refused op is an error
    /// naming `layer`, and leaves the shape as it was.
    pub fn apply(&mut self, layer: &str, rule: impl FnOnce(Shape) -> std::result::Result<Shape, ShapeError>) -> Result<()> {
        self.0 = rule(self.0).map_err(|e| Error::Shape { layer: layer.to_string(), reason: e.to_string() })?;
        Ok(())
    }

    /// Applies a linear layer; `in_features: None` (`auto`) takes the incoming size.
    /// Returns the resolved input size.
    pub fn linear(&mut self, layer: &str, in_features: Option<usize>, out_features: usize) -> Result<usize> {
        let mut input = 0;
        self.apply(layer, |s| {
            let (shape, n) = s.linear(in_features, out_features)?;
            input = n;
            Ok(shape)
        })?;
        Ok(input)
    }

    /// Channels (or features) of the current shape, for batch norm and `auto` channels.
    pub fn channels(&self) -> usize {
        self.0.channels()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_layer() {
        let mut s = ShapeTracker::image([3, 4, 4]);
        let k5 = Window { kernel: 5, stride: 1, padding: Padding::Valid, dilation: 1 };
        let err = s.apply("conv9", |s| s.conv2d(Some(3), 8, k5)).unwrap_err().to_string();
        assert!(err.starts_with("layer `conv9`: conv2d kernel 5") && err.contains("4x4"), "{err}");
        assert_eq!(s.shape(), Shape::Map([3, 4, 4]), "a refused layer leaves the shape as it was");
        assert_eq!(s.linear("fc", None, 2).unwrap(), 48);
    }
}
