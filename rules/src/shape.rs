//! Shape arithmetic over a layer chain, as PyTorch computes it: how `linear(auto -> n)` learns
//! its input size without a dummy forward pass, and why an impossible chain is refused. The
//! derive walks a literal `input_shape` through these functions at compile time; the generated
//! `new()` walks the real one at run time.

use std::fmt;

/// Padding of a convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// Output size equals input size (stride 1 only, as PyTorch).
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
    /// Side of the output for an input side (`floor((in + 2p - d(k-1) - 1) / s) + 1`), or `None`
    /// when the window does not fit. Assumes [`Window::check`] passed.
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

    /// The window's own rules: kernel, stride and dilation at least 1; `same` only with stride 1.
    pub fn check(&self, op: &'static str) -> Result<(), ShapeError> {
        if self.kernel == 0 || self.stride == 0 || self.dilation == 0 {
            return Err(ShapeError::ZeroWindow { op });
        }
        if self.padding == Padding::Same && self.stride != 1 {
            return Err(ShapeError::SameWithStride { op, stride: self.stride });
        }
        Ok(())
    }

    /// The `[height, width]` this window makes of a `[h, w]` feature map.
    pub fn output(&self, op: &'static str, [h, w]: [usize; 2]) -> Result<[usize; 2], ShapeError> {
        self.check(op)?;
        match (self.output_side(h), self.output_side(w)) {
            (Some(oh), Some(ow)) => Ok([oh, ow]),
            _ => Err(ShapeError::DoesNotFit { op, kernel: self.kernel, dilation: self.dilation, height: h, width: w }),
        }
    }
}

/// The shape flowing through a layer chain, batch dimension omitted: `[C, H, W]` feature maps,
/// then a flat vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A `[channels, height, width]` feature map.
    Map([usize; 3]),
    /// A flat `[features]` vector.
    Flat(usize),
}

impl Shape {
    /// The feature map, or an error when the shape is already flat.
    pub fn map(self, op: &'static str) -> Result<[usize; 3], ShapeError> {
        match self {
            Shape::Map(shape) => Ok(shape),
            Shape::Flat(features) => Err(ShapeError::NeedsMap { op, features }),
        }
    }

    /// Channels (or features) of the shape: what a batch norm normalizes.
    pub fn channels(self) -> usize {
        match self {
            Shape::Map([c, _, _]) => c,
            Shape::Flat(n) => n,
        }
    }

    /// A feature map flattened (a flat vector stays as it is).
    pub fn flatten(self) -> Shape {
        match self {
            Shape::Map([c, h, w]) => Shape::Flat(c * h * w),
            flat => flat,
        }
    }

    /// Checks a declared input channel count (`None`: `auto`) against the incoming one.
    pub fn input_channels(self, op: &'static str, declared: Option<usize>) -> Result<usize, ShapeError> {
        let [c, _, _] = self.map(op)?;
        match declared {
            Some(declared) if declared != c => Err(ShapeError::Channels { op, declared, received: c }),
            _ => Ok(c),
        }
    }

    /// A conv2d with `in_channels` (`None`: `auto`) to `out_channels`.
    pub fn conv2d(self, in_channels: Option<usize>, out_channels: usize, window: Window) -> Result<Shape, ShapeError> {
        let [_, h, w] = self.map("conv2d")?;
        self.input_channels("conv2d", in_channels)?;
        let [oh, ow] = window.output("conv2d", [h, w])?;
        Ok(Shape::Map([out_channels, oh, ow]))
    }

    /// A transposed conv2d with `in_channels` (`None`: `auto`) to `out_channels`: each side
    /// becomes `(in - 1)·s - 2p + d(k - 1) + output_padding + 1`, as PyTorch's ConvTranspose2d.
    pub fn conv_transpose2d(self, in_channels: Option<usize>, out_channels: usize, window: Window, output_padding: usize) -> Result<Shape, ShapeError> {
        const OP: &str = "conv_transpose2d";
        let [_, h, w] = self.map(OP)?;
        self.input_channels(OP, in_channels)?;
        let padding = match window.padding {
            Padding::Valid => 0,
            Padding::Explicit(p) => p,
            Padding::Same => return Err(ShapeError::NoSamePadding { op: OP }),
        };
        window.check(OP)?;
        if output_padding >= window.stride.max(window.dilation) {
            return Err(ShapeError::OutputPadding { output_padding, stride: window.stride, dilation: window.dilation });
        }
        let side = |input: usize| {
            ((input - 1) * window.stride + window.dilation * (window.kernel - 1) + output_padding + 1).checked_sub(2 * padding).filter(|&s| s > 0)
        };
        match (side(h), side(w)) {
            (Some(oh), Some(ow)) => Ok(Shape::Map([out_channels, oh, ow])),
            _ => Err(ShapeError::PaddedAway { op: OP, padding, height: h, width: w }),
        }
    }

    /// Nearest-neighbour upsampling by an integer `scale` (each pixel repeated `scale × scale`).
    pub fn upsample(self, scale: usize) -> Result<Shape, ShapeError> {
        let [c, h, w] = self.map("upsample")?;
        if scale == 0 {
            return Err(ShapeError::ZeroScale);
        }
        Ok(Shape::Map([c, h * scale, w * scale]))
    }

