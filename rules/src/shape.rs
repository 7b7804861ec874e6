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
            _ => Err(ShapeError::DoesNotFit { op, kernel: self.kernel, dilation: self.dilation, extent: vec![h, w] }),
        }
    }

    /// The length this window makes of a sequence of `length`.
    pub fn output_length(&self, op: &'static str, length: usize) -> Result<usize, ShapeError> {
        self.check(op)?;
        self.output_side(length).ok_or(ShapeError::DoesNotFit { op, kernel: self.kernel, dilation: self.dilation, extent: vec![length] })
    }
}

/// How the tensor flowing through a chain is laid out (batch dimension omitted); the ops each
/// take some layouts and give one, so the derive checks a chain's layouts before any size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[C, H, W]` feature maps (batch rank 4).
    Map,
    /// `[C, L]` sequences, channels first as PyTorch's Conv1d takes them (batch rank 3).
    Seq,
    /// `[L]` integer token ids (batch rank 2, `Int`).
    Tokens,
    /// `[features]` vectors (batch rank 2).
    Flat,
}

impl Layout {
    /// Rank of a batch in this layout.
    pub fn rank(self) -> usize {
        match self {
            Layout::Map => 4,
            Layout::Seq => 3,
            Layout::Tokens | Layout::Flat => 2,
        }
    }

    /// How its dimensions are written.
    pub fn dims(self) -> &'static str {
        match self {
            Layout::Map => "a [C, H, W] feature map",
            Layout::Seq => "a [C, L] sequence",
            Layout::Tokens => "token ids [L]",
            Layout::Flat => "a flat [features] vector",
        }
    }

    /// Whether `op`, which takes the layouts `takes` (the first is what it needs most), can
    /// follow this layout: the rule the derive checks over a whole chain before any size is
    /// known.
    pub fn feeds(self, op: &'static str, takes: &[Layout]) -> Result<(), ShapeError> {
        match takes.first() {
            _ if takes.contains(&self) => Ok(()),
            _ if op == "layer_norm" && self == Layout::Map => Err(ShapeError::LayerNormOnMap),
            Some(&needs) => Err(ShapeError::Needs { op, needs, received: self }),
            None => Ok(()),
        }
    }

    /// A skip connection from a layer whose input had the layout `skipped`.
    pub fn residual(self, from: &str, skipped: Layout) -> Result<(), ShapeError> {
        if skipped == self {
            return Ok(());
        }
        Err(ShapeError::Residual { from: from.to_string(), skipped: skipped.dims().to_string(), received: self.dims().to_string() })
    }

    /// The layout an input shape of `n` dimensions has (`tokens`: the chain embeds them).
    pub fn of_input(n: usize, tokens: bool) -> Option<Layout> {
        match n {
            3 => Some(Layout::Map),
            2 => Some(Layout::Seq),
            1 if tokens => Some(Layout::Tokens),
            1 => Some(Layout::Flat),
            _ => None,
        }
    }
}

/// The shape flowing through a layer chain, batch dimension omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A `[channels, height, width]` feature map.
    Map([usize; 3]),
    /// A `[channels, length]` sequence.
    Seq([usize; 2]),
    /// `length` token ids.
    Tokens(usize),
    /// A flat `[features]` vector.
    Flat(usize),
}

impl Shape {
    /// The shape of `layout` with these dimensions, if they are as many as it has.
    pub fn new(layout: Layout, dims: &[usize]) -> Option<Shape> {
        Some(match (layout, dims) {
            (Layout::Map, &[c, h, w]) => Shape::Map([c, h, w]),
            (Layout::Seq, &[c, l]) => Shape::Seq([c, l]),
            (Layout::Tokens, &[l]) => Shape::Tokens(l),
            (Layout::Flat, &[n]) => Shape::Flat(n),
            _ => return None,
        })
    }

    /// Its layout.
    pub fn layout(self) -> Layout {
        match self {
            Shape::Map(_) => Layout::Map,
            Shape::Seq(_) => Layout::Seq,
            Shape::Tokens(_) => Layout::Tokens,
            Shape::Flat(_) => Layout::Flat,
        }
    }

    /// Its dimensions, batch omitted.
    pub fn dims(self) -> Vec<usize> {
        match self {
            Shape::Map(d) => d.to_vec(),
            Shape::Seq(d) => d.to_vec(),
            Shape::Tokens(n) | Shape::Flat(n) => vec![n],
        }
    }

    fn refuse(self, op: &'static str, needs: Layout) -> ShapeError {
        ShapeError::Needs { op, needs, received: self.layout() }
    }

    /// The feature map, or an error naming what `op` receives instead.
    pub fn map(self, op: &'static str) -> Result<[usize; 3], ShapeError> {
        match self {
            Shape::Map(shape) => Ok(shape),
            other => Err(other.refuse(op, Layout::Map)),
        }
    }

