//! `NAME=VALUE` overrides (`--set learning_rate=1e-3`) applied to hyperparameter values.

pub use fulmen_rules::names::did_you_mean;

use super::FieldInfo;
use crate::error::{Error, Result};

/// Applies one `NAME=VALUE` to `values` (a JSON object). `VALUE` is read as YAML, so numbers,
/// bools, lists and strings need no quoting; dotted names reach into nested maps.
pub fn apply(values: &mut serde_json::Value, item: &str, fields: &[FieldInfo]) -> Result<()> {
    let Some((name, text)) = item.split_once('=') else {
        return Err(fail(item, "there is no `=`; write NAME=VALUE, e.g. learning_rate=1e-3".into()));
    };
    let (name, text) = (name.trim(), text.trim());
    let mut path = name.split('.');
    let top = path.next().unwrap_or_default();
    if let Some(field) = fields.iter().find(|f| f.name == top && !f.saved) {
        return Err(fail(item, format!("`{}` is marked `skip`: it is not saved and cannot be overridden; set it in code", field.name)));
    }
    let value = parse_value(text).map_err(|reason| fail(item, reason))?;
    let mut slot = values;
    for (depth, key) in std::iter::once(top).chain(path).enumerate() {
        let serde_json::Value::Object(map) = slot else {
            return Err(fail(item, format!("`{key}` is inside a value that is not a map")));
        };
        if !map.contains_key(key) {
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            let what = if depth == 0 { "hyperparameter".to_string() } else { format!("key in `{name}`") };
            return Err(fail(item, format!("unknown {what} `{key}`{}; known: {}", did_you_mean(key, &known), known.join(", "))));
        }
        slot = map.get_mut(key).ok_or_else(|| fail(item, format!("unknown key `{key}`")))?;
    }
    *slot = value;
    Ok(())
}

/// `text` as YAML, as a JSON value; an unparsable or non-finite value is an error saying so.
pub fn parse_value(text: &str) -> std::result::Result<serde_json::Value, String> {
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| format!("`{text}` is not a YAML value ({e}); quote a string that holds `: ` or ` #`"))?;
    if has_non_finite(&value) {
        return Err(format!("`{text}` is not a finite number; hyperparameters must be finite"));
    }
    serde_json::to_value(&value).map_err(|e| format!("`{text}` cannot be a hyperparameter value: {e}"))
}

/// Whether a YAML value holds `.nan` or `.inf` anywhere.
fn has_non_finite(value: &serde_yaml_ng::Value) -> bool {
    match value {
        serde_yaml_ng::Value::Number(n) => n.as_f64().is_some_and(|f| !f.is_finite()),
        serde_yaml_ng::Value::Sequence(items) => items.iter().any(has_non_finite),
        serde_yaml_ng::Value::Mapping(map) => map.values().any(has_non_finite),
        serde_yaml_ng::Value::Tagged(tagged) => has_non_finite(&tagged.value),
        _ => false,
    }
}

fn fail(item: &str, reason: String) -> Error {
    Error::Override { item: item.to_string(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_and_yaml_values() {
        let mut v = serde_json::json!({"lr": 0.1, "opt": {"beta": 0.9}, "shape": [1, 2]});
        apply(&mut v, "opt.beta=0.5", &[]).unwrap();
        apply(&mut v, "shape=[3, 32, 32]", &[]).unwrap();
        apply(&mut v, "lr = 1e-3", &[]).unwrap();
        assert_eq!(v, serde_json::json!({"lr": 1e-3, "opt": {"beta": 0.5}, "shape": [3, 32, 32]}));
        let err = apply(&mut v, "lrr=1", &[]).unwrap_err().to_string();
        assert!(err.contains("did you mean `lr`"), "{err}");
        assert!(apply(&mut v, "lr", &[]).unwrap_err().to_string().contains("NAME=VALUE"));
        assert!(apply(&mut v, "lr.x=1", &[]).unwrap_err().to_string().contains("not a map"));
    }

    #[test]
    fn a_bad_value_is_named_not_turned_into_a_string() {
        let mut v = serde_json::json!({"lr": 0.1, "shape": [1, 2], "name": "a"});
        for (item, said) in [
            ("lr=.nan", "not a finite number"),
            ("lr=-.inf", "not a finite number"),
            ("shape=[3, .inf]", "not a finite number"),
            ("shape=[3, 32", "not a YAML value"),
        ] {
            let err = apply(&mut v, item, &[]).unwrap_err().to_string();
            assert!(err.contains(said), "{item}: {err}");
        }
        apply(&mut v, "name=adam", &[]).unwrap();
        apply(&mut v, "name='a: b'", &[]).unwrap();
        assert_eq!(v["name"], "a: b");
        assert_eq!(v["lr"], 0.1, "a refused value changes nothing");
    }
}
