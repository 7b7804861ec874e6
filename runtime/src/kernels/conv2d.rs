//! f32 conv2d on NCHW host buffers: forward and the three gradients, by im2col + gemm per image
//! (images in parallel). Stride, asymmetric padding, dilation, groups, with or without bias.
//! 3×3 stride-1 convs with enough channels go to [`winograd`] (2.25× less gemm work). Other
//! stride-1 convs (and stride-1 input gradients, which are forward convs) use the wide layout
//! ([`Wide`]), whose im2col is one contiguous copy per row; other strides gather row by row.

use rayon::prelude::*;

use super::elementwise::zeroed;
use super::matmul::{View, matmul};
use super::winograd;

/// The sizes of one conv2d call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides.
    pub stride: [usize; 2],
    /// (before, after) padding per spatial axis.
    pub padding: [(usize, usize); 2],
    /// Dilations.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// Output height and width.
    pub output: [usize; 2],
}

impl Geometry {
    /// The geometry of input `[N, C, H, W]` and weight `[C_out, C / groups, KH, KW]`, or why
    /// they do not fit together.
    pub fn new(x: [usize; 4], w: [usize; 4], stride: [usize; 2], padding: [(usize, usize); 2], dilation: [usize; 2], groups: usize) -> Result<Self, String> {
        let [batch, in_channels, h, wd] = x;
        let [out_channels, per_group, kh, kw] = w;
        if groups == 0 || in_channels % groups != 0 || out_channels % groups != 0 || per_group * groups != in_channels {
            return Err(format!("conv2d: {in_channels} input channels, weight {w:?} and {groups} groups do not fit"));
        }
        if stride.contains(&0) || dilation.contains(&0) || kh == 0 || kw == 0 {
            return Err("conv2d: kernel, stride and dilation must be positive".into());
        }
        let out = |axis: usize, size: usize, k: usize| {
            let padded = size + padding[axis].0 + padding[axis].1;
            let span = dilation[axis] * (k - 1) + 1;
            (padded >= span).then(|| (padded - span) / stride[axis] + 1)
        };
        let (Some(oh), Some(ow)) = (out(0, h, kh), out(1, wd, kw)) else {
            return Err(format!("conv2d: a {kh}×{kw} kernel (dilation {dilation:?}) does not fit a padded {h}×{wd} input"));
        };
        Ok(Geometry { batch, in_channels, input: [h, wd], out_channels, kernel: [kh, kw], stride, padding, dilation, groups, output: [oh, ow] })
    }

    /// Rows of one group's im2col matrix: `C/groups · KH · KW`.
    fn k(&self) -> usize {
        self.in_channels / self.groups * self.kernel[0] * self.kernel[1]
    }
    /// Output positions per image.
    fn p(&self) -> usize {
        self.output[0] * self.output[1]
    }
    fn image_len(&self) -> usize {
        self.in_channels * self.input[0] * self.input[1]
    }
    fn out_image_len(&self) -> usize {
        self.out_channels * self.p()
    }
    fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }
    /// Stride-1 convs take the wide path (see [`Wide`]).
    fn wide(&self) -> Option<Wide> {
        (self.stride == [1, 1]).then(|| Wide::new(self))
    }
    /// Whether one image's gemm should itself run on several threads (few images).
    fn parallel_gemm(&self) -> bool {
        self.batch < rayon::current_num_threads()
    }

    /// For output index `o` along `axis` and kernel tap `t`: the input index, if inside.
    fn source(&self, axis: usize, o: usize, t: usize) -> Option<usize> {
        let i = (o * self.stride[axis] + t * self.dilation[axis]).checked_sub(self.padding[axis].0)?;
        (i < self.input[axis]).then_some(i)
    }

    /// Along `axis`, for kernel tap `t`: the outputs (a range) whose tap lands inside the input,
    /// and the input index of the first of them (later ones step by the stride).
    fn valid(&self, axis: usize, t: usize) -> (std::ops::Range<usize>, usize) {
        let outputs = self.output[axis];
        let start = (0..outputs).find(|&o| self.source(axis, o, t).is_some()).unwrap_or(outputs);
        let end = (start..outputs).rev().find(|&o| self.source(axis, o, t).is_some()).map_or(start, |e| e + 1);
        (start..end, self.source(axis, start, t).unwrap_or(0))
    }
}

