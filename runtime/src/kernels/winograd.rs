//! Winograd F(2×2, 3×3) for 3×3, stride-1, undilated, ungrouped convs: every conv of the
//! tutorial's CNN after the first, and their input gradients (which are such convs too).
//!
//! The padded input is cut into 4×4 tiles overlapping by 2 and each is transformed,
//! `V = Bᵀ d B`; each filter likewise, `U = G g Gᵀ`. One gemm per tile element `e` (16 in all)
//! multiplies them over the channels, `M[e] = U[e] · V[e]`, and the output transform folds each
//! 4×4 product back into a 2×2 output tile, `Y = Aᵀ M A`. That is 16 multiplies per channel
//! pair and tile where im2col needs 36: 2.25× less gemm work. The weight gradient runs the same
//! algorithm backwards: `dM = A dY Aᵀ`, `dU[e] = dM[e] · V[e]ᵀ`, `dW = Gᵀ dU G`. (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016.) The transforms add and halve
//! only, so results differ from im2col by rounding alone.

use rayon::prelude::*;

use super::conv2d::Geometry;
use super::matmul::{View, matmul};

/// Below this many input or output channels the 16 gemms are too thin to pay for the transforms.
const MIN_CHANNELS: usize = 8;
/// Images are grouped so that one task's gemms are about this many tiles wide.
const TILES_PER_TASK: usize = 256;

/// Whether `g` takes this path (an empty input or output plane stays on im2col).
pub(super) fn applies(g: &Geometry) -> bool {
    let shape = g.kernel == [3, 3] && g.stride == [1, 1] && g.dilation == [1, 1] && g.groups == 1;
    let empty = g.input.contains(&0) || g.output.contains(&0);
    shape && g.in_channels.min(g.out_channels) >= MIN_CHANNELS && !empty
}

/// How the outputs are cut into 2×2 tiles and the images into tasks.
///
/// Each row of tiles has one extra junk tile at its end (`span = tw + 1` slots), so that every
/// transform is an elementwise op over all of a task's tile slots at once (one long run per
/// channel, across its images): a run whose neighbour one tile right sits at offset 1. The
/// junk tiles cost `1 / tw` more gemm work; their outputs are never written, and their output
/// gradients are zero, so they add nothing to the weight gradient.
#[derive(Debug, Clone, Copy)]
struct Tiling {
    /// Tile rows and (valid) tile columns per image.
    tiles: [usize; 2],
    /// Tile slots per row: `tiles[1] + 1`.
    span: usize,
    /// Images per task.
    images: usize,
}

impl Tiling {
    fn new(g: &Geometry) -> Self {
        let tiles = [g.output[0].div_ceil(2), g.output[1].div_ceil(2)];
        let span = tiles[1] + 1;
        let per_thread = g.batch.div_ceil(rayon::current_num_threads()).max(1);
        let images = TILES_PER_TASK.div_ceil(tiles[0] * span).clamp(1, per_thread);
        Tiling { tiles, span, images }
    }

    /// Tile slots per image, junk included.
    fn per_image(&self) -> usize {
        self.tiles[0] * self.span
    }

    /// Tile slots in a full task.
    fn task(&self) -> usize {
        self.images * self.per_image()
    }

    /// The length of one parity plane: a full task's tile slots plus one, so that the run one
    /// tile right stays inside.
    fn plane(&self) -> usize {
        self.task() + 1
    }

    /// Whether one task's gemms should themselves run on several threads (fewer tasks than threads).
    fn parallel_gemm(&self, g: &Geometry) -> bool {
        g.batch.div_ceil(self.images) < rayon::current_num_threads()
    }
}

/// Per-thread buffers: one channel of the task's padded input images split by row and column
/// parity, sixteen runs of temporaries, and the task's two `[16, C, T]` matrices. Kept per
/// thread between calls ([`with_scratch`]), so a training step allocates and zeroes none of it.
#[derive(Default)]
struct Scratch {
    /// Eight parity planes, `[4 · shift + 2 · row parity + column parity]`: with `shift` 0,
    /// slot `n · per_image + r · span + x / 2` holds image `n`'s padded input `(2r + parity, x)`;
    /// with `shift` 1 the same one tile row lower (`2r + 2 + parity`), so that the rows a tile
    /// reads all sit at its own slot. Cells that no input reaches stay zero.
    quarters: Vec<f32>,
    runs: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
    /// Tile slots in the current task: `V` and `M` use the first `16 · C · tiles` elements.
    tiles: usize,
}

