//! The `Hyperparameters` trait that `#[hyperparameters]` implements, what it knows about each
//! field, and hparams.yaml I/O (with each field's doc comment written above it).

mod checks;
mod overrides;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub use checks::{check_choice, check_finite, check_range};
pub use overrides::{did_you_mean, parse_value};

/// What `#[hyperparameters]` knows about one field; it feeds `--help`, hparams.yaml comments
/// and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The field name, as in hparams.yaml.
    pub name: &'static str,
    /// The Rust type, as written.
    pub ty: &'static str,
    /// The field's doc comment (empty when it has none).
    pub doc: &'static str,
    /// The default, as written, if the field has one.
    pub default: Option<&'static str>,
    /// The allowed range, as written (`1e-6..=1.0`).
    pub range: Option<&'static str>,
    /// The allowed values, as written (`["adam", "sgd"]`).
    pub choices: Option<&'static str>,
    /// `false` for `#[hparam(skip)]` fields, which are neither saved nor overridable.
    pub saved: bool,
}

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

    /// The fields, in declaration order.
    fn fields() -> &'static [FieldInfo];

    /// The hyperparameters as a JSON object (field order kept, skipped fields left out).
    fn to_value(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| Error::serde(format!("cannot serialize hyperparameters: {e}")).caused_by(e))
    }

    /// The values with the field descriptions, as loggers and checkpoints store them.
    fn saved(&self) -> Result<SavedHparams> {
        Ok(SavedHparams { values: self.to_value()?, fields: Self::fields() })
    }

    /// Parses and validates hyperparameters from YAML text.
    /// Enums are read as `to_yaml` writes them: `{Variant: {..}}` maps, not YAML tags.
    fn from_yaml_str(text: &str) -> Result<Self> {
        let tree: serde_json::Value =
            serde_yaml_ng::from_str(text).map_err(|e| Error::serde(format!("cannot parse hyperparameters YAML: {e}")).caused_by(e))?;
        let value: Self = serde_json::from_value(tree).map_err(|e| Error::serde(format!("cannot parse hyperparameters YAML: {e}")).caused_by(e))?;
        value.validate()?;
        Ok(value)
    }

    /// Reads and validates hyperparameters from a YAML file such as a run's `hparams.yaml`.
    fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(Error::io("cannot read", path))?;
        Self::from_yaml_str(&text).map_err(|e| Error::serde(format!("{}: {e}", path.display())).caused_by(e))
    }

    /// Builds validated hyperparameters from a JSON value (as stored in checkpoints).
    fn from_value(value: serde_json::Value) -> Result<Self> {
        let value: Self =
            serde_json::from_value(value).map_err(|e| Error::serde(format!("stored hyperparameters do not match this struct: {e}")).caused_by(e))?;
        value.validate()?;
        Ok(value)
    }

    /// A copy with `NAME=VALUE` overrides applied (values in YAML syntax: `1e-3`, `adam`,
    /// `[3, 32, 32]`; dotted names reach into nested maps) and validated. Unknown names get a
    /// "did you mean"; bad values name the field, the value and what is allowed.
    fn with_overrides<S: AsRef<str>>(&self, overrides: &[S]) -> Result<Self> {
        let mut value = self.to_value()?;
        let mut result = self.clone();
        for item in overrides {
            let item = item.as_ref();
            overrides::apply(&mut value, item, Self::fields())?;
            // Read back after each one, so a value of the wrong type is blamed on its override.
            result = serde_json::from_value(value.clone()).map_err(|e| Error::Override { item: item.to_string(), reason: e.to_string() })?;
        }
        result.validate()?;
        Ok(result)
    }

    /// A description of every field for `--help`: name, type, default, range, choices, doc.
    fn help() -> String {
        let mut out = String::new();
        for field in Self::fields().iter().filter(|f| f.saved) {
            let mut line = format!("  {}: {}", field.name, field.ty);
            if let Some(default) = field.default {
                line += &format!(" = {default}");
            }
            if let Some(range) = field.range {
                line += &format!("  (range {range})");
            }
            if let Some(choices) = field.choices {
                line += &format!("  (one of {choices})");
            }
            out += &line;
            out.push('\n');
            for doc in field.doc.lines() {
                out += &format!("      {doc}\n");
            }
        }
        out
    }
}

/// Saved hyperparameters: the values and, for comments and descriptions, the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedHparams {
    /// The values, a JSON object in field order.
    pub values: serde_json::Value,
    /// What the struct declares about each field (empty for hand-written values).
    pub fields: &'static [FieldInfo],
}

impl SavedHparams {
    /// Values without field information.
    pub fn from_values(values: serde_json::Value) -> Self {
        SavedHparams { values, fields: &[] }
    }

    /// The text of `hparams.yaml`: every value, each field's doc comment written above it.
    pub fn to_yaml(&self) -> Result<String> {
        let serde_json::Value::Object(map) = &self.values else { return to_yaml(&self.values) };
        let mut out = String::new();
        for (key, value) in map {
            if let Some(field) = self.fields.iter().find(|f| f.name == key) {
                for doc in field.doc.lines() {
                    out += &format!("# {doc}\n").replace("# \n", "#\n");
                }
            }
            let mut single = serde_json::Map::new();
            single.insert(key.clone(), value.clone());
            out += &to_yaml(&serde_json::Value::Object(single))?;
        }
        Ok(out)
    }
}

impl std::ops::Index<&str> for SavedHparams {
    type Output = serde_json::Value;
    fn index(&self, key: &str) -> &serde_json::Value {
        &self.values[key]
    }
}

/// Renders a JSON value as YAML.
pub fn to_yaml(value: &serde_json::Value) -> Result<String> {
    serde_yaml_ng::to_string(value).map_err(|e| Error::serde(format!("cannot write hyperparameters as YAML: {e}")).caused_by(e))
}

/// Hyperparameters checked at compile time: `hparams!(Config::new(10).with_learning_rate(5.0))`
/// does not compile, naming the field and its range. It evaluates its argument in a `const`
/// block, so `new` and the setters used must be `const` (they are when every default is a
/// literal or a constant and the fields set are numbers or bools); ranges, choices and
/// finiteness of number and bool fields are checked. Values known only at run time go through
/// `validate()` instead.
#[macro_export]
macro_rules! hparams {
    ($value:expr) => {
        const {
            let hparams = $value;
            hparams.__fulmen_const_check();
            hparams
        }
    };
}
