//! Layer construction and functional ops as the derive's generated code calls them. A
//! hand-written `forward` can call the same functions (they keep Burn's layer types, so
//! checkpoints stay Burn records).

use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig1d,
    PaddingConfig2d,
};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Int, Tensor};

use crate::Result;
use crate::precision::cast;
use crate::shape::{Padding, Window};

/// The conv2d layer `layer`, `in_channels -> out_channels`, with PyTorch's default
/// initialization; sizes of 0 and groups that do not divide the channels are errors naming it.
pub fn conv2d(layer: &str, in_channels: usize, out_channels: usize, window: Window, groups: usize, bias: bool, device: &Device) -> Result<Conv2d> {
    check_sizes(layer, "conv2d", in_channels, out_channels)?;
    if groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
        return Err(size_error(layer, format!("conv2d groups = {groups} must be at least 1 and divide both {in_channels} and {out_channels} channels")));
    }
    if window.kernel == 0 || window.stride == 0 || window.dilation == 0 {
        return Err(size_error(layer, "conv2d kernel, stride and dilation must be at least 1".into()));
    }
    check_weights(layer, "conv2d", &[out_channels, in_channels / groups, window.kernel, window.kernel])?;
    let padding = match window.padding {
        Padding::Valid => PaddingConfig2d::Valid,
        Padding::Same => PaddingConfig2d::Same,
        Padding::Explicit(p) => PaddingConfig2d::Explicit(p, p, p, p),
    };
    Ok(Conv2dConfig::new([in_channels, out_channels], [window.kernel, window.kernel])
        .with_stride([window.stride, window.stride])
        .with_dilation([window.dilation, window.dilation])
        .with_groups(groups)
        .with_padding(padding)
        .with_bias(bias)
        .init(device))
}

/// The transposed conv2d layer `layer` (PyTorch's ConvTranspose2d), `in_channels ->
/// out_channels`; sizes of 0, `same` padding and groups that do not divide the channels are
/// errors naming it.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    layer: &str,
    in_channels: usize,
    out_channels: usize,
    window: Window,
    output_padding: usize,
    groups: usize,
    bias: bool,
    device: &Device,
) -> Result<ConvTranspose2d> {
    check_sizes(layer, "conv_transpose2d", in_channels, out_channels)?;
    if groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
        return Err(size_error(
            layer,
            format!("conv_transpose2d groups = {groups} must be at least 1 and divide both {in_channels} and {out_channels} channels"),
        ));
    }
    let padding = match window.padding {
        Padding::Valid => 0,
        Padding::Explicit(p) => p,
        Padding::Same => return Err(size_error(layer, fulmen_rules::shape::ShapeError::NoSamePadding { op: "conv_transpose2d" }.to_string())),
    };
    window.check("conv_transpose2d").map_err(|e| size_error(layer, e.to_string()))?;
    check_weights(layer, "conv_transpose2d", &[in_channels, out_channels / groups, window.kernel, window.kernel])?;
    Ok(ConvTranspose2dConfig::new([in_channels, out_channels], [window.kernel, window.kernel])
        .with_stride([window.stride, window.stride])
        .with_dilation([window.dilation, window.dilation])
        .with_padding([padding, padding])
        .with_padding_out([output_padding, output_padding])
        .with_groups(groups)
        .with_bias(bias)
        .init(device))
}

/// The conv1d layer `layer` over `[B, C, L]` sequences, `in_channels -> out_channels`, with
/// PyTorch's default initialization and its `same` padding (the odd position after).
pub fn conv1d(layer: &str, in_channels: usize, out_channels: usize, window: Window, groups: usize, bias: bool, device: &Device) -> Result<Conv1d> {
    check_sizes(layer, "conv1d", in_channels, out_channels)?;
    if groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
        return Err(size_error(layer, format!("conv1d groups = {groups} must be at least 1 and divide both {in_channels} and {out_channels} channels")));
    }
    window.check("conv1d").map_err(|e| size_error(layer, e.to_string()))?;
    check_weights(layer, "conv1d", &[out_channels, in_channels / groups, window.kernel])?;
    let padding = match window.padding {
        Padding::Valid => PaddingConfig1d::Valid,
        Padding::Same => {
            let total = window.dilation * (window.kernel - 1);
            PaddingConfig1d::Explicit(total / 2, total - total / 2)
        }
        Padding::Explicit(p) => PaddingConfig1d::Explicit(p, p),
    };
    Ok(Conv1dConfig::new(in_channels, out_channels, window.kernel)
        .with_stride(window.stride)
        .with_dilation(window.dilation)
        .with_groups(groups)
        .with_padding(padding)
        .with_bias(bias)
        .init(device))
}