    /// A max or average pool.
    pub fn pool(self, window: Window) -> Result<Shape, ShapeError> {
        let [c, h, w] = self.map("pooling")?;
        let [oh, ow] = window.output("pooling", [h, w])?;
        Ok(Shape::Map([c, oh, ow]))
    }

    /// An adaptive average pool to `[out_h, out_w]`.
    pub fn adaptive_pool(self, out: [usize; 2]) -> Result<Shape, ShapeError> {
        let [c, _, _] = self.map("adaptive_avg_pool")?;
        Ok(Shape::Map([c, out[0], out[1]]))
    }

    /// Checks a linear layer's declared input size (`None`: `auto`) against the incoming
    /// (flattened) one and returns it; `output` is its output as written, for the message.
    pub fn features(self, declared: Option<usize>, output: &str) -> Result<usize, ShapeError> {
        let Shape::Flat(received) = self.flatten() else { unreachable!("flatten leaves a flat shape") };
        match declared {
            Some(declared) if declared != received => {
                let flattened = match self {
                    Shape::Map(map) => Some(map),
                    Shape::Flat(_) => None,
                };
                Err(ShapeError::Features { declared, received, flattened, output: output.to_string() })
            }
            _ => Ok(received),
        }
    }

    /// A linear layer: the shape after it, and its resolved input size.
    pub fn linear(self, in_features: Option<usize>, out_features: usize) -> Result<(Shape, usize), ShapeError> {
        let input = self.features(in_features, &out_features.to_string())?;
        Ok((Shape::Flat(out_features), input))
    }
}