/// Fills `col` (`[K, P]`, row-major) with group `group`'s input patches of one image.
fn im2col(g: &Geometry, image: &[f32], group: usize, col: &mut [f32]) {
    let ([kh, kw], [ow, w], [sy, sx]) = (g.kernel, [g.output[1], g.input[1]], g.stride);
    let per_group = g.in_channels / g.groups;
    let (p, plane_len) = (g.p(), g.input[0] * w);
    let (rows, columns): (Vec<_>, Vec<_>) = ((0..kh).map(|ty| g.valid(0, ty)).collect(), (0..kw).map(|tx| g.valid(1, tx)).collect());
    for c in 0..per_group {
        let plane = &image[(group * per_group + c) * plane_len..][..plane_len];
        for (ty, (ys, iy0)) in rows.iter().enumerate() {
            for (tx, (xs, ix0)) in columns.iter().enumerate() {
                let row = &mut col[((c * kh + ty) * kw + tx) * p..][..p];
                row[..ys.start * ow].fill(0.0);
                row[ys.end * ow..].fill(0.0);
                for (k, oy) in ys.clone().enumerate() {
                    let out = &mut row[oy * ow..][..ow];
                    let line = &plane[(iy0 + k * sy) * w..][..w];
                    out[..xs.start].fill(0.0);
                    out[xs.end..].fill(0.0);
                    let out = &mut out[xs.clone()];
                    if sx == 1 {
                        out.copy_from_slice(&line[*ix0..][..out.len()]);
                    } else {
                        for (j, v) in out.iter_mut().enumerate() {
                            *v = line[ix0 + j * sx];
                        }
                    }
                }
            }
        }
    }
}

/// Adds `col` (`[K, P]`) back into group `group`'s channels of one image's input gradient.
fn col2im(g: &Geometry, col: &[f32], group: usize, image: &mut [f32]) {
    let ([kh, kw], [ow, w], [sy, sx]) = (g.kernel, [g.output[1], g.input[1]], g.stride);
    let per_group = g.in_channels / g.groups;
    let (p, plane_len) = (g.p(), g.input[0] * w);
    let (rows, columns): (Vec<_>, Vec<_>) = ((0..kh).map(|ty| g.valid(0, ty)).collect(), (0..kw).map(|tx| g.valid(1, tx)).collect());
    for c in 0..per_group {
        let plane = &mut image[(group * per_group + c) * plane_len..][..plane_len];
        for (ty, (ys, iy0)) in rows.iter().enumerate() {
            for (tx, (xs, ix0)) in columns.iter().enumerate() {
                let row = &col[((c * kh + ty) * kw + tx) * p..][..p];
                for (k, oy) in ys.clone().enumerate() {
                    let line = &mut plane[(iy0 + k * sy) * w..][..w];
                    for (j, v) in row[oy * ow..][xs.clone()].iter().enumerate() {
                        line[ix0 + j * sx] += v;
                    }
                }
            }
        }
    }
}

/// The stride-1 layout that needs no per-row im2col work: output rows are computed `width`
/// (the padded input width) wide instead of `OW`, so each im2col row is one contiguous run of
/// the (padded) input plane, copied in a single move. The `width − OW` extra columns per row
/// are junk, dropped when the result is compacted (forward) or multiplied by zeros (weight
/// gradient). Costs `width / OW − 1` more gemm work (7–20% on the tutorial's shapes) and saves
/// the row-by-row gathers, which cost more.
#[derive(Debug, Clone, Copy)]
struct Wide {
    /// Padded input height and width.
    plane: [usize; 2],
    /// Wide positions per image: `OH · width`.
    len: usize,
    /// Whether the input needs a padded copy first.
    padded: bool,
}

