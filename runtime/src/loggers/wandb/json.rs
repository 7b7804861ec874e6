//! Values as W&B's JSON: numbers (integers kept integral, NaN/±Infinity as the bare words its
//! decoder accepts) and media dictionaries flattened one level, as wandb writes them.

use serde_json::{Value, json};

/// A value as W&B's JSON: NaN and ±Infinity as the bare words its decoder accepts.
pub fn to_json(value: &Value) -> String {
    match value {
        Value::String(s) if s == "NaN" || s == "Infinity" || s == "-Infinity" => s.clone(),
        other => other.to_string(),
    }
}

/// A number as a JSON value; non-finite ones become marker strings that [`to_json`] writes bare.
pub fn number(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// `(nested key path, JSON)` items of a row value: a media dictionary is flattened one level,
/// as wandb writes it.
pub fn flatten(key: &str, value: &Value) -> Vec<(Vec<String>, String)> {
    match value {
        Value::Object(map) if map.contains_key("_type") => map.iter().map(|(k, v)| (vec![key.to_string(), k.clone()], to_json(v))).collect(),
        other => vec![(vec![key.to_string()], to_json(other))],
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_are_bare_json_words() {
        assert_eq!(to_json(&number(f64::NAN)), "NaN");
        assert_eq!(to_json(&number(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(to_json(&number(3.0)), "3");
        assert_eq!(to_json(&number(0.25)), "0.25");
        assert_eq!(to_json(&json!("NaNa")), "\"NaNa\"");
    }
}
