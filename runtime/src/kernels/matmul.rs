//! A safe front to the `gemm` crate (flex's own matrix kernel, AVX-512 when the CPU has it:
//! gemm picks its microkernel by run-time feature detection).

use gemm::Parallelism;

/// A read-only matrix view: element (i, j) is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Step between rows.
    pub row_stride: usize,
    /// Step between columns.
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        View { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Whether every element this view addresses lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` with `accumulate`), `dst` row-major
/// `lhs.rows × rhs.cols`. Panics on mismatched shapes (a bug in the caller, not bad user input).
pub fn matmul(dst: &mut [f32], lhs: View<'_>, rhs: View<'_>, accumulate: bool, parallel: bool) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    assert_eq!(dst.len(), m * n, "matmul: destination size");
    assert!(lhs.in_bounds() && rhs.in_bounds(), "matmul: a view reaches past its data");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let parallelism = if parallel { Parallelism::Rayon(0) } else { Parallelism::None };
    // SAFETY: gemm reads lhs at i*row_stride + l*col_stride for i < m, l < k, and rhs likewise
    // for l < k, j < n; `in_bounds` checked that the largest such offsets lie inside both
    // slices. It writes dst at i*n + j for i < m, j < n, which is inside `dst` (len m*n,
    // checked), and `dst` is borrowed mutably, so nothing else aliases it. Strides fit isize
    // because they index into existing slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols).map(|l| a.data[i * a.row_stride + l * a.col_stride] * b.data[l * b.row_stride + j * b.col_stride]).sum();
            }
        }
        out
    }

    #[test]
    fn plain_transposed_and_accumulated_products_match_a_naive_loop() {
        let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..20).map(|i| (i as f32).sin()).collect();
        let (av, bv) = (View::row_major(&a, 3, 4), View::row_major(&b, 4, 5));
        let mut dst = vec![0.0; 15];
        matmul(&mut dst, av, bv, false, false);
        let expected = naive(av, bv);
        assert!(dst.iter().zip(&expected).all(|(x, y)| (x - y).abs() < 1e-5));
        matmul(&mut dst, av, bv, true, true);
        assert!(dst.iter().zip(&expected).all(|(x, y)| (x - 2.0 * y).abs() < 1e-5));
        // aᵀ (4×3) · c (3×2)
        let c: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let mut dst = vec![0.0; 8];
        matmul(&mut dst, av.t(), View::row_major(&c, 3, 2), false, false);
        let expected = naive(av.t(), View::row_major(&c, 3, 2));
        assert!(dst.iter().zip(&expected).all(|(x, y)| (x - y).abs() < 1e-5));
    }
}