/// The conv1d forward pass, its input in the weights' dtype.
pub fn conv1d_forward(layer: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    layer.forward(cast(x, layer.weight.val().dtype()))
}

/// Max pooling over a `[B, C, L]` sequence (stride defaults to the kernel, as PyTorch).
pub fn max_pool1d(x: Tensor<3>, window: Window) -> Tensor<3> {
    let [p, _] = pool_padding(window);
    let options = MaxPoolOptions::new([window.kernel]).with_stride([window.stride]).with_padding([p]).with_dilation([window.dilation]);
    burn::tensor::module::max_pool1d(x, options)
}

/// The embedding `layer` of `vocab` token ids into `dim` channels, initialized `N(0, 1)` as
/// PyTorch's.
pub fn embedding(layer: &str, vocab: usize, dim: usize, device: &Device) -> Result<Embedding> {
    check_sizes(layer, "embedding", vocab, dim)?;
    check_weights(layer, "embedding", &[vocab, dim])?;
    Ok(EmbeddingConfig::new(vocab, dim).init(device))
}

/// Token ids `[B, L]` looked up as a `[B, dim, L]` sequence (channels first, as conv1d takes
/// it). Ids outside the table are clamped into it first, so a bad id never reads past it (the
/// generated steps report such ids, [`StepContext::checked_tokens`](crate::StepContext::checked_tokens)).
pub fn embedding_forward(layer: &Embedding, tokens: Tensor<2, Int>) -> Tensor<3> {
    let vocab = layer.weight.val().dims()[0] as i64;
    layer.forward(tokens.clamp(0, vocab - 1)).swap_dims(1, 2)
}

/// The layer norm `layer` over `size` features or channels (eps 1e-5, as PyTorch).
pub fn layer_norm(layer: &str, size: usize, device: &Device) -> Result<LayerNorm> {
    check_sizes(layer, "layer_norm", size, size)?;
    Ok(LayerNormConfig::new(size).init(device))
}

/// The layer norm forward pass over a vector's features, or over the channels at each position
/// of a `[B, C, L]` sequence; in its parameters' dtype, the output in the input's.
pub fn layer_norm_forward<const D: usize>(layer: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let dtype = x.dtype();
    let x = cast(x, layer.gamma.val().dtype());
    let y = if D == 3 { layer.forward(x.swap_dims(1, 2)).swap_dims(1, 2) } else { layer.forward(x) };
    cast(y, dtype)
}

/// The group norm `layer`: `groups` groups over `channels` (eps 1e-5, affine, as PyTorch).
pub fn group_norm(layer: &str, groups: usize, channels: usize, device: &Device) -> Result<GroupNorm> {
    check_sizes(layer, "group_norm", channels, channels)?;
    if groups == 0 || !channels.is_multiple_of(groups) {
        return Err(size_error(layer, fulmen_rules::shape::ShapeError::Groups { op: "group_norm", groups, channels }.to_string()));
    }
    Ok(GroupNormConfig::new(groups, channels).init(device))
}

/// The group norm forward pass, in its parameters' dtype, the output in the input's.
pub fn group_norm_forward<const D: usize>(layer: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    let dtype = x.dtype();
    let param = layer.gamma.as_ref().map_or(dtype, |g| g.val().dtype());
    cast(layer.forward(cast(x, param)), dtype)
}

/// The linear layer `layer`, `in_features -> out_features`; a size of 0 is an error naming it.
pub fn linear(layer: &str, in_features: usize, out_features: usize, bias: bool, device: &Device) -> Result<Linear> {
    check_sizes(layer, "linear", in_features, out_features)?;
    check_weights(layer, "linear", &[in_features, out_features])?;
    Ok(LinearConfig::new(in_features, out_features).with_bias(bias).init(device))
}

/// The batch norm `layer` over `channels` (momentum 0.1, eps 1e-5, as PyTorch).
pub fn batch_norm(layer: &str, channels: usize, device: &Device) -> Result<BatchNorm> {
    check_sizes(layer, "batch_norm", channels, channels)?;
    Ok(BatchNormConfig::new(channels).init(device))
}