    /// The sequence, or an error naming what `op` receives instead.
    pub fn seq(self, op: &'static str) -> Result<[usize; 2], ShapeError> {
        match self {
            Shape::Seq(shape) => Ok(shape),
            other => Err(other.refuse(op, Layout::Seq)),
        }
    }

    /// Channels of a map or a sequence, features of a vector: what a norm normalizes.
    pub fn channels(self) -> usize {
        match self {
            Shape::Map([c, _, _]) | Shape::Seq([c, _]) => c,
            Shape::Tokens(n) | Shape::Flat(n) => n,
        }
    }

    /// Flattened to a vector (a vector stays as it is).
    pub fn flatten(self) -> Shape {
        match self {
            Shape::Map([c, h, w]) => Shape::Flat(c * h * w),
            Shape::Seq([c, l]) => Shape::Flat(c * l),
            Shape::Tokens(n) | Shape::Flat(n) => Shape::Flat(n),
        }
    }

    /// Checks a declared input channel count (`None`: `auto`) against the incoming one.
    pub fn input_channels(self, op: &'static str, declared: Option<usize>) -> Result<usize, ShapeError> {
        let c = match self {
            Shape::Map([c, _, _]) | Shape::Seq([c, _]) => c,
            other => return Err(other.refuse(op, if op.ends_with("1d") { Layout::Seq } else { Layout::Map })),
        };
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

    /// A conv1d with `in_channels` (`None`: `auto`) to `out_channels`, over a sequence.
    pub fn conv1d(self, in_channels: Option<usize>, out_channels: usize, window: Window) -> Result<Shape, ShapeError> {
        let [_, l] = self.seq("conv1d")?;
        self.input_channels("conv1d", in_channels)?;
        Ok(Shape::Seq([out_channels, window.output_length("conv1d", l)?]))
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

    /// A max or average pool over a feature map.
    pub fn pool(self, window: Window) -> Result<Shape, ShapeError> {
        let [c, h, w] = self.map("pooling")?;
        let [oh, ow] = window.output("pooling", [h, w])?;
        Ok(Shape::Map([c, oh, ow]))
    }

    /// A max pool over a sequence.
    pub fn pool1d(self, window: Window) -> Result<Shape, ShapeError> {
        let [c, l] = self.seq("max_pool1d")?;
        Ok(Shape::Seq([c, window.output_length("max_pool1d", l)?]))
    }

    /// An adaptive average pool to `[out_h, out_w]`.
    pub fn adaptive_pool(self, out: [usize; 2]) -> Result<Shape, ShapeError> {
        let [c, _, _] = self.map("adaptive_avg_pool")?;
        Ok(Shape::Map([c, out[0], out[1]]))
    }

    /// An embedding of `vocab` tokens into `dim` channels: token ids `[L]` become a `[dim, L]`
    /// sequence.
    pub fn embedding(self, vocab: usize, dim: usize) -> Result<Shape, ShapeError> {
        match self {
            Shape::Tokens(l) if vocab > 0 && dim > 0 => Ok(Shape::Seq([dim, l])),
            Shape::Tokens(_) => Err(ShapeError::ZeroSize { op: "embedding" }),
            other => Err(other.refuse("embedding", Layout::Tokens)),
        }
    }

    /// A layer norm: over the features of a vector, or the channels at each position of a
    /// sequence. Returns the size it normalizes.
    pub fn layer_norm(self) -> Result<usize, ShapeError> {
        match self {
            Shape::Flat(n) | Shape::Seq([n, _]) => Ok(n),
            Shape::Map(_) => Err(ShapeError::LayerNormOnMap),
            tokens => Err(tokens.refuse("layer_norm", Layout::Seq)),
        }
    }

    /// A group norm of `groups` groups over the channels (of a map, a sequence or a vector).
    pub fn group_norm(self, groups: usize) -> Result<usize, ShapeError> {
        if let Shape::Tokens(_) = self {
            return Err(self.refuse("group_norm", Layout::Map));
        }
        let channels = self.channels();
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(ShapeError::Groups { op: "group_norm", groups, channels });
        }
        Ok(channels)
    }

    /// A skip connection: adds the input of layer `from`, of shape `skipped`, which must be
    /// this shape.
    pub fn residual(self, from: &str, skipped: Shape) -> Result<Shape, ShapeError> {
        if skipped == self {
            return Ok(self);
        }
        Err(ShapeError::Residual { from: from.to_string(), skipped: skipped.to_string(), received: self.to_string() })
    }

    /// Checks a linear layer's declared input size (`None`: `auto`) against the incoming
    /// (flattened) one and returns it; `output` is its output as written, for the message.
    pub fn features(self, declared: Option<usize>, output: &str) -> Result<usize, ShapeError> {
        if let Shape::Tokens(_) = self {
            return Err(self.refuse("linear", Layout::Flat));
        }
        let received = self.flatten().channels();
        match declared {
            Some(declared) if declared != received => {
                let flattened = (!matches!(self, Shape::Flat(_))).then_some(self);
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

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Map([c, h, w]) => write!(f, "a {c}x{h}x{w} feature map"),
            Shape::Seq([c, l]) => write!(f, "a sequence of {l} positions with {c} channels"),
            Shape::Tokens(l) => write!(f, "{l} token ids"),
            Shape::Flat(n) => write!(f, "a flat vector of {n}"),
        }
    }
}

/// Why a chain cannot be built; the caller names the layer (and, at compile time, points at
/// the argument [`ShapeError::blames`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// An op given a layout it does not take.
    Needs { op: &'static str, needs: Layout, received: Layout },
    /// Declared input channels that are not the incoming ones.
    Channels { op: &'static str, declared: usize, received: usize },
    /// A kernel, stride or dilation of 0.
    ZeroWindow { op: &'static str },
    /// `padding = same` with a stride other than 1.
    SameWithStride { op: &'static str, stride: usize },
    /// A window larger than the (padded) feature map (`[h, w]`) or sequence (`[l]`).
    DoesNotFit { op: &'static str, kernel: usize, dilation: usize, extent: Vec<usize> },
    /// Declared input features that are not the incoming ones.
    Features { declared: usize, received: usize, flattened: Option<Shape>, output: String },
    /// `padding = same` on an op that has none.
    NoSamePadding { op: &'static str },
    /// A transposed convolution's output padding not below its stride or dilation.
    OutputPadding { output_padding: usize, stride: usize, dilation: usize },
    /// Padding that takes away the whole output of a transposed convolution.
    PaddedAway { op: &'static str, padding: usize, height: usize, width: usize },
    /// An upsampling scale of 0.
    ZeroScale,
    /// A size of 0 (an embedding's vocabulary or dimension).
    ZeroSize { op: &'static str },
    /// A layer norm on a feature map, which PyTorch's layer norm would normalize over its width.
    LayerNormOnMap,
    /// A group count that does not divide the channels.
    Groups { op: &'static str, groups: usize, channels: usize },
    /// A skip connection between different shapes.
    Residual { from: String, skipped: String, received: String },
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
            ShapeError::Needs { .. }
            | ShapeError::ZeroWindow { .. }
            | ShapeError::ZeroScale
            | ShapeError::ZeroSize { .. }
            | ShapeError::LayerNormOnMap
            | ShapeError::Groups { .. }
            | ShapeError::Residual { .. } => Blame::Op,
        }
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::Needs { op, needs, received } => {
                let fix = match (needs, received) {
                    (Layout::Tokens, _) => "make it the first op of the model, whose input is then token ids [L]",
                    (_, Layout::Tokens) => "embed them first: start the chain with embedding(vocab -> dim)",
                    (_, Layout::Flat) => "move it before the first linear layer",
                    (Layout::Seq, Layout::Map) => "use the 2-d op (conv2d, max_pool)",
                    (Layout::Map, Layout::Seq) => "use the 1-d op (conv1d, max_pool1d)",
                    _ => "change the ops before it",
                };
                write!(f, "{op} needs {} but receives {}; {fix}", needs.dims(), received.dims())
            }
            ShapeError::Channels { op, declared, received } => {
                write!(f, "{op} declares {declared} input channels but receives {received}; write `{op}({received} -> ..)` or `{op}(auto -> ..)`")
            }
            ShapeError::ZeroWindow { op } => write!(f, "{op} kernel, stride and dilation must be at least 1"),
            ShapeError::SameWithStride { op, stride } => {
                write!(f, "{op} padding = same keeps the size only with stride 1 (as PyTorch), not stride {stride}; give the padding in pixels")
            }
            ShapeError::DoesNotFit { op, kernel, dilation, extent } => {
                let dilated = if *dilation > 1 { format!(" (dilation {dilation})") } else { String::new() };
                let input = match extent[..] {
                    [length] => format!("length-{length} sequence"),
                    _ => format!("{} feature map", extent.iter().map(usize::to_string).collect::<Vec<_>>().join("x")),
                };
                write!(
                    f,
                    "{op} kernel {kernel}{dilated} does not fit the {input} it receives; use a smaller kernel, padding, or fewer pooling layers before it"
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
            ShapeError::ZeroSize { op } => write!(f, "{op} sizes must be at least 1"),
            ShapeError::LayerNormOnMap => write!(
                f,
                "layer_norm normalizes a vector's features or a sequence's channels, not a [C, H, W] feature map; use group_norm(1) to normalize over C, H and W, or batch_norm"
            ),
            ShapeError::Groups { op, groups, channels } => {
                write!(f, "{op} groups = {groups} must be at least 1 and divide the {channels} channels it receives")
            }
            ShapeError::Residual { from, skipped, received } => write!(
                f,
                "residual({from}) adds the input of `{from}`, {skipped}, to {received}; a skip connection needs equal shapes (keep the channels and use padding = same)"
            ),
            ShapeError::Features { declared, received, flattened, output } => {
                let dims =
                    flattened.map(|s| format!(" ({} flattened)", s.dims().iter().map(usize::to_string).collect::<Vec<_>>().join("x"))).unwrap_or_default();
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

    /// A text classifier's chain: token ids, an embedding, conv1d, max_pool1d, linear.
    #[test]
    fn sequences_follow_pytorch_conv1d() {
        let w = |kernel, stride, padding| Window { kernel, stride, padding: Padding::Explicit(padding), dilation: 1 };
        let s = Shape::Tokens(20).embedding(1000, 32).unwrap();
        assert_eq!(s, Shape::Seq([32, 20]));
        let s = s.conv1d(Some(32), 64, w(3, 1, 1)).unwrap().pool1d(w(2, 2, 0)).unwrap();
        assert_eq!(s, Shape::Seq([64, 10]));
        assert_eq!(s.linear(None, 4).unwrap(), (Shape::Flat(4), 640));
        assert_eq!(Shape::Seq([4, 5]).conv1d(None, 4, w(3, 2, 0)), Ok(Shape::Seq([4, 2])));
        let err = Shape::Seq([4, 2]).conv1d(None, 4, w(3, 1, 0)).unwrap_err().to_string();
        assert!(err.contains("kernel 3 does not fit the length-2 sequence"), "{err}");
        assert_eq!(Shape::Seq([8, 3]).layer_norm(), Ok(8));
        assert_eq!(Shape::Map([8, 3, 3]).layer_norm(), Err(ShapeError::LayerNormOnMap));
        assert_eq!(Shape::Map([8, 3, 3]).group_norm(4), Ok(8));
        assert_eq!(Shape::Seq([6, 3]).group_norm(4), Err(ShapeError::Groups { op: "group_norm", groups: 4, channels: 6 }));
        let err = Shape::Map([3, 8, 8]).embedding(10, 4).unwrap_err().to_string();
        assert!(err.contains("embedding needs token ids [L] but receives a [C, H, W] feature map; make it the first op"), "{err}");
        let err = Shape::Tokens(8).features(None, "2").unwrap_err().to_string();
        assert!(err.contains("linear needs a flat [features] vector but receives token ids [L]; embed them first"), "{err}");
        let err = Shape::Map([3, 8, 8]).conv1d(None, 4, w(3, 1, 0)).unwrap_err().to_string();
        assert!(err.contains("conv1d needs a [C, L] sequence but receives a [C, H, W] feature map; use the 2-d op"), "{err}");
        assert_eq!(Layout::Map.feeds("layer_norm", &[Layout::Flat, Layout::Seq]), Err(ShapeError::LayerNormOnMap));
        assert_eq!(Layout::Seq.feeds("relu", &[Layout::Map, Layout::Seq, Layout::Flat]), Ok(()));
        let err = Shape::Seq([4, 9]).features(Some(35), "2").unwrap_err().to_string();
        assert!(err.contains("receives 36 (4x9 flattened)"), "{err}");
    }

    #[test]
    fn a_residual_adds_equal_shapes_only() {
        assert_eq!(Shape::Map([8, 4, 4]).residual("a", Shape::Map([8, 4, 4])), Ok(Shape::Map([8, 4, 4])));
        let err = Shape::Map([16, 4, 4]).residual("a", Shape::Map([8, 4, 4])).unwrap_err().to_string();
        assert!(err.starts_with("residual(a) adds the input of `a`, a 8x4x4 feature map, to a 16x4x4 feature map"), "{err}");
    }

    #[test]
    fn errors_say_what_to_write() {
        let err = Shape::Map([3, 4, 4]).conv2d(Some(3), 8, k(5)).unwrap_err();
        assert_eq!((err.blames(), err.to_string().contains("kernel 5 does not fit the 4x4")), (Blame::Kernel, true));
        let err = Shape::Map([3, 8, 8]).conv2d(Some(4), 8, k(3)).unwrap_err().to_string();
        assert!(err.contains("declares 4 input channels but receives 3; write `conv2d(3 -> ..)`"), "{err}");
        let err = Shape::Map([2, 3, 3]).features(Some(17), "classes").unwrap_err().to_string();
        assert!(err.contains("receives 18 (2x3x3 flattened); write `linear(18 -> classes)`"), "{err}");
        let err = Shape::Flat(10).pool(k(2)).unwrap_err().to_string();
        assert!(err.contains("pooling needs a [C, H, W] feature map but receives a flat [features] vector; move it before the first linear"), "{err}");
    }
}