/// Why a chain cannot be built; the caller names the layer (and, at compile time, points at
/// the argument [`ShapeError::blames`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// A 2-d op after the shape became flat.
    NeedsMap { op: &'static str, features: usize },
    /// Declared input channels that are not the incoming ones.
    Channels { op: &'static str, declared: usize, received: usize },
    /// A kernel, stride or dilation of 0.
    ZeroWindow { op: &'static str },
    /// `padding = same` with a stride other than 1.
    SameWithStride { op: &'static str, stride: usize },
    /// A window larger than the (padded) feature map.
    DoesNotFit { op: &'static str, kernel: usize, dilation: usize, height: usize, width: usize },
    /// Declared input features that are not the incoming ones.
    Features { declared: usize, received: usize, flattened: Option<[usize; 3]>, output: String },
    /// `padding = same` on an op that has none.
    NoSamePadding { op: &'static str },
    /// A transposed convolution's output padding not below its stride or dilation.
    OutputPadding { output_padding: usize, stride: usize, dilation: usize },
    /// Padding that takes away the whole output of a transposed convolution.
    PaddedAway { op: &'static str, padding: usize, height: usize, width: usize },
    /// An upsampling scale of 0.
    ZeroScale,
}

/// The argument of an op an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The declared input size.
    Input,
    /// The kernel.
    Kernel,
    /// The stride.
    Stride,
    /// The padding.
    Padding,
    /// A transposed convolution's output padding.
    OutputPadding,
    /// The op as a whole.
    Op,
}

impl ShapeError {
    /// Which argument of the op the error is about.
    pub fn blames(&self) -> Blame {
        match self {
            ShapeError::Channels { .. } | ShapeError::Features { .. } => Blame::Input,
            ShapeError::DoesNotFit { .. } => Blame::Kernel,
            ShapeError::SameWithStride { .. } => Blame::Stride,
            ShapeError::NoSamePadding { .. } | ShapeError::PaddedAway { .. } => Blame::Padding,
            ShapeError::OutputPadding { .. } => Blame::OutputPadding,
            ShapeError::NeedsMap { .. } | ShapeError::ZeroWindow { .. } | ShapeError::ZeroScale => Blame::Op,
        }
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::NeedsMap { op, features } => {
                write!(f, "{op} needs a [C, H, W] feature map but receives a flat vector of {features}; move it before the first linear layer")
            }
            ShapeError::Channels { op, declared, received } => {
                write!(f, "{op} declares {declared} input channels but receives {received}; write `{op}({received} -> ..)` or `{op}(auto -> ..)`")
            }
            ShapeError::ZeroWindow { op } => write!(f, "{op} kernel, stride and dilation must be at least 1"),
            ShapeError::SameWithStride { op, stride } => {
                write!(f, "{op} padding = same keeps the size only with stride 1 (as PyTorch), not stride {stride}; give the padding in pixels")
            }
            ShapeError::DoesNotFit { op, kernel, dilation, height, width } => {
                let dilated = if *dilation > 1 { format!(" (dilation {dilation})") } else { String::new() };
                write!(
                    f,
                    "{op} kernel {kernel}{dilated} does not fit the {height}x{width} feature map it receives; use a smaller kernel, padding, or fewer pooling layers before it"
                )
            }
            ShapeError::NoSamePadding { op } => write!(f, "{op} takes no `same` padding; give a number of pixels or `valid`"),
            ShapeError::OutputPadding { output_padding, stride, dilation } => {
                write!(f, "conv_transpose2d output_padding {output_padding} must be below its stride ({stride}) or dilation ({dilation}), as PyTorch requires")
            }
            ShapeError::PaddedAway { op, padding, height, width } => {
                write!(f, "{op} padding {padding} leaves nothing of the {height}x{width} feature map it receives; use less padding")
            }
            ShapeError::ZeroScale => write!(f, "upsample scale must be at least 1"),
            ShapeError::Features { declared, received, flattened, output } => {
                let dims = flattened.map(|[c, h, w]| format!(" ({c}x{h}x{w} flattened)")).unwrap_or_default();
                write!(
                    f,
                    "linear declares {declared} input features but receives {received}{dims}; write `linear({received} -> {output})` or `linear(auto -> {output})`"
                )
            }
        }
    }
}

impl std::error::Error for ShapeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(kernel: usize) -> Window {
        Window { kernel, stride: 1, padding: Padding::Valid, dilation: 1 }
    }

    #[test]
    fn the_seed_cnn_flattens_to_1600() {
        let pool = Window { stride: 2, ..k(2) };
        let mut s = Shape::Map([3, 32, 32]);
        for (i, o) in [(3, 32), (32, 32)] {
            s = s.conv2d(Some(i), o, k(3)).unwrap();
        }
        s = s.pool(pool).unwrap();
        for (i, o) in [(32, 64), (64, 64)] {
            s = s.conv2d(Some(i), o, k(3)).unwrap();
        }
        s = s.pool(pool).unwrap();
        assert_eq!(s.linear(None, 512).unwrap(), (Shape::Flat(512), 64 * 5 * 5));
    }

    #[test]
    fn padding_stride_and_dilation_follow_pytorch() {
        let w = Window { kernel: 3, stride: 2, padding: Padding::Explicit(1), dilation: 2 };
        // floor((32 + 2 - 2*2 - 1) / 2) + 1 = 15
        assert_eq!(w.output_side(32), Some(15));
        assert_eq!(Window { padding: Padding::Same, ..k(5) }.output("conv2d", [7, 9]), Ok([7, 9]));
        let strided_same = Window { padding: Padding::Same, stride: 2, ..k(3) };
        assert_eq!(strided_same.output("conv2d", [8, 8]), Err(ShapeError::SameWithStride { op: "conv2d", stride: 2 }));
        assert_eq!(Window { stride: 0, ..k(3) }.output("pooling", [8, 8]), Err(ShapeError::ZeroWindow { op: "pooling" }));
    }

    /// PyTorch: ConvTranspose2d(k=4, s=2, p=1) doubles a side; DCGAN's first layer
    /// (k=4, s=1, p=0) makes 4x4 of 1x1; output_padding settles the ambiguity of stride 2.
    #[test]
    fn transposed_convolutions_and_upsampling_grow_the_map() {
        let w = |kernel, stride, padding| Window { kernel, stride, padding: Padding::Explicit(padding), dilation: 1 };
        assert_eq!(Shape::Map([100, 1, 1]).conv_transpose2d(Some(100), 64, w(4, 1, 0), 0), Ok(Shape::Map([64, 4, 4])));
        assert_eq!(Shape::Map([64, 4, 4]).conv_transpose2d(None, 32, w(4, 2, 1), 0), Ok(Shape::Map([32, 8, 8])));
        assert_eq!(Shape::Map([8, 7, 7]).conv_transpose2d(None, 8, w(3, 2, 1), 1), Ok(Shape::Map([8, 14, 14])));
        assert_eq!(Shape::Map([8, 5, 5]).conv_transpose2d(None, 8, w(3, 2, 1), 2).unwrap_err().blames(), Blame::OutputPadding);
        assert_eq!(Shape::Map([8, 1, 1]).conv_transpose2d(None, 8, w(1, 1, 1), 0).unwrap_err().blames(), Blame::Padding);
        assert_eq!(Shape::Map([3, 5, 6]).upsample(2), Ok(Shape::Map([3, 10, 12])));
        assert_eq!(Shape::Map([3, 5, 6]).upsample(0), Err(ShapeError::ZeroScale));
    }

    #[test]
    fn errors_say_what_to_write() {
        let err = Shape::Map([3, 4, 4]).conv2d(Some(3), 8, k(5)).unwrap_err();
        assert_eq!((err.blames(), err.to_string().contains("kernel 5 does not fit the 4x4")), (Blame::Kernel, true));
        let err = Shape::Map([3, 8, 8]).conv2d(Some(4), 8, k(3)).unwrap_err().to_string();
        assert!(err.contains("declares 4 input channels but receives 3; write `conv2d(3 -> ..)`"), "{err}");
        let err = Shape::Map([2, 3, 3]).features(Some(17), "classes").unwrap_err().to_string();
        assert!(err.contains("receives 18 (2x3x3 flattened); write `linear(18 -> classes)`"), "{err}");
        assert!(Shape::Flat(10).pool(k(2)).unwrap_err().to_string().contains("flat vector of 10"));
    }
}