/// A layer of 0 inputs or outputs (`num_classes = 0`, say) is refused when the model is built.
fn check_sizes(layer: &str, op: &str, input: usize, output: usize) -> Result<()> {
    if input == 0 || output == 0 {
        return Err(size_error(
            layer,
            format!("{op} {input} -> {output} has a size of 0; every size must be at least 1 (check the hyperparameters it comes from)"),
        ));
    }
    Ok(())
}

/// Weights that cannot be allocated (a size from a hyperparameter gone wrong) are an error
/// naming the layer, not an abort: the size must be countable and reservable on the host.
fn check_weights(layer: &str, op: &str, dims: &[usize]) -> Result<()> {
    let bytes = dims.iter().try_fold(std::mem::size_of::<f32>(), |acc, &d| acc.checked_mul(d));
    if bytes.is_some_and(|b| Vec::<u8>::new().try_reserve_exact(b).is_ok()) {
        return Ok(());
    }
    let size = bytes.map_or_else(|| "more bytes than an address space holds".to_string(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64));
    Err(size_error(layer, format!("{op} weights {dims:?} need {size}, more than this machine can allocate; check the hyperparameters its sizes come from")))
}

fn size_error(layer: &str, reason: String) -> crate::Error {
    crate::Error::Shape { layer: layer.to_string(), reason }
}

/// The conv2d forward pass: `layer.forward(x)`, through fulmen's fast kernels on flex. Like
/// every `*_forward` here, it casts its input to the layer's weights' dtype, as autocast does
/// under mixed precision (a no-op in f32).
pub fn conv2d_forward(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let x = cast(x, layer.weight.val().dtype());
    let [_, _, h, w] = x.dims();
    let pad = |config: &PaddingConfig2d| match *config {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => [same_padding(layer.kernel_size[0], layer.stride[0], h), same_padding(layer.kernel_size[1], layer.stride[1], w)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    };
    let options = ConvOptions::new_with_padding(layer.stride, pad(&layer.padding), layer.dilation, layer.groups);
    crate::kernels::conv2d(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()), options)
}

/// The transposed conv2d forward pass, its input in the weights' dtype.
pub fn conv_transpose2d_forward(layer: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    layer.forward(cast(x, layer.weight.val().dtype()))
}

/// Nearest-neighbour upsampling by an integer `scale` (PyTorch's `Upsample(scale_factor,
/// mode="nearest")`).
pub fn upsample(x: Tensor<4>, scale: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    burn::tensor::module::interpolate(x, InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h * scale, w * scale]))
}

/// The linear forward pass: `layer.forward(x)`, its input in the weights' dtype. Low-precision
/// layers on flex compute in f32 from their rounded weights and round the output once, as the
/// conv kernels do (flex's f16 / bf16 products convert element by element).
pub fn linear_forward<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    crate::kernels::timing::measure(crate::kernels::timing::Op::LinearForward, || {
        let dtype = layer.weight.val().dtype();
        let x = cast(x, dtype);
        if !crate::kernels::widens(&x) {
            return layer.forward(x);
        }
        // The check `Linear::forward` makes, before a mismatch reaches the matmul.
        let [d_input, _] = layer.weight.val().dims();
        assert_eq!(x.dims()[D - 1], d_input, "linear: the input has {} features, the layer takes {d_input}", x.dims()[D - 1]);
        let wide = |t: Tensor<1>| cast(t, DType::F32);
        let out = burn::tensor::module::linear(cast(x, DType::F32), cast(layer.weight.val(), DType::F32), layer.bias.as_ref().map(|b| wide(b.val())));
        cast(out, dtype)
    })
}

/// The batch norm forward pass in its parameters' dtype (f32 under mixed precision, as
/// autocast keeps it), the output in the input's dtype.
pub fn batch_norm_forward<const D: usize>(layer: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let dtype = x.dtype();
    cast(layer.forward(cast(x, layer.gamma.val().dtype())), dtype)
}

/// Softmax over the features (dim 1), computed in f32 as autocast does.
pub fn softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    burn::tensor::activation::softmax(cast(x, DType::F32), 1)
}

/// Log-softmax over the features (dim 1), computed in f32 as autocast does.
pub fn log_softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    burn::tensor::activation::log_softmax(cast(x, DType::F32), 1)
}

/// ReLU, on all cores on flex ([`crate::kernels::relu`]).
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    crate::kernels::relu(x)
}

