//! f32 2-D max pooling on NCHW host buffers, with the argmax indices the backward needs (flat
//! `iy * W + ix` within each input plane, as Burn's flex backend stores them). Window bounds are
//! computed once per output row and column, not per element; planes run in parallel.

use rayon::prelude::*;

use super::elementwise::zeroed;

/// The sizes of one max-pool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// `N · C` planes.
    pub planes: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Strides.
    pub stride: [usize; 2],
    /// Padding on each side.
    pub padding: [usize; 2],
    /// Dilations.
    pub dilation: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

impl Geometry {
    /// The geometry for input `[N, C, H, W]`, or why the window does not fit.
    pub fn new(x: [usize; 4], kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> Result<Self, String> {
        let [n, c, h, w] = x;
        if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
            return Err("max_pool2d: kernel, stride and dilation must be positive".into());
        }
        let out = |axis: usize, size: usize| {
            let padded = size + 2 * padding[axis];
            let span = dilation[axis] * (kernel[axis] - 1) + 1;
            (padded >= span).then(|| (padded - span) / stride[axis] + 1)
        };
        let (Some(oh), Some(ow)) = (out(0, h), out(1, w)) else {
            return Err(format!("max_pool2d: a {kernel:?} window does not fit a padded {h}×{w} input"));
        };
        Ok(Geometry { planes: n * c, input: [h, w], kernel, stride, padding, dilation, output: [oh, ow] })
    }

    /// For each output index along `axis`: the input indices its window covers.
    fn taps(&self, axis: usize) -> Vec<Vec<usize>> {
        (0..self.output[axis])
            .map(|o| {
                (0..self.kernel[axis])
                    .filter_map(|t| (o * self.stride[axis] + t * self.dilation[axis]).checked_sub(self.padding[axis]).filter(|&i| i < self.input[axis]))
                    .collect()
            })
            .collect()
    }
}

/// The pooled values `[N, C, OH, OW]` and the flat input index of each maximum. The first
/// maximum in scan order wins; a NaN wins over numbers (as Burn's flex).
pub fn forward(g: &Geometry, x: &[f32]) -> (Vec<f32>, Vec<i64>) {
    let ([h, w], [oh, ow]) = (g.input, g.output);
    let (rows, cols) = (g.taps(0), g.taps(1));
    let mut out = zeroed::<f32>(g.planes * oh * ow);
    let mut indices = vec![-1i64; g.planes * oh * ow];
    if out.is_empty() {
        return (out, indices);
    }
    let two_by_two = g.kernel == [2, 2] && g.stride == [2, 2] && g.padding == [0, 0] && g.dilation == [1, 1];
    out.par_chunks_mut(oh * ow).zip(indices.par_chunks_mut(oh * ow)).enumerate().for_each(|(plane, (out, idx))| {
        let x = &x[plane * h * w..][..h * w];
        if two_by_two {
            pool_2x2(x, w, [oh, ow], out, idx);
        } else {
            pool_plane(x, w, (&rows, &cols), out, idx);
        }
    });
    (out, indices)
}

/// One plane of width `w`, any window: `taps` lists the input rows and columns each output
/// row and column covers.
fn pool_plane(x: &[f32], w: usize, (rows, cols): (&[Vec<usize>], &[Vec<usize>]), out: &mut [f32], idx: &mut [i64]) {
    let ow = cols.len();
    for (oy, iys) in rows.iter().enumerate() {
        for (ox, ixs) in cols.iter().enumerate() {
            let (mut best, mut at) = (f32::NEG_INFINITY, -1i64);
            for &iy in iys {
                for &ix in ixs {
                    let v = x[iy * w + ix];
                    if at < 0 || v > best || v.is_nan() {
                        best = v;
                        at = (iy * w + ix) as i64;
                    }
                }
            }
            out[oy * ow + ox] = best;
            idx[oy * ow + ox] = at;
        }
    }
}

