//! The `Hyperparameters` trait that `#[hyperparameters]` implements, and hparams.yaml I/O.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A hyperparameter struct: serializable, validated, stored in `hparams.yaml` and checkpoints.
///
/// Implemented by `#[fulmen::hyperparameters]`; not meant to be implemented by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a hyperparameters struct",
    label = "not annotated with `#[hyperparameters]`",
    note = "add `#[fulmen::hyperparameters]` (or `#[hyperparameters]` with the prelude) to the definition of `{Self}`"
)]
pub trait Hyperparameters: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Checks every declared range, choice and finiteness rule; the error names the field,
    /// the value and what is allowed.
    fn validate(&self) -> Result<()>;

    /// The hyperparameters as a JSON object (field order kept).
    fn to_value(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| Error::Serde(format!("cannot serialize hyperparameters: {e}")))
    }

    /// Parses and validates hyperparameters from YAML text.
    fn from_yaml_str(text: &str) -> Result<Self> {
        let value: Self = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::Serde(format!("cannot parse hyperparameters YAML: {e}")))?;
        value.validate()?;
        Ok(value)
    }

    /// Reads and validates hyperparameters from a YAML file such as a run's `hparams.yaml`.
    fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(Error::io("cannot read", path))?;
        Self::from_yaml_str(&text).map_err(|e| Error::Serde(format!("{}: {e}", path.display())))
    }

    /// Builds validated hyperparameters from a JSON value (as stored in checkpoints).
    fn from_value(value: serde_json::Value) -> Result<Self> {
        let value: Self = serde_json::from_value(value)
            .map_err(|e| Error::Serde(format!("stored hyperparameters do not match this struct: {e}")))?;
        value.validate()?;
        Ok(value)
    }
}

/// Renders a JSON object as YAML (the text of `hparams.yaml`).
pub fn to_yaml(value: &serde_json::Value) -> Result<String> {
    serde_yaml_ng::to_string(value).map_err(|e| Error::Serde(format!("cannot write hyperparameters as YAML: {e}")))
}

/// Checks `value` against an inclusive or half-open range; used by generated `validate()`.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: &T,
    low: Option<&T>,
    high: Option<&T>,
    high_inclusive: bool,
    range_text: &str,
) -> Result<()> {
    let below = low.is_some_and(|low| value < low);
    let above = high.is_some_and(|high| if high_inclusive { value > high } else { value >= high });
    if below || above {
        return Err(Error::Hyperparameter {
            field: field.to_string(),
            value: value.to_string(),
            reason: format!("must be in {range_text}"),
        });
    }
    Ok(())
}

/// Checks that a float is finite; used by generated `validate()`.
pub fn check_finite(field: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::Hyperparameter {
            field: field.to_string(),
            value: value.to_string(),
            reason: "must be a finite number".into(),
        });
    }
    Ok(())
}