/// Burn's `Same` padding along one axis: (before, after), the odd pixel after.
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = if out > 0 { ((out - 1) * stride + kernel).saturating_sub(size) } else { 0 };
    (total / 2, total - total / 2)
}

/// Max pooling over `window` (stride defaults to the kernel, as PyTorch).
pub fn max_pool2d(x: Tensor<4>, window: Window) -> Tensor<4> {
    let p = pool_padding(window);
    let options = MaxPoolOptions::new([window.kernel, window.kernel])
        .with_stride([window.stride, window.stride])
        .with_padding(p)
        .with_dilation([window.dilation, window.dilation]);
    crate::kernels::max_pool2d(x, options)
}

/// Average pooling over `window` (padding counted, as PyTorch's default).
pub fn avg_pool2d(x: Tensor<4>, window: Window) -> Tensor<4> {
    let p = pool_padding(window);
    let options = AvgPoolOptions::new([window.kernel, window.kernel]).with_stride([window.stride, window.stride]).with_padding(p);
    burn::tensor::module::avg_pool2d(x, options)
}

/// Adaptive average pooling to `[h, w]`.
pub fn adaptive_avg_pool2d(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    burn::tensor::module::adaptive_avg_pool2d(x, size)
}

/// Pools take no `same` padding (the derive rejects it), so it reads as none here.
fn pool_padding(window: Window) -> [usize; 2] {
    match window.padding {
        Padding::Valid | Padding::Same => [0, 0],
        Padding::Explicit(p) => [p, p],
    }
}

/// Dropout with probability `prob`, scaling kept values by `1 / (1 - prob)`. Active only while
/// training (on an autodiff device, as Burn's `Dropout`); validation, test and predict run on
/// the plain device and pass `x` through.
pub fn dropout<const D: usize>(x: Tensor<D>, prob: f64) -> Tensor<D> {
    if prob == 0.0 || !x.device().is_autodiff() {
        return x;
    }
    let keep = 1.0 - prob;
    let mask = cast(x.random_like(burn::tensor::Distribution::Bernoulli(keep)), x.dtype());
    (x * mask).div_scalar(keep)
}

/// A skip connection: `x + skipped`, the skipped input in `x`'s dtype (mixed precision may
/// have changed it on the way).
pub fn residual<const D: usize>(x: Tensor<D>, skipped: Tensor<D>) -> Tensor<D> {
    let dtype = x.dtype();
    x + cast(skipped, dtype)
}

/// Checks a window's own rules (sizes at least 1, `same` only with stride 1) where `new()`
/// tracks no shape.
pub fn check_window(layer: &str, op: &'static str, window: Window) -> Result<()> {
    window.check(op).map_err(|e| size_error(layer, e.to_string()))
}

/// Checks an upsampling scale where `new()` tracks no shape.
pub fn check_scale(layer: &str, scale: usize) -> Result<()> {
    match scale {
        0 => Err(size_error(layer, fulmen_rules::shape::ShapeError::ZeroScale.to_string())),
        _ => Ok(()),
    }
}