impl Wide {
    fn new(g: &Geometry) -> Self {
        let [(top, bottom), (left, right)] = g.padding;
        let plane = [g.input[0] + top + bottom, g.input[1] + left + right];
        Wide { plane, len: g.output[0] * plane[1], padded: top + bottom + left + right > 0 }
    }

    fn plane_len(&self) -> usize {
        self.plane[0] * self.plane[1]
    }

    /// Group `group`'s input channels of one image, zero-padded into `buffer` when needed.
    fn source<'a>(&self, g: &Geometry, image: &'a [f32], group: usize, buffer: &'a mut Vec<f32>) -> &'a [f32] {
        let cig = g.in_channels / g.groups;
        let [h, w] = g.input;
        let channels = &image[group * cig * h * w..][..cig * h * w];
        if !self.padded {
            return channels;
        }
        let ([_, pw], [(top, _), (left, _)]) = (self.plane, g.padding);
        buffer.clear();
        buffer.resize(cig * self.plane_len(), 0.0);
        for (plane, input) in buffer.chunks_mut(self.plane_len()).zip(channels.chunks(h * w)) {
            for (y, line) in input.chunks(w).enumerate() {
                plane[(top + y) * pw + left..][..w].copy_from_slice(line);
            }
        }
        buffer
    }

    /// `col` (`[K, len]`): row `(c, ty, tx)` is plane `c` from the tap's offset on.
    fn im2col(&self, g: &Geometry, source: &[f32], col: &mut [f32]) {
        let ([kh, kw], [dy, dx], pw) = (g.kernel, g.dilation, self.plane[1]);
        let mut rows = col.chunks_mut(self.len);
        for plane in source.chunks(self.plane_len()) {
            for ty in 0..kh {
                for tx in 0..kw {
                    let row = rows.next().expect("K rows");
                    // Only junk columns run past the plane's end (see the type's note).
                    let run = &plane[(ty * dy * pw + tx * dx).min(plane.len())..];
                    let n = run.len().min(self.len);
                    row[..n].copy_from_slice(&run[..n]);
                    row[n..].fill(0.0);
                }
            }
        }
    }

    /// Copies the valid `OW` columns of each wide row of `wide` (`[C, len]`) into `out` (`[C, P]`).
    fn compact(&self, g: &Geometry, wide: &[f32], out: &mut [f32]) {
        let ([oh, ow], pw) = (g.output, self.plane[1]);
        for (wide, out) in wide.chunks(self.len).zip(out.chunks_mut(oh * ow)) {
            for (oy, out) in out.chunks_mut(ow).enumerate() {
                out.copy_from_slice(&wide[oy * pw..][..ow]);
            }
        }
    }

    /// `grad` (`[C, P]`) spread to wide rows (`[C, len]`) with zeros in the junk columns.
    fn widen(&self, g: &Geometry, grad: &[f32], wide: &mut [f32]) {
        let ([oh, ow], pw) = (g.output, self.plane[1]);
        for (grad, wide) in grad.chunks(oh * ow).zip(wide.chunks_mut(self.len)) {
            for (oy, line) in grad.chunks(ow).enumerate() {
                let row = &mut wide[oy * pw..][..pw];
                row[..ow].copy_from_slice(line);
                row[ow..].fill(0.0);
            }
        }
    }

