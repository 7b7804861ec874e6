//! Shape arithmetic over a layer chain: how `#[layer(linear(auto -> n))]` learns `n`'s input
//! size without a dummy forward pass, and how an impossible chain becomes an error naming the layer.

use crate::error::{Error, Result};

/// Padding of a convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// Output size equals input size (stride 1 only).
    Same,
    /// Explicit zero padding on each side.
    Explicit(usize),
}

/// A 2-d window: kernel, stride, padding, dilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub padding: Padding,
    /// Dilation.
    pub dilation: usize,
}

impl Window {
    /// Side of the output for an input side, or `None` when the window does not fit.
    pub fn output_side(&self, input: usize) -> Option<usize> {
        let span = self.dilation * (self.kernel - 1) + 1;
        let pad = match self.padding {
            Padding::Valid => 0,
            Padding::Same => return Some(input),
            Padding::Explicit(p) => p,
        };
        let padded = input + 2 * pad;
        (padded >= span).then(|| (padded - span) / self.stride + 1)
    }
}

/// The shape flowing through a layer chain: `[C, H, W]` feature maps, then a flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeTracker {
    /// A `[channels, height, width]` feature map (batch dimension omitted).
    Map([usize; 3]),
    /// A flat `[features]` vector.
    Flat(usize),
}

impl ShapeTracker {
    /// Starts from an input shape `[C, H, W]`.
    pub fn image(shape: [usize; 3]) -> Self {
        ShapeTracker::Map(shape)
    }

    /// Starts from a flat input of `n` features.
    pub fn flat(n: usize) -> Self {
        ShapeTracker::Flat(n)
    }

    /// Applies a conv2d with `in_channels -> out_channels`.
    pub fn conv2d(&mut self, layer: &str, in_channels: usize, out_channels: usize, window: Window) -> Result<()> {
        let [c, h, w] = self.map(layer, "conv2d")?;
        if c != in_channels {
            return Err(shape_error(layer, format!("conv2d expects {in_channels} input channels but receives {c}; write `conv2d({c} -> {out_channels}, ..)`")));
        }
        if window.padding == Padding::Same && window.stride != 1 {
            return Err(shape_error(layer, "padding = same needs stride 1".into()));
        }
        let (oh, ow) = self.window_out(layer, "conv2d", window, h, w)?;
        *self = ShapeTracker::Map([out_channels, oh, ow]);
        Ok(())
    }

    /// Applies a max or average pool.
    pub fn pool(&mut self, layer: &str, window: Window) -> Result<()> {
        let [c, h, w] = self.map(layer, "pooling")?;
        let (oh, ow) = self.window_out(layer, "pooling", window, h, w)?;
        *self = ShapeTracker::Map([c, oh, ow]);
        Ok(())
    }

    /// Applies an adaptive average pool to `[out_h, out_w]`.
    pub fn adaptive_pool(&mut self, layer: &str, out: [usize; 2]) -> Result<()> {
        let [c, _, _] = self.map(layer, "adaptive_avg_pool")?;
        *self = ShapeTracker::Map([c, out[0], out[1]]);
        Ok(())
    }

    /// Flattens a feature map (a flat vector stays as it is).
    pub fn flatten(&mut self) {
        if let ShapeTracker::Map([c, h, w]) = *self {
            *self = ShapeTracker::Flat(c * h * w);
        }
    }

    /// Applies a linear layer; `in_features: None` (`auto`) takes the incoming size.
    /// Returns the resolved input size.
    pub fn linear(&mut self, layer: &str, in_features: Option<usize>, out_features: usize) -> Result<usize> {
        self.flatten();
        let ShapeTracker::Flat(n) = *self else { unreachable!("flatten leaves a flat shape") };
        if let Some(declared) = in_features
            && declared != n
        {
            return Err(shape_error(
                layer,
                format!(
                    "linear declares {declared} input features but receives {n}; write `linear({n} -> {out_features})` or `linear(auto -> {out_features})`"
                ),
            ));
        }
        *self = ShapeTracker::Flat(out_features);
        Ok(n)
    }

    /// Channels (or features) of the current shape, for batch norm.
    pub fn channels(&self) -> usize {
        match *self {
            ShapeTracker::Map([c, _, _]) => c,
            ShapeTracker::Flat(n) => n,
        }
    }

    fn map(&self, layer: &str, op: &str) -> Result<[usize; 3]> {
        match *self {
            ShapeTracker::Map(shape) => Ok(shape),
            ShapeTracker::Flat(n) => {
                Err(shape_error(layer, format!("{op} needs a [C, H, W] feature map but receives a flat vector of {n}; move it before the first linear layer")))
            }
        }
    }

    fn window_out(&self, layer: &str, op: &str, window: Window, h: usize, w: usize) -> Result<(usize, usize)> {
        if window.kernel == 0 || window.stride == 0 || window.dilation == 0 {
            return Err(shape_error(layer, format!("{op} kernel, stride and dilation must be at least 1")));
        }
        match (window.output_side(h), window.output_side(w)) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => Err(shape_error(
                layer,
                format!(
                    "{op} kernel {k} (dilation {d}) does not fit the {h}x{w} feature map it receives; use a smaller kernel, padding, or fewer pooling layers before it",
                    k = window.kernel,
                    d = window.dilation
                ),
            )),
        }
    }
}

fn shape_error(layer: &str, reason: String) -> Error {
    Error::Shape { layer: layer.to_string(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(kernel: usize) -> Window {
        Window { kernel, stride: 1, padding: Padding::Valid, dilation: 1 }
    }

    #[test]
    fn the_seed_cnn_flattens_to_1600() {
        let mut s = ShapeTracker::image([3, 32, 32]);
        s.conv2d("conv1", 3, 32, k(3)).unwrap();
        s.conv2d("conv2", 32, 32, k(3)).unwrap();
        s.pool("conv2", Window { kernel: 2, stride: 2, padding: Padding::Valid, dilation: 1 }).unwrap();
        s.conv2d("conv3", 32, 64, k(3)).unwrap();
        s.conv2d("conv4", 64, 64, k(3)).unwrap();
        s.pool("conv4", Window { kernel: 2, stride: 2, padding: Padding::Valid, dilation: 1 }).unwrap();
        assert_eq!(s.linear("fc1", None, 512).unwrap(), 64 * 5 * 5);
    }

    #[test]
    fn padding_stride_and_dilation_follow_pytorch() {
        let w = Window { kernel: 3, stride: 2, padding: Padding::Explicit(1), dilation: 2 };
        // floor((32 + 2 - 2*2 - 1) / 2) + 1 = 15
        assert_eq!(w.output_side(32), Some(15));
        assert_eq!(Window { padding: Padding::Same, ..k(5) }.output_side(7), Some(7));
    }

    #[test]
    fn a_kernel_larger_than_its_map_names_the_layer() {
        let mut s = ShapeTracker::image([3, 4, 4]);
        let err = s.conv2d("conv9", 3, 8, k(5)).unwrap_err().to_string();
        assert!(err.contains("conv9") && err.contains("4x4"), "{err}");
    }

    #[test]
    fn wrong_channels_and_wrong_linear_sizes_are_errors() {
        let mut s = ShapeTracker::image([3, 8, 8]);
        assert!(s.conv2d("c", 4, 8, k(3)).unwrap_err().to_string().contains("receives 3"));
        let mut s = ShapeTracker::image([2, 3, 3]);
        let err = s.linear("fc", Some(17), 4).unwrap_err().to_string();
        assert!(err.contains("18") && err.contains("17"), "{err}");
    }
}