impl Scratch {
    /// Sizes the buffers for `g` and zeroes the parity planes.
    fn prepare(&mut self, g: &Geometry, t: &Tiling) {
        let tiles = t.task();
        self.quarters.clear();
        self.quarters.resize(8 * t.plane(), 0.0);
        for (buffer, len) in [(&mut self.runs, 16 * tiles), (&mut self.v, 16 * g.in_channels * tiles), (&mut self.m, 16 * g.out_channels * tiles)] {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers, prepared for `g`. (Taken out of the thread
/// local for the call, so a nested call on the same thread, which rayon's work stealing
/// allows while a parallel gemm waits, gets fresh buffers instead of a double borrow.)
fn with_scratch<R>(g: &Geometry, t: &Tiling, f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCH.take();
    s.prepare(g, t);
    let result = f(&mut s);
    SCRATCH.set(s);
    result
}

/// One transform of a task, run by [`transform`].
enum Pass<'a> {
    /// [`input_transform`] of these images.
    Input(&'a [f32]),
    /// [`output_transform`] with this bias into these output images.
    Output(Option<&'a [f32]>, &'a mut [f32]),
    /// [`grad_transform`] of these output-gradient images.
    Grad(&'a [f32]),
}

struct Job<'a> {
    g: &'a Geometry,
    t: &'a Tiling,
    s: &'a mut Scratch,
    pass: Pass<'a>,
}

impl pulp::WithSimd for Job<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Job { g, t, s, pass } = self;
        match pass {
            Pass::Input(images) => input_transform(g, t, images, s),
            Pass::Output(bias, out) => output_transform(g, t, s, bias, out),
            Pass::Grad(grad) => grad_transform(g, t, grad, s),
        }
    }
}

/// Runs a transform compiled for the widest vector instructions this CPU has: pulp builds the
/// (plain, safe) loops once per instruction set and picks at run time. Built for the baseline
/// x86-64 target alone, the compiler would vectorize them 4 floats wide.
fn transform(g: &Geometry, t: &Tiling, s: &mut Scratch, pass: Pass<'_>) {
    pulp::Arch::new().dispatch(Job { g, t, s, pass });
}

/// `U[e][co][ci]` (`[16, C_out, C]`): `G g Gᵀ` of each 3×3 filter `g = w[co][ci]`.
fn weight_transform(g: &Geometry, w: &[f32]) -> Vec<f32> {
    let filters = g.out_channels * g.in_channels;
    let mut u = vec![0.0f32; 16 * filters];
    // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]] applied to three values.
    let g3 = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    for (f, k) in w.chunks_exact(9).enumerate() {
        let columns = [g3(k[0], k[3], k[6]), g3(k[1], k[4], k[7]), g3(k[2], k[5], k[8])];
        for i in 0..4 {
            for (j, value) in g3(columns[0][i], columns[1][i], columns[2][i]).into_iter().enumerate() {
                u[(4 * i + j) * filters + f] = value;
            }
        }
    }
    u
}

/// The weight gradient `[C_out, C, 3, 3]` from `dU` (`[16, C_out, C]`): `Gᵀ dU G` per filter.
fn weight_transform_back(g: &Geometry, du: &[f32]) -> Vec<f32> {
    let filters = g.out_channels * g.in_channels;
    // Gᵀ applied to four values.
    let gt = |x: [f32; 4]| [x[0] + 0.5 * (x[1] + x[2]), 0.5 * (x[1] - x[2]), 0.5 * (x[1] + x[2]) + x[3]];
    let mut dw = vec![0.0f32; 9 * filters];
    for (f, out) in dw.chunks_exact_mut(9).enumerate() {
        let at = |i: usize, j: usize| du[(4 * i + j) * filters + f];
        let rows: [[f32; 3]; 4] = std::array::from_fn(|i| gt([at(i, 0), at(i, 1), at(i, 2), at(i, 3)]));
        for c in 0..3 {
            let column = gt([rows[0][c], rows[1][c], rows[2][c], rows[3][c]]);
            for r in 0..3 {
                out[3 * r + c] = column[r];
            }
        }
    }
    dw
}

/// `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]` across four runs:
/// `a − c`, `b + c`, `c − b`, `b − d`.
#[inline(always)]
fn b_transpose(a: &[f32], b: &[f32], c: &[f32], d: &[f32], out: [&mut [f32]; 4]) {
    let [o0, o1, o2, o3] = out;
    let n = o0.len();
    let (a, b, c, d, o1, o2, o3) = (&a[..n], &b[..n], &c[..n], &d[..n], &mut o1[..n], &mut o2[..n], &mut o3[..n]);
    for x in 0..n {
        (o0[x], o1[x], o2[x], o3[x]) = (a[x] - c[x], b[x] + c[x], c[x] - b[x], b[x] - d[x]);
    }
}

/// The runs `offset..offset + len` of the four planes `elements` (tile elements `e`) of
/// the 16 `[C, T]` planes, without allocating (this runs per channel and image).
#[inline(always)]
fn runs_of<'a>(planes: &'a mut [&mut [f32]], elements: [usize; 4], offset: usize, len: usize) -> [&'a mut [f32]; 4] {
    planes.get_disjoint_mut(elements).expect("four distinct tile elements").map(|p| &mut p[offset..][..len])
}

/// The starts of the 8-element blocks that cover `0..n` (for `n ≥ 8`): every multiple of 8,
/// then, for a ragged end, one more block overlapping the one before it from the last even
/// start at or below `n − 8`. With an odd `n`, element `n − 1` is left over.
#[inline(always)]
fn blocks(n: usize) -> impl Iterator<Item = usize> {
    let last = (!n.is_multiple_of(8)).then(|| (n - 8) & !1);
    (0..n / 8).map(|i| 8 * i).chain(last)
}

/// `even[x] = src[2x]`, `odd[x] = src[2x + 1]`. Eight at a time through fixed-size arrays,
/// which the compiler turns into vector shuffles (a plain stride-2 loop stays scalar); a
/// ragged end is one more overlapping block rather than a scalar tail.
#[inline(always)]
fn deinterleave(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let n = src.len();
    if n < 8 {
        for (i, v) in src.iter().enumerate() {
            let half = if i % 2 == 0 { &mut *even } else { &mut *odd };
            half[i / 2] = *v;
        }
        return;
    }
    for start in blocks(n) {
        let b: &[f32; 8] = src[start..start + 8].try_into().expect("an 8-element block");
        even[start / 2..start / 2 + 4].copy_from_slice(&[b[0], b[2], b[4], b[6]]);
        odd[start / 2..start / 2 + 4].copy_from_slice(&[b[1], b[3], b[5], b[7]]);
    }
    if n % 2 == 1 {
        even[n / 2] = src[n - 1];
    }
}

/// `dst[2x] = even[x] + bias`, `dst[2x + 1] = odd[x] + bias`, eight at a time (see [`deinterleave`]).
#[inline(always)]
fn interleave(even: &[f32], odd: &[f32], bias: f32, dst: &mut [f32]) {
    let n = dst.len();
    if n < 8 {
        for (i, v) in dst.iter_mut().enumerate() {
            *v = if i % 2 == 0 { even[i / 2] } else { odd[i / 2] } + bias;
        }
        return;
    }
    for start in blocks(n) {
        let (e, o) = (&even[start / 2..start / 2 + 4], &odd[start / 2..start / 2 + 4]);
        dst[start..start + 8].copy_from_slice(&[e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3]].map(|v| v + bias));
    }
    if n % 2 == 1 {
        dst[n - 1] = even[n / 2] + bias;
    }
}

