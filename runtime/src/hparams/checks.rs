//! The checks generated `validate()` calls; each error names the field, the value and the rule.

use crate::error::{Error, Result};

/// Checks `value` against an inclusive or half-open range.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: &T,
    low: Option<&T>,
    high: Option<&T>,
    high_inclusive: bool,
    range_text: &str,
) -> Result<()> {
    if fulmen_rules::range::outside(value, low, high, high_inclusive) {
        return Err(Error::Hyperparameter { field: field.to_string(), value: value.to_string(), reason: fulmen_rules::range::violation(range_text) });
    }
    Ok(())
}

/// Checks that a float is finite.
pub fn check_finite(field: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::Hyperparameter { field: field.to_string(), value: value.to_string(), reason: "must be a finite number".into() });
    }
    Ok(())
}

/// Fails unless `allowed` (the value is one of the choices, compared by the caller).
pub fn check_choice<T: std::fmt::Debug>(field: &str, value: &T, allowed: bool, choices_text: &str) -> Result<()> {
    if !allowed {
        return Err(Error::Hyperparameter { field: field.to_string(), value: format!("{value:?}"), reason: format!("must be one of {choices_text}") });
    }
    Ok(())
}