    /// Adds the weight gradient of images `images` to `dw`, per image and group:
    /// `dW_g (cog × K) += G_wide (cog × len) · colᵀ (len × K)`.
    fn weight_grad(&self, g: &Geometry, x: &[f32], grad: &[f32], images: std::ops::Range<usize>, dw: &mut [f32], parallel_gemm: bool) {
        let (k, p, cog) = (g.k(), g.p(), g.out_per_group());
        let (mut padded, mut col, mut wide_grad) = (Vec::new(), vec![0.0f32; k * self.len], vec![0.0f32; cog * self.len]);
        for n in images {
            let image = &x[n * g.image_len()..][..g.image_len()];
            for group in 0..g.groups {
                self.im2col(g, self.source(g, image, group, &mut padded), &mut col);
                self.widen(g, &grad[n * g.out_image_len() + group * cog * p..][..cog * p], &mut wide_grad);
                let (lhs, rhs) = (View::row_major(&wide_grad, cog, self.len), View::row_major(&col, k, self.len));
                matmul(&mut dw[group * cog * k..][..cog * k], lhs, rhs.t(), true, parallel_gemm);
            }
        }
    }
}

/// [`forward`] for stride 1, by the wide layout.
fn forward_wide(g: &Geometry, wide: Wide, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let (k, p, cog, parallel_gemm) = (g.k(), g.p(), g.out_per_group(), g.parallel_gemm());
    let buffers = || (Vec::new(), vec![0.0f32; k * wide.len], vec![0.0f32; cog * wide.len]);
    out.par_chunks_mut(g.out_image_len()).enumerate().for_each_init(buffers, |(padded, col, result), (n, out_image)| {
        let image = &x[n * g.image_len()..][..g.image_len()];
        for group in 0..g.groups {
            wide.im2col(g, wide.source(g, image, group, padded), col);
            if let Some(bias) = bias {
                for (co, row) in result.chunks_mut(wide.len).enumerate() {
                    row.fill(bias[group * cog + co]);
                }
            }
            let weight = View::row_major(&w[group * cog * k..][..cog * k], cog, k);
            matmul(result, weight, View::row_major(col, k, wide.len), bias.is_some(), parallel_gemm);
            wide.compact(g, result, &mut out_image[group * cog * p..][..cog * p]);
        }
    });
}

/// The forward pass: `[N, C_out, OH, OW]` from input `x`, weight `w` and an optional bias.
pub fn forward(g: &Geometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (k, p, cog) = (g.k(), g.p(), g.out_per_group());
    let mut out = zeroed::<f32>(g.batch * g.out_image_len());
    if out.is_empty() {
        return out;
    }
    if winograd::applies(g) {
        winograd::forward(g, x, w, bias, &mut out);
        return out;
    }
    if let Some(wide) = g.wide() {
        forward_wide(g, wide, x, w, bias, &mut out);
        return out;
    }
    let parallel_gemm = g.parallel_gemm();
    out.par_chunks_mut(g.out_image_len()).enumerate().for_each_init(
        || vec![0.0f32; k * p],
        |col, (n, out_image)| {
            let image = &x[n * g.image_len()..][..g.image_len()];
            for group in 0..g.groups {
                im2col(g, image, group, col);
                let dst = &mut out_image[group * cog * p..][..cog * p];
                if let Some(bias) = bias {
                    for (co, row) in dst.chunks_mut(p).enumerate() {
                        row.fill(bias[group * cog + co]);
                    }
                }
                let weight = View::row_major(&w[group * cog * k..][..cog * k], cog, k);
                matmul(dst, weight, View::row_major(col, k, p), bias.is_some(), parallel_gemm);
            }
        },
    );
    out
}