/// Input row `line` starting at padded column `left`, split into the even and odd padded
/// columns of its parity planes' row (`even[x]` is padded column `2x`, `odd[x]` is `2x + 1`).
#[inline(always)]
fn spread(line: &[f32], left: usize, even: &mut [f32], odd: &mut [f32]) {
    let skip = left % 2;
    if skip == 1 {
        odd[left / 2] = line[0];
    }
    let first = (left + skip) / 2;
    deinterleave(&line[skip..], &mut even[first..], &mut odd[first..]);
}

/// `V` (`[16, C, T]`, `T` = the task's tile slots, image-major) from consecutive input images:
/// `Bᵀ d B` per tile, one channel of all the task's images at a time.
#[inline(always)]
fn input_transform(g: &Geometry, t: &Tiling, images: &[f32], s: &mut Scratch) {
    let ([h, w], [(top, _), (left, _)], span, len) = (g.input, g.padding, t.span, t.per_image());
    let (plane, tiles, rows) = (t.plane(), s.tiles, t.tiles[0]);
    let mut planes: Vec<&mut [f32]> = s.v[..16 * g.in_channels * tiles].chunks_mut(g.in_channels * tiles).collect();
    for c in 0..g.in_channels {
        // Spread the channel over the shift-0 parity planes (every channel and image writes the
        // same cells) …
        let input = |n: usize, y: usize| &images[(n * g.in_channels + c) * h * w + y * w..][..w];
        for n in 0..tiles / len {
            for y in (0..h).filter(|y| (top + y) / 2 < rows) {
                let at = 2 * ((top + y) % 2) * plane + n * len + (top + y) / 2 * span;
                let (even, odd) = s.quarters[at..].split_at_mut(plane);
                spread(input(n, y), left, even, odd);
            }
        }
        // … copy them one tile row on into the shift-1 planes, and put each image's plane row
        // `rows` (padded input rows 2 · rows and 2 · rows + 1) in its last row there.
        for p in 0..4 {
            s.quarters.copy_within(p * plane + span..p * plane + tiles, (4 + p) * plane);
        }
        for n in 0..tiles / len {
            for parity in 0..2 {
                let at = (4 + 2 * parity) * plane + n * len + (rows - 1) * span;
                let (even, odd) = s.quarters[at..].split_at_mut(plane);
                match (2 * rows + parity).checked_sub(top).filter(|&y| y < h) {
                    Some(y) => spread(input(n, y), left, even, odd),
                    None => {
                        even[..span].fill(0.0);
                        odd[..span].fill(0.0);
                    }
                }
            }
        }
        // d[k][l] (tile row k, column l) is plane (k / 2, k % 2, l % 2) from offset l / 2.
        // Bᵀ down the columns into T[i][l] …
        let d = |k: usize, l: usize| &s.quarters[(4 * (k / 2) + 2 * (k % 2) + l % 2) * plane + l / 2..][..tiles];
        let mut runs = split_runs::<16>(&mut s.runs, tiles);
        for l in 0..4 {
            let [r0, r1, r2, r3, ..] = &mut runs[l * 4..] else { unreachable!("16 runs") };
            b_transpose(d(0, l), d(1, l), d(2, l), d(3, l), [r0, r1, r2, r3]);
        }
        // … then B along the rows, into V[4i + j].
        for i in 0..4 {
            let out = runs_of(&mut planes, [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3], c * tiles, tiles);
            b_transpose(runs[i], runs[4 + i], runs[8 + i], runs[12 + i], out);
        }
    }
}

