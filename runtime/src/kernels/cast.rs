//! f32 ↔ f16 / bf16 conversions over whole buffers, on the threads: flex converts one element at
//! a time (and, for f16, asks the CPU for F16C on every element), which made the casts of mixed
//! precision cost more than the convolutions. Here f16 goes through `half`'s slice conversions
//! (F16C eight lanes at a time where the CPU has it, detected once per call) and bf16 through
//! loops the compiler vectorizes; both round to nearest even, as `half` (and flex) do element by
//! element, so the bits are the same.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use rayon::prelude::*;

use super::elementwise::{CHUNK, zeroed};

/// `dst[i] = src[i]` converted, chunk by chunk in parallel.
fn convert<S: Sync, D: Send>(src: &[S], dst: &mut [D], f: impl Fn(&[S], &mut [D]) + Sync) {
    assert_eq!(src.len(), dst.len(), "cast: lengths differ");
    if src.len() <= CHUNK {
        f(src, dst);
    } else {
        dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| f(s, d));
    }
}

/// f32 to f16, rounded to nearest even.
pub(super) fn f32_to_f16(src: &[f32]) -> Vec<f16> {
    let mut dst = zeroed::<f16>(src.len());
    convert(src, &mut dst, |s, d| d.convert_from_f32_slice(s));
    dst
}

/// f16 to f32 (exact).
pub(super) fn f16_to_f32(src: &[f16]) -> Vec<f32> {
    let mut dst = zeroed::<f32>(src.len());
    convert(src, &mut dst, |s, d| s.convert_to_f32_slice(d));
    dst
}

/// f32 to bf16, rounded to nearest even (NaN stays NaN).
pub(super) fn f32_to_bf16(src: &[f32]) -> Vec<bf16> {
    let mut dst = zeroed::<bf16>(src.len());
    convert(src, &mut dst, |s, d| d.iter_mut().zip(s).for_each(|(d, s)| *d = bf16::from_f32(*s)));
    dst
}

/// bf16 to f32 (exact).
pub(super) fn bf16_to_f32(src: &[bf16]) -> Vec<f32> {
    let mut dst = zeroed::<f32>(src.len());
    convert(src, &mut dst, |s, d| d.iter_mut().zip(s).for_each(|(d, s)| *d = f32::from_bits((s.to_bits() as u32) << 16)));
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value class (normal, subnormal in the target, overflow, ties, NaN, ±0, ±∞), on
    /// buffers long enough for several parallel chunks: the bits equal `half`'s one-element
    /// conversions, which flex uses.
    #[test]
    fn buffer_conversions_equal_element_conversions_to_the_bit() {
        let specials = [0.0f32, -0.0, 1.0, -2.5, 65504.0, 65520.0, 1e9, -1e9, 6e-8, 1e-40, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0 + f32::EPSILON];
        let len = CHUNK * 2 + 11;
        let values: Vec<f32> =
            (0..len).map(|i| if i < specials.len() { specials[i] } else { ((i as f32) * 0.731).sin() * 10f32.powi((i % 13) as i32 - 6) }).collect();
        let same = |a: &[u16], b: &[u16]| a.iter().zip(b).all(|(x, y)| x == y || (x & 0x7fff > 0x7c00 && y & 0x7fff > 0x7c00));
        let h = f32_to_f16(&values);
        let expected: Vec<u16> = values.iter().map(|v| f16::from_f32(*v).to_bits()).collect();
        assert!(same(&h.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), &expected));
        let back = f16_to_f32(&h);
        assert!(back.iter().zip(&h).all(|(f, h)| f.to_bits() == h.to_f32().to_bits() || (f.is_nan() && h.is_nan())));
        let b = f32_to_bf16(&values);
        assert!(b.iter().zip(&values).all(|(b, v)| b.to_bits() == bf16::from_f32(*v).to_bits()));
        let back = bf16_to_f32(&b);
        assert!(back.iter().zip(&b).all(|(f, b)| f.to_bits() == b.to_f32().to_bits()));
    }
}