/// The common 2×2 window at stride 2 without padding, on one plane of width `w`: the same scan
/// order and NaN rule as the general loop, with the four taps unrolled.
fn pool_2x2(x: &[f32], w: usize, [oh, ow]: [usize; 2], out: &mut [f32], idx: &mut [i64]) {
    for oy in 0..oh {
        let top = 2 * oy * w;
        let (upper, lower) = (&x[top..][..2 * ow], &x[top + w..][..2 * ow]);
        let (out, idx) = (&mut out[oy * ow..][..ow], &mut idx[oy * ow..][..ow]);
        for ox in 0..ow {
            let i = 2 * ox;
            let taps = [(upper[i], top + i), (upper[i + 1], top + i + 1), (lower[i], top + w + i), (lower[i + 1], top + w + i + 1)];
            let (mut best, mut at) = taps[0];
            for &(v, j) in &taps[1..] {
                if v > best || v.is_nan() {
                    (best, at) = (v, j);
                }
            }
            out[ox] = best;
            idx[ox] = at as i64;
        }
    }
}

/// The input gradient `[N, C, H, W]`: each output gradient added at its maximum's index.
pub fn backward(g: &Geometry, grad: &[f32], indices: &[i64]) -> Vec<f32> {
    let ([h, w], [oh, ow]) = (g.input, g.output);
    let mut dx = zeroed::<f32>(g.planes * h * w);
    if dx.is_empty() || oh * ow == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w).enumerate().for_each(|(plane, dx)| {
        // Written before it is read: a fresh zeroed allocation read first maps the shared zero
        // page, and each later write then costs a copy-on-write fault and a TLB shootdown.
        dx.fill(0.0);
        let (grad, idx) = (&grad[plane * oh * ow..][..oh * ow], &indices[plane * oh * ow..][..oh * ow]);
        for (g, &i) in grad.iter().zip(idx) {
            if i >= 0 {
                dx[i as usize] += g;
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_with_padding_stride_and_dilation_pick_their_maxima() {
        // One 4×5 plane, values 0..20 with a NaN and a tie.
        let mut x: Vec<f32> = (0..20).map(|v| v as f32).collect();
        x[6] = 100.0;
        x[8] = 100.0;
        let g = Geometry::new([1, 1, 4, 5], [2, 2], [2, 2], [1, 1], [1, 1]).unwrap();
        assert_eq!(g.output, [3, 3]);
        let (out, idx) = forward(&g, &x);
        assert_eq!(out, vec![0.0, 2.0, 4.0, 10.0, 100.0, 100.0, 15.0, 17.0, 19.0]);
        assert_eq!(idx, vec![0, 2, 4, 10, 6, 8, 15, 17, 19]);
        let dx = backward(&g, &[1.0; 9], &idx);
        assert_eq!(dx.iter().sum::<f32>(), 9.0);
        assert_eq!((dx[6], dx[8], dx[7]), (1.0, 1.0, 0.0));

        let mut y = x.clone();
        y[12] = f32::NAN;
        let g = Geometry::new([1, 1, 4, 5], [3, 3], [1, 1], [0, 0], [1, 1]).unwrap();
        let (out, idx) = forward(&g, &y);
        assert!(out[0].is_nan() && idx[0] == 12, "a NaN wins: {out:?}");
        let g = Geometry::new([1, 1, 4, 5], [2, 2], [1, 1], [0, 0], [2, 2]).unwrap();
        let (out, idx) = forward(&g, &x);
        // Dilation 2: output (0, 0) looks at x[0], x[2], x[10], x[12].
        assert_eq!((out[0], idx[0]), (12.0, 12));
    }

    #[test]
    fn the_unrolled_2x2_window_matches_the_general_loop() {
        // 7×9: odd sizes leave a last row and column out, as floor mode does; ties and NaNs.
        let mut x: Vec<f32> = (0..63).map(|i| ((i * 7) % 5) as f32).collect();
        x[20] = f32::NAN;
        x[21] = f32::NAN;
        let g = Geometry::new([1, 1, 7, 9], [2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
        let (mut out, mut idx) = (vec![0.0; 12], vec![0; 12]);
        pool_plane(&x, 9, (&g.taps(0), &g.taps(1)), &mut out, &mut idx);
        let (fast_out, fast_idx) = forward(&g, &x);
        assert_eq!(fast_idx, idx);
        assert_eq!(fast_out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), out.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
}