/// The input gradient of a stride-1 conv as a forward conv of the output gradient with the
/// flipped, channel-swapped weight (a full correlation): the gemm is `C/groups × (C_out/groups ·
/// KH · KW)` by `H · W`, with no col2im pass. `None` when the padding exceeds the dilated kernel
/// (then [`backward`]'s col2im path applies).
fn input_grad_as_conv(g: &Geometry, w: &[f32], grad: &[f32]) -> Option<Vec<f32>> {
    let ([kh, kw], d) = (g.kernel, g.dilation);
    let reach = [d[0] * (kh - 1), d[1] * (kw - 1)];
    if g.stride != [1, 1] || (0..2).any(|a| g.padding[a].0 > reach[a] || g.padding[a].1 > reach[a]) {
        return None;
    }
    let (cig, cog) = (g.in_channels / g.groups, g.out_per_group());
    // W'[ci, co, ty, tx] = W[co, ci, KH-1-ty, KW-1-tx] within each group.
    let mut flipped = vec![0.0f32; w.len()];
    for group in 0..g.groups {
        for co in 0..cog {
            for ci in 0..cig {
                for ty in 0..kh {
                    for tx in 0..kw {
                        let src = (((group * cog + co) * cig + ci) * kh + (kh - 1 - ty)) * kw + (kw - 1 - tx);
                        let dst = (((group * cig + ci) * cog + co) * kh + ty) * kw + tx;
                        flipped[dst] = w[src];
                    }
                }
            }
        }
    }
    let padding = [(reach[0] - g.padding[0].0, reach[0] - g.padding[0].1), (reach[1] - g.padding[1].0, reach[1] - g.padding[1].1)];
    let transposed = Geometry::new([g.batch, g.out_channels, g.output[0], g.output[1]], [g.in_channels, cog, kh, kw], [1, 1], padding, d, g.groups).ok()?;
    (transposed.output == g.input).then(|| forward(&transposed, grad, &flipped, None))
}

/// The sum of `values` in 8 interleaved lanes (vectorizes; a plain f32 `sum` runs serially).
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let blocks = values.chunks_exact(8);
    let tail: f32 = blocks.remainder().iter().sum();
    for block in blocks {
        for (lane, v) in lanes.iter_mut().zip(block) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Which gradients to compute.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// The input's.
    pub x: bool,
    /// The weight's.
    pub weight: bool,
    /// The bias's.
    pub bias: bool,
}

/// The gradients of (input, weight, bias), each when wanted.
pub type Gradients = (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>);