/// `M[e] = U[e] · V[e]` for the 16 tile elements.
fn multiply(g: &Geometry, u: &[f32], s: &mut Scratch, parallel: bool) {
    let (k, m, tiles) = (g.in_channels, g.out_channels, s.tiles);
    let (v, out) = (&s.v[..16 * k * tiles], &mut s.m[..16 * m * tiles]);
    for ((u, v), out) in u.chunks(m * k).zip(v.chunks(k * tiles)).zip(out.chunks_mut(m * tiles)) {
        matmul(out, View::row_major(u, m, k), View::row_major(v, k, tiles), false, parallel);
    }
}

/// `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]` across four runs: `a + b + c` and `b − c − d`.
#[inline(always)]
fn a_transpose(a: &[f32], b: &[f32], c: &[f32], d: &[f32], first: &mut [f32], second: &mut [f32]) {
    let n = first.len();
    let (a, b, c, d, second) = (&a[..n], &b[..n], &c[..n], &d[..n], &mut second[..n]);
    for x in 0..n {
        (first[x], second[x]) = (a[x] + b[x] + c[x], b[x] - c[x] - d[x]);
    }
}

/// `A = [[1, 0], [1, 1], [1, −1], [0, −1]]` across two runs: `a`, `a + b`, `a − b`, `−b`.
#[inline(always)]
fn a_apply(a: &[f32], b: &[f32], out: [&mut [f32]; 4]) {
    let [o0, o1, o2, o3] = out;
    let n = o0.len();
    let (a, b, o1, o2, o3) = (&a[..n], &b[..n], &mut o1[..n], &mut o2[..n], &mut o3[..n]);
    for x in 0..n {
        (o0[x], o1[x], o2[x], o3[x]) = (a[x], a[x] + b[x], a[x] - b[x], -b[x]);
    }
}

