//! `#[hparam(range = ..)]`: whether a value lies in a declared range, and whether a range is empty.

/// Whether `value` lies outside `low..high` (or `low..=high` when `high_inclusive`); a missing
/// bound is open.
pub fn outside<T: PartialOrd>(value: &T, low: Option<&T>, high: Option<&T>, high_inclusive: bool) -> bool {
    let below = low.is_some_and(|low| value < low);
    let above = high.is_some_and(|high| if high_inclusive { value > high } else { value >= high });
    below || above
}

/// Whether no value can lie in the range: its start is above its end, or equal to an excluded end.
pub fn is_empty<T: PartialOrd>(low: &T, high: &T, high_inclusive: bool) -> bool {
    low > high || (low == high && !high_inclusive)
}

/// Why a value outside its range is refused (`range_text` as written: `1e-6..=1.0`).
pub fn violation(range_text: &str) -> String {
    format!("must be in {range_text}")
}

/// A dropout probability: in `[0, 1)` (1 would drop everything).
pub fn dropout_probability(p: f64) -> Result<(), String> {
    if (0.0..1.0).contains(&p) { Ok(()) } else { Err(format!("dropout probability {p} is outside [0, 1)")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_rust_range_syntax() {
        assert!(!outside(&1.0, Some(&1e-6), Some(&1.0), true));
        assert!(outside(&1.0, Some(&1e-6), Some(&1.0), false));
        assert!(outside(&0.0, Some(&1e-6), None, false));
        assert!(!outside(&5u32, None, Some(&10), false));
        assert!(is_empty(&2, &1, true) && is_empty(&1, &1, false) && !is_empty(&1, &1, true));
        assert!(dropout_probability(0.0).is_ok() && dropout_probability(1.0).unwrap_err().contains("outside [0, 1)"));
    }
}