/// The gradients of (input, weight, bias) from the output gradient `grad`, those `wanted`.
/// The weight gradient is summed over fixed image chunks in order, so it is deterministic.
pub fn backward(g: &Geometry, x: &[f32], w: &[f32], grad: &[f32], wanted: Wanted) -> Gradients {
    let (k, p, cog) = (g.k(), g.p(), g.out_per_group());
    // Per channel in parallel, each summing its images in order (the same sums as one thread).
    let bias = wanted.bias.then(|| {
        let image_len = g.out_image_len();
        (0..g.out_channels).into_par_iter().map(|co| (0..g.batch).fold(0.0f32, |db, n| db + lane_sum(&grad[n * image_len + co * p..][..p]))).collect()
    });
    // Stride 1 (most convs): the input gradient is itself a forward conv.
    let direct_dx = if wanted.x { input_grad_as_conv(g, w, grad) } else { None };
    let winograd_dw = (wanted.weight && winograd::applies(g)).then(|| winograd::weight_grad(g, x, grad));
    let wanted = Wanted { x: wanted.x && direct_dx.is_none(), weight: wanted.weight && winograd_dw.is_none(), ..wanted };
    if !wanted.x && !wanted.weight {
        return (direct_dx, winograd_dw, bias);
    }
    let (parallel_gemm, wide) = (g.parallel_gemm(), g.wide());
    let weight_len = g.out_channels * k;
    let mut dx = zeroed::<f32>(if wanted.x { g.batch * g.image_len() } else { 0 });
    let chunk = g.batch.div_ceil(rayon::current_num_threads()).max(1);
    let mut slots: Vec<Option<&mut [f32]>> =
        if wanted.x { dx.chunks_mut(g.image_len().max(1)).map(Some).collect() } else { (0..g.batch).map(|_| None).collect() };
    let partial: Vec<Vec<f32>> = slots
        .par_chunks_mut(chunk)
        .enumerate()
        .map(|(c, images)| {
            let mut dw = vec![0.0f32; if wanted.weight { weight_len } else { 0 }];
            let first = c * chunk;
            if let (true, Some(wide)) = (wanted.weight, wide) {
                wide.weight_grad(g, x, grad, first..first + images.len(), &mut dw, parallel_gemm);
            }
            let image_weight = wanted.weight && wide.is_none();
            if !image_weight && !wanted.x {
                return dw;
            }
            let (mut col, mut dcol) = (vec![0.0f32; if image_weight { k * p } else { 0 }], vec![0.0f32; if wanted.x { k * p } else { 0 }]);
            for (i, slot) in images.iter_mut().enumerate() {
                let n = first + i;
                let image = &x[n * g.image_len()..][..g.image_len()];
                let grad_image = &grad[n * g.out_image_len()..][..g.out_image_len()];
                for group in 0..g.groups {
                    let grad_group = View::row_major(&grad_image[group * cog * p..][..cog * p], cog, p);
                    if image_weight {
                        // dW_g (cog × K) += G_g (cog × P) · col_gᵀ (P × K)
                        im2col(g, image, group, &mut col);
                        matmul(&mut dw[group * cog * k..][..cog * k], grad_group, View::row_major(&col, k, p).t(), true, parallel_gemm);
                    }
                    if let Some(dx_image) = slot.as_deref_mut() {
                        // dcol (K × P) = W_gᵀ (K × cog) · G_g (cog × P), folded back onto the input.
                        let weight = View::row_major(&w[group * cog * k..][..cog * k], cog, k);
                        matmul(&mut dcol, weight.t(), grad_group, false, parallel_gemm);
                        col2im(g, &dcol, group, dx_image);
                    }
                }
            }
            dw
        })
        .collect();
    let weight = wanted.weight.then(|| {
        let mut dw = vec![0.0f32; weight_len];
        for part in &partial {
            for (a, b) in dw.iter_mut().zip(part) {
                *a += b;
            }
        }
        dw
    });
    (direct_dx.or(wanted.x.then_some(dx)), winograd_dw.or(weight), bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution, the definition.
    fn naive(g: &Geometry, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
        let ([kh, kw], [oh, ow], [h, wd]) = (g.kernel, g.output, g.input);
        let (per_group, cog) = (g.in_channels / g.groups, g.out_per_group());
        let mut out = vec![0.0; g.batch * g.out_channels * oh * ow];
        for n in 0..g.batch {
            for co in 0..g.out_channels {
                let group = co / cog;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b[co]);
                        for c in 0..per_group {
                            for ty in 0..kh {
                                for tx in 0..kw {
                                    if let (Some(iy), Some(ix)) = (g.source(0, oy, ty), g.source(1, ox, tx)) {
                                        let ci = group * per_group + c;
                                        acc += x[((n * g.in_channels + ci) * h + iy) * wd + ix] * w[((co * per_group + c) * kh + ty) * kw + tx];
                                    }
                                }
                            }
                        }
                        out[((n * g.out_channels + co) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * 0.37 + seed).sin() * 1.7).fract()).collect()
    }

    #[test]
    fn forward_matches_the_definition_across_strides_paddings_dilations_and_groups() {
        let cases = [
            ([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
            ([1, 4, 9, 8], [6, 2, 3, 2], [2, 1], [(1, 2), (0, 1)], [1, 2], 2),
            ([3, 2, 5, 5], [2, 2, 1, 1], [1, 2], [(2, 2), (2, 2)], [1, 1], 1),
            ([1, 6, 6, 7], [6, 1, 3, 3], [2, 2], [(1, 1), (1, 1)], [2, 2], 6),
            // Stride 1 (the wide path): asymmetric padding, dilation, groups, a 1-wide output.
            ([2, 4, 7, 6], [4, 2, 2, 3], [1, 1], [(1, 0), (2, 1)], [2, 1], 2),
            ([1, 2, 4, 3], [3, 2, 2, 3], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
            // Nine images on two threads: uneven chunks.
            ([9, 2, 5, 4], [3, 2, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
            // Winograd: odd outputs (edge tiles), asymmetric padding, one image, a task per image.
            ([3, 8, 7, 6], [9, 8, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
            ([1, 10, 5, 8], [8, 10, 3, 3], [1, 1], [(0, 2), (1, 0)], [1, 1], 1),
            ([5, 8, 31, 33], [8, 8, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
            // Winograd, several images per task, bottom padding past the last input row.
            ([7, 8, 5, 6], [8, 8, 3, 3], [1, 1], [(0, 2), (2, 1)], [1, 1], 1),
        ];
        let two_threads = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for (xs, ws, stride, padding, dilation, groups) in cases {
            let g = Geometry::new(xs, ws, stride, padding, dilation, groups).unwrap();
            let x = values(xs.iter().product(), 0.1);
            let w = values(ws.iter().product(), 0.7);
            let b = values(ws[0], 1.3);
            for bias in [None, Some(b.as_slice())] {
                let fast = two_threads.install(|| forward(&g, &x, &w, bias));
                let slow = naive(&g, &x, &w, bias);
                let err = fast.iter().zip(&slow).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(err < 1e-5, "{xs:?} {ws:?}: max error {err}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences_of_the_definition() {
        // Stride 2 (im2col + col2im) and stride 1 with padding (the wide path, input gradient as a conv).
        let cases = [
            ([2, 2, 5, 4], [4, 1, 3, 2], [2, 1], [(1, 0), (1, 1)], [1, 2], 2),
            ([2, 4, 6, 5], [4, 2, 3, 2], [1, 1], [(1, 2), (0, 1)], [2, 1], 2),
            ([9, 2, 5, 4], [4, 2, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
            // Winograd (forward, input gradient as a conv, weight gradient): odd and asymmetric.
            ([3, 8, 5, 6], [8, 8, 3, 3], [1, 1], [(1, 1), (0, 1)], [1, 1], 1),
        ];
        let two_threads = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for (xs, ws, stride, padding, dilation, groups) in cases {
            let g = Geometry::new(xs, ws, stride, padding, dilation, groups).unwrap();
            let x = values(xs.iter().product(), 0.3);
            let w = values(ws.iter().product(), 0.9);
            let b = values(ws[0], 0.2);
            let out_len = g.batch * g.out_image_len();
            let weights = values(out_len, 2.0); // loss = Σ weights · out
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 { naive(&g, x, w, Some(b)).iter().zip(&weights).map(|(o, c)| (*o as f64) * (*c as f64)).sum() };
            let (dx, dw, db) = two_threads.install(|| backward(&g, &x, &w, &weights, Wanted { x: true, weight: true, bias: true }));
            let check = |analytic: &[f32], value: &dyn Fn(usize, f32) -> f64, what: &str| {
                for i in (0..analytic.len()).step_by(3) {
                    let h = 1e-2f32;
                    let numeric = (value(i, h) - value(i, -h)) / (2.0 * h as f64);
                    assert!((numeric - analytic[i] as f64).abs() < 1e-2, "{xs:?} {what}[{i}]: analytic {} vs numeric {numeric}", analytic[i]);
                }
            };
            check(
                &dx.unwrap(),
                &|i, h| {
                    let mut x = x.clone();
                    x[i] += h;
                    loss(&x, &w, &b)
                },
                "dx",
            );
            check(
                &dw.unwrap(),
                &|i, h| {
                    let mut w = w.clone();
                    w[i] += h;
                    loss(&x, &w, &b)
                },
                "dw",
            );
            check(
                &db.unwrap(),
                &|i, h| {
                    let mut b = b.clone();
                    b[i] += h;
                    loss(&x, &w, &b)
                },
                "db",
            );
        }
    }
}