/// `n` disjoint runs of `len` from `buffer`.
#[inline(always)]
fn split_runs<const N: usize>(buffer: &mut [f32], len: usize) -> [&mut [f32]; N] {
    let runs: Vec<&mut [f32]> = buffer.chunks_mut(len).take(N).collect();
    runs.try_into().unwrap_or_else(|_| panic!("scratch holds {N} runs"))
}

/// Output images `[n, C_out, OH, OW]` from `M` (`[16, C_out, T]`): `Aᵀ M A` per tile, plus
/// bias, one output channel of all the task's images at a time.
#[inline(always)]
fn output_transform(g: &Geometry, t: &Tiling, s: &mut Scratch, bias: Option<&[f32]>, out: &mut [f32]) {
    let ([oh, ow], tw, span, len, tiles) = (g.output, t.tiles[1], t.span, t.per_image(), s.tiles);
    let m = &s.m[..16 * g.out_channels * tiles];
    let stride = g.out_channels * tiles;
    let [c00, c01, c02, c03, c10, c11, c12, c13, y0e, y0o, y1e, y1o, ..] = split_runs::<16>(&mut s.runs, tiles);
    for co in 0..g.out_channels {
        let e = |i: usize, j: usize| &m[(4 * i + j) * stride + co * tiles..][..tiles];
        // Down the columns (c_rj: output row r, tile column j), then along the rows.
        for (j, (first, second)) in [(&mut *c00, &mut *c10), (&mut *c01, &mut *c11), (&mut *c02, &mut *c12), (&mut *c03, &mut *c13)].into_iter().enumerate() {
            a_transpose(e(0, j), e(1, j), e(2, j), e(3, j), first, second);
        }
        a_transpose(c00, c01, c02, c03, y0e, y0o);
        a_transpose(c10, c11, c12, c13, y1e, y1o);
        // Interleave even and odd columns into each image's output rows, plus the bias.
        let b = bias.map_or(0.0, |b| b[co]);
        for (n, image) in out.chunks_mut(g.out_channels * oh * ow).enumerate() {
            for (y, line) in image[co * oh * ow..][..oh * ow].chunks_mut(ow).enumerate() {
                let (even, odd) = if y % 2 == 0 { (&*y0e, &*y0o) } else { (&*y1e, &*y1o) };
                let row = n * len + (y / 2) * span;
                interleave(&even[row..][..tw], &odd[row..][..tw], b, line);
            }
        }
    }
}

/// `dM` (`[16, C_out, T]`, into `s.m`) from output-gradient images: `A dY Aᵀ` per tile, with
/// zeros for junk tiles and for the outputs past an odd edge; one output channel of all the
/// task's images at a time.
#[inline(always)]
fn grad_transform(g: &Geometry, t: &Tiling, grad: &[f32], s: &mut Scratch) {
    let ([oh, ow], tw, span, len, tiles) = (g.output, t.tiles[1], t.span, t.per_image(), s.tiles);
    let mut planes: Vec<&mut [f32]> = s.m[..16 * g.out_channels * tiles].chunks_mut(g.out_channels * tiles).collect();
    let [y00, y01, y10, y11, p00, p01, p02, p03, p10, p11, p12, p13, ..] = split_runs::<16>(&mut s.runs, tiles);
    for co in 0..g.out_channels {
        // The tiles' four gradients (y_rc: row r, column c) as runs.
        for y in [&mut *y00, &mut *y01, &mut *y10, &mut *y11] {
            y.fill(0.0);
        }
        for (n, image) in grad.chunks(g.out_channels * oh * ow).enumerate() {
            for (y, line) in image[co * oh * ow..][..oh * ow].chunks(ow).enumerate() {
                let (even, odd) = if y % 2 == 0 { (&mut *y00, &mut *y01) } else { (&mut *y10, &mut *y11) };
                let row = n * len + (y / 2) * span;
                deinterleave(line, &mut even[row..][..tw], &mut odd[row..][..tw]);
            }
        }
        // A along the rows (p_rj), then down the columns into dM[i][j].
        a_apply(y00, y01, [&mut *p00, &mut *p01, &mut *p02, &mut *p03]);
        a_apply(y10, y11, [&mut *p10, &mut *p11, &mut *p12, &mut *p13]);
        for (j, (p0, p1)) in [(&*p00, &*p10), (&*p01, &*p11), (&*p02, &*p12), (&*p03, &*p13)].into_iter().enumerate() {
            a_apply(p0, p1, runs_of(&mut planes, [j, j + 4, j + 8, j + 12], co * tiles, tiles));
        }
    }
}