/// Checks a dropout probability taken from the hyperparameters (`new()` calls it).
pub fn check_dropout(layer: &str, prob: f64) -> Result<()> {
    fulmen_rules::range::dropout_probability(prob).map_err(|reason| size_error(layer, format!("{reason}; give the hyperparameter a `range = 0.0..1.0`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_size_zero_and_bad_groups_are_refused_naming_the_layer() {
        let device = Device::flex();
        let window = Window { kernel: 3, stride: 1, padding: Padding::Valid, dilation: 1 };
        let err = linear("fc3", 128, 0, true, &device).unwrap_err().to_string();
        assert!(err.contains("fc3") && err.contains("128 -> 0"), "{err}");
        assert!(conv2d("conv1", 0, 8, window, 1, true, &device).unwrap_err().to_string().contains("conv1"));
        assert!(conv2d("conv1", 4, 6, window, 4, true, &device).unwrap_err().to_string().contains("groups = 4"));
        assert!(batch_norm("bn", 0, &device).is_err());
        let err = linear("fc1", 1 << 40, 1 << 30, true, &device).unwrap_err().to_string();
        assert!(err.contains("fc1") && err.contains("allocate"), "{err}");
        assert!(linear("fc1", 3, 2, true, &device).is_ok() && conv2d("c", 4, 8, window, 2, false, &device).is_ok());
    }

    /// Burn's tensors come out with the shapes the shape rules predict.
    #[test]
    fn transposed_convolution_and_upsampling_have_the_predicted_shapes() {
        let device = Device::flex();
        let window = Window { kernel: 3, stride: 2, padding: Padding::Explicit(1), dilation: 1 };
        let layer = conv_transpose2d("up", 4, 6, window, 1, 2, true, &device).unwrap();
        let x = Tensor::<4>::ones([2, 4, 7, 5], &device);
        let mut tracker = crate::shape::ShapeTracker::image([4, 7, 5]);
        tracker.apply("up", |s| s.conv_transpose2d(Some(4), 6, window, 1)?.upsample(3)).unwrap();
        let y = upsample(conv_transpose2d_forward(&layer, x), 3);
        assert_eq!(y.dims()[1..], [6, 42, 30]);
        assert_eq!(tracker.shape(), crate::shape::Shape::Map([6, 42, 30]));
        let same = Window { padding: Padding::Same, ..window };
        assert!(conv_transpose2d("up", 4, 6, same, 0, 1, true, &device).unwrap_err().to_string().contains("takes no `same` padding"));
        assert!(conv_transpose2d("up", 4, 6, window, 0, 4, true, &device).unwrap_err().to_string().contains("groups = 4"));
    }

    /// A text classifier's layers: Burn's tensors have the shapes the rules predict, and a
    /// token id past the table is clamped, not read.
    #[test]
    fn sequence_layers_have_the_predicted_shapes() {
        let device = Device::flex();
        let w = |kernel, padding| Window { kernel, stride: 1, padding, dilation: 1 };
        let table = embedding("emb", 10, 4, &device).unwrap();
        let tokens = Tensor::<2, Int>::from_ints([[1, 2, 3, 4, 5, 6, 7, 99]], &device);
        let x = embedding_forward(&table, tokens);
        assert_eq!(x.dims(), [1, 4, 8]);
        let conv = conv1d("c", 4, 6, w(4, Padding::Same), 2, true, &device).unwrap();
        let normed = layer_norm_forward(&layer_norm("n", 6, &device).unwrap(), conv1d_forward(&conv, x));
        // Normalized over the channels at each position.
        let mean = normed.clone().mean_dim(1).into_data().try_to_vec::<f32>().unwrap();
        assert!(mean.iter().all(|m| m.abs() < 1e-4), "{mean:?}");
        let x = group_norm_forward(&group_norm("g", 3, 6, &device).unwrap(), normed);
        let pooled = max_pool1d(x.clone(), Window { stride: 2, ..w(3, Padding::Valid) });
        let mut tracker = crate::shape::ShapeTracker::input(crate::shape::Layout::Tokens, &[8]).unwrap();
        tracker.apply("c", |s| s.embedding(10, 4)?.conv1d(Some(4), 6, w(4, Padding::Same))?.pool1d(Window { stride: 2, ..w(3, Padding::Valid) })).unwrap();
        assert_eq!((x.dims(), pooled.dims()), ([1, 6, 8], [1, 6, 3]));
        assert_eq!(tracker.shape(), crate::shape::Shape::Seq([6, 3]));
        assert!(group_norm("g", 4, 6, &device).unwrap_err().to_string().contains("groups = 4 must be at least 1 and divide the 6 channels"));
        assert!(embedding("emb", 0, 4, &device).unwrap_err().to_string().contains("emb"));
    }

    #[test]
    fn windows_and_scales_are_checked_without_a_shape() {
        let window = Window { kernel: 0, stride: 1, padding: Padding::Valid, dilation: 1 };
        assert!(
            check_window("pool", "pooling", window).unwrap_err().to_string().contains("layer `pool`: pooling kernel, stride and dilation must be at least 1")
        );
        assert!(check_window("pool", "pooling", Window { kernel: 2, ..window }).is_ok());
        assert!(check_scale("up", 0).unwrap_err().to_string().contains("upsample scale must be at least 1"));
    }

    #[test]
    fn dropout_probabilities_outside_zero_one_are_refused() {
        assert!(check_dropout("fc1", 0.0).is_ok() && check_dropout("fc1", 0.99).is_ok());
        for bad in [1.0, -0.1, f64::NAN] {
            let err = check_dropout("fc1", bad).unwrap_err().to_string();
            assert!(err.contains("fc1") && err.contains("[0, 1)"), "{err}");
        }
    }
}
