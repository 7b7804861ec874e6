//! Elementwise kernels spread over the threads: flex runs its elementwise ops on one thread
//! below 4M elements (every activation of a small CNN), which leaves the other cores idle for
//! that stretch of the step. Each op here splits its slices into fixed chunks run on rayon; the
//! result of each element does not depend on the split, so it is the same on any thread count.

use rayon::prelude::*;

/// Elements per task: large enough that a task outweighs its scheduling (~32 µs of work).
pub(super) const CHUNK: usize = 1 << 15;

/// `len` zeros, written by the threads: a large `vec![0; len]` is one thread's memset (glibc's
/// `calloc` clears reused heap memory), which left the other cores idle.
pub(super) fn zeroed<T: Copy + Default + Send + Sync>(len: usize) -> Vec<T> {
    if len <= CHUNK {
        return vec![T::default(); len];
    }
    let mut values: Vec<T> = Vec::with_capacity(len);
    values.spare_capacity_mut()[..len].par_chunks_mut(CHUNK).for_each(|chunk| chunk.fill(std::mem::MaybeUninit::new(T::default())));
    // SAFETY: the capacity is at least `len`, and each of the first `len` elements was
    // initialized just above.
    unsafe { values.set_len(len) };
    values
}

/// `f` over `values` in place, in parallel chunks.
pub(super) fn map_in_place<T: Copy + Send + Sync>(values: &mut [T], f: impl Fn(T) -> T + Sync) {
    let task = |chunk: &mut [T]| chunk.iter_mut().for_each(|v| *v = f(*v));
    if values.len() <= CHUNK { task(values) } else { values.par_chunks_mut(CHUNK).for_each(task) }
}

/// `out[i] = f(out[i], other[i])`, in parallel chunks.
pub(super) fn zip_in_place<T: Copy + Send + Sync>(out: &mut [T], other: &[T], f: impl Fn(T, T) -> T + Sync) {
    assert_eq!(out.len(), other.len(), "zip_in_place: lengths differ");
    let task = |(out, other): (&mut [T], &[T])| out.iter_mut().zip(other).for_each(|(o, x)| *o = f(*o, *x));
    if out.len() <= CHUNK { task((out, other)) } else { out.par_chunks_mut(CHUNK).zip(other.par_chunks(CHUNK)).for_each(task) }
}

/// The exponent bits of f16 and bf16: a magnitude above them is NaN.
pub(super) const F16_EXPONENT: u16 = 0x7C00;
pub(super) const BF16_EXPONENT: u16 = 0x7F80;

/// Whether the f16 / bf16 value with these bits (and this format's `exponent` mask) is
/// positive or NaN: what ReLU keeps, computed on the bits without converting.
#[inline(always)]
pub(super) fn half_kept(bits: u16, exponent: u16) -> bool {
    let magnitude = bits & 0x7FFF;
    (bits & 0x8000 == 0 && magnitude != 0) || magnitude > exponent
}

/// ReLU's value: `max(x, 0)`, with NaN kept as PyTorch keeps it.
#[inline(always)]
pub(super) fn relu(x: f32) -> f32 {
    if x > 0.0 || x.is_nan() { x } else { 0.0 }
}

/// ReLU's gradient from its output: the output gradient where the output is positive (or NaN,
/// as Burn's flex backward keeps it).
#[inline(always)]
pub(super) fn relu_grad(grad: f32, output: f32) -> f32 {
    if output > 0.0 || output.is_nan() { grad } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_buffers_are_zero_on_any_length() {
        for len in [0, 3, CHUNK + 1, 3 * CHUNK] {
            let v: Vec<f32> = zeroed(len);
            assert_eq!((v.len(), v.iter().all(|x| x.to_bits() == 0)), (len, true));
        }
    }

    #[test]
    fn chunked_maps_equal_a_serial_loop_on_any_length() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for len in [0, 5, CHUNK, CHUNK * 2 + 7] {
            let x: Vec<f32> = (0..len).map(|i| ((i as f32) * 0.37).sin()).collect();
            let mut fast = x.clone();
            pool.install(|| map_in_place(&mut fast, relu));
            assert_eq!(fast, x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
            let mut grad = vec![1.5f32; len];
            pool.install(|| zip_in_place(&mut grad, &fast, relu_grad));
            assert_eq!(grad, fast.iter().map(|o| if *o > 0.0 { 1.5 } else { 0.0 }).collect::<Vec<_>>());
        }
        assert!(relu(f32::NAN).is_nan() && relu(-0.0) == 0.0 && relu(-3.0) == 0.0);
    }

    /// The bit test agrees with f32 ReLU on every f16 and every bf16 value.
    #[test]
    fn half_kept_is_relu_on_every_half_value() {
        for bits in 0..=u16::MAX {
            let (h, b) = (half::f16::from_bits(bits).to_f32(), half::bf16::from_bits(bits).to_f32());
            assert_eq!(half_kept(bits, F16_EXPONENT), h > 0.0 || h.is_nan(), "f16 {bits:#06x}");
            assert_eq!(half_kept(bits, BF16_EXPONENT), b > 0.0 || b.is_nan(), "bf16 {bits:#06x}");
        }
    }
}