/// The forward pass (when [`applies`]) into `out` (`[N, C_out, OH, OW]`). Each thread takes a
/// contiguous run of images, in tasks of `Tiling::images`.
pub(super) fn forward(g: &Geometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let t = Tiling::new(g);
    let (u, parallel) = (weight_transform(g, w), t.parallel_gemm(g));
    let (image_len, out_len) = (g.in_channels * g.input[0] * g.input[1], g.out_channels * g.output[0] * g.output[1]);
    let per_thread = g.batch.div_ceil(rayon::current_num_threads()).max(1);
    out.par_chunks_mut(per_thread * out_len).zip(x.par_chunks(per_thread * image_len)).for_each(|(out, x)| {
        with_scratch(g, &t, |s| {
            for (out, images) in out.chunks_mut(t.images * out_len).zip(x.chunks(t.images * image_len)) {
                s.tiles = images.len() / image_len * t.per_image();
                transform(g, &t, s, Pass::Input(images));
                multiply(g, &u, s, parallel);
                transform(g, &t, s, Pass::Output(bias, out));
            }
        })
    });
}

/// The weight gradient `[C_out, C, 3, 3]` (when [`applies`]), summed over fixed image chunks in
/// order, so it is deterministic.
pub(super) fn weight_grad(g: &Geometry, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let t = Tiling::new(g);
    let (image_len, out_len) = (g.in_channels * g.input[0] * g.input[1], g.out_channels * g.output[0] * g.output[1]);
    let per_thread = g.batch.div_ceil(rayon::current_num_threads()).max(1);
    let parallel = g.batch < rayon::current_num_threads();
    let (k, m) = (g.in_channels, g.out_channels);
    let partial: Vec<Vec<f32>> = x
        .par_chunks(per_thread * image_len)
        .zip(grad.par_chunks(per_thread * out_len))
        .map(|(x, grad)| {
            let mut du = vec![0.0f32; 16 * m * k];
            with_scratch(g, &t, |s| {
                for (images, grad) in x.chunks(t.images * image_len).zip(grad.chunks(t.images * out_len)) {
                    s.tiles = images.len() / image_len * t.per_image();
                    transform(g, &t, s, Pass::Input(images));
                    transform(g, &t, s, Pass::Grad(grad));
                    let tiles = s.tiles;
                    let (v, dm) = (&s.v[..16 * k * tiles], &s.m[..16 * m * tiles]);
                    for ((du, v), dm) in du.chunks_mut(m * k).zip(v.chunks(k * tiles)).zip(dm.chunks(m * tiles)) {
                        // dU[e] (C_out × C) += dM[e] (C_out × T) · V[e]ᵀ (T × C)
                        matmul(du, View::row_major(dm, m, tiles), View::row_major(v, k, tiles).t(), true, parallel);
                    }
                }
            });
            du
        })
        .collect();
    let mut du = vec![0.0f32; 16 * m * k];
    for part in &partial {
        for (a, b) in du.iter_mut().zip(part) {
            *a += b;
        }
    }
    weight_transform_back(g, &du)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deinterleave_and_interleave_split_and_merge_every_length() {
        for n in 0usize..40 {
            let src: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
            let (mut even, mut odd) = (vec![-1.0; n.div_ceil(2) + 3], vec![-1.0; n / 2 + 3]);
            deinterleave(&src, &mut even, &mut odd);
            let expect = |parity: usize, len: usize| -> Vec<f32> {
                let mut v: Vec<f32> = src.iter().skip(parity).step_by(2).copied().collect();
                v.resize(len, -1.0); // cells past the row stay untouched
                v
            };
            assert_eq!(even, expect(0, even.len()), "even half of {n}");
            assert_eq!(odd, expect(1, odd.len()), "odd half of {n}");
            let mut merged = vec![0.0; n];
            interleave(&even, &odd, 2.0, &mut merged);
            assert_eq!(merged, src.iter().map(|v| v + 2.0).collect::<Vec<_>>(), "merge of {n}");
        }
    }
}
