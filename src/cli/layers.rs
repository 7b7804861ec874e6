//! The config as layers: the program's defaults, then each `--config FILE` and each dotted
//! override in command-line order, merged into one tree that remembers where every value came
//! from, so an error names the key and its source.

use std::collections::BTreeMap;
use std::path::Path;

use fulmen_runtime::hparams::{did_you_mean, parse_value};
use fulmen_runtime::serde_json::{Map, Value};
use fulmen_runtime::{Error, Hyperparameters, Result};

/// The top-level keys of a config file, as LightningCLI's.
pub const TOP_KEYS: [&str; 5] = ["seed_everything", "trainer", "model", "data", "ckpt_path"];

/// The merged tree and, for every key set, the layer that set it last.
#[derive(Debug, Default)]
pub struct Layers {
    tree: Map<String, Value>,
    origins: BTreeMap<String, String>,
}

impl Layers {
    /// Merges a YAML document (a file's text, or the program's defaults) named `origin`.
    pub fn merge_yaml(&mut self, text: &str, origin: &str) -> Result<()> {
        let value: Value = serde_yaml_ng::from_str(text).map_err(|e| Error::Cli(format!("{origin}: not a valid YAML config: {e}")))?;
        match value {
            Value::Null => Ok(()),
            Value::Object(map) => {
                for (key, value) in map {
                    self.check_top(&key, origin)?;
                    self.merge_at(&[key], value, origin);
                }
                Ok(())
            }
            other => {
                Err(Error::Cli(format!("{origin}: a config is a map with the keys {} (LightningCLI's layout), not {}", TOP_KEYS.join(", "), kind(&other))))
            }
        }
    }

    /// Merges the config file at `path`.
    pub fn merge_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Cli(format!("--config {}: cannot read it: {e}", path.display())).caused_by(e))?;
        self.merge_yaml(&text, &path.display().to_string())
    }

    /// Sets one dotted key (`trainer.max_epochs`) to `text` read as YAML.
    pub fn set(&mut self, dotted: &str, text: &str) -> Result<()> {
        let origin = format!("--{dotted}");
        let path: Vec<String> = dotted.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(Error::Cli(format!("{origin}: an empty key; write --section.key VALUE, e.g. --trainer.max_epochs 5")));
        }
        self.check_top(&path[0], &origin)?;
        let value = parse_value(text).map_err(|reason| Error::Cli(format!("{origin} {text}: {reason}")))?;
        self.merge_at(&path, value, &origin);
        Ok(())
    }

    /// The value at a top-level key (`None`: not set).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.tree.get(key).filter(|v| !v.is_null())
    }

    /// Where the value at `dotted` (or the nearest map above it) was set.
    pub fn origin(&self, dotted: &str) -> String {
        // A list's items (`trainer.callbacks[0]`) were set with the list.
        let mut key = dotted.split('[').next().unwrap_or_default();
        loop {
            if let Some(origin) = self.origins.get(key) {
                return origin.clone();
            }
            match key.rsplit_once('.') {
                Some((parent, _)) => key = parent,
                None => return "the defaults".into(),
            }
        }
    }

    /// The `section:` map read as `H`: unknown keys get a "did you mean", a value of the wrong
    /// type names its key, a missing required field says how to set it, and the values are
    /// validated.
    pub fn section<H: Hyperparameters>(&self, section: &str) -> Result<H> {
        let values = match self.tree.get(section) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(other) => {
                return Err(Error::Cli(format!("`{section}` ({}) is {}; it is a map of {section} options", self.origin(section), kind(other))));
            }
        };
        let known: Vec<&str> = H::fields().iter().filter(|f| f.saved).map(|f| f.name).collect();
        for key in values.keys() {
            if !known.contains(&key.as_str()) {
                let dotted = format!("{section}.{key}");
                return Err(Error::Cli(format!(
                    "unknown key `{dotted}` ({}){}; the {section} options are: {}",
                    self.origin(&dotted),
                    did_you_mean(key, &known),
                    known.join(", ")
                )));
            }
        }
        let parsed: H = serde_path_to_error::deserialize(Value::Object(values)).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if let Some(field) = missing_field(&inner) {
                return Error::Cli(format!("`{section}.{field}` is required: set it under `{section}:` in a config file or with --{section}.{field} VALUE"));
            }
            let dotted = if path == "." { section.to_string() } else { format!("{section}.{path}") };
            let top = path.split(['.', '[']).next().unwrap_or_default();
            let hint = H::fields().iter().find(|f| f.name == top).map(|f| format!(" (`{}` is a {})", f.name, f.ty)).unwrap_or_default();
            Error::Cli(format!("`{dotted}` ({}): {inner}{hint}", self.origin(&dotted)))
        })?;
        parsed.validate().map_err(|e| self.keyed(section, e))?;
        Ok(parsed)
    }

    /// A section's own check that failed (`validate()`, or building from it), named by its key
    /// and where the value was set.
    pub fn keyed(&self, section: &str, error: Error) -> Error {
        match error {
            Error::Hyperparameter { field, value, reason } => {
                let dotted = format!("{section}.{field}");
                Error::Cli(format!("`{dotted}` = {value} ({}) {reason}", self.origin(&dotted)))
            }
            other => other,
        }
    }

    fn check_top(&self, key: &str, origin: &str) -> Result<()> {
        if TOP_KEYS.contains(&key) {
            return Ok(());
        }
        Err(Error::Cli(format!("unknown key `{key}` ({origin}){}; a config has the keys {}", did_you_mean(key, &TOP_KEYS), TOP_KEYS.join(", "))))
    }

    /// Deep-merges `value` at `path`: maps merge key by key, anything else replaces.
    fn merge_at(&mut self, path: &[String], value: Value, origin: &str) {
        let (last, parents) = path.split_last().expect("a key path is never empty");
        let mut slot = &mut self.tree;
        for key in parents {
            let entry = slot.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(map) = entry else { unreachable!("just made a map") };
            slot = map;
        }
        merge_into(slot, &parents.join("."), last.clone(), value, origin, &mut self.origins);
    }
}

/// Merges `key: value` into `map` (whose dotted path is `prefix`), recording origins.
fn merge_into(map: &mut Map<String, Value>, prefix: &str, key: String, value: Value, origin: &str, origins: &mut BTreeMap<String, String>) {
    let dotted = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
    match (map.get_mut(&key), value) {
        // An empty section (`trainer:` with nothing under it) changes nothing.
        (Some(Value::Object(_)), Value::Null) => {}
        (Some(Value::Object(existing)), Value::Object(incoming)) => {
            for (child, value) in incoming {
                merge_into(existing, &dotted, child, value, origin, origins);
            }
        }
        (_, value) => {
            let below = format!("{dotted}.");
            origins.retain(|k, _| !k.starts_with(&below));
            origins.insert(dotted, origin.to_string());
            map.insert(key, value);
        }
    }
}

/// The field serde reports missing, if that is the error.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// What kind of YAML value this is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::TrainerOptions;

    fn layers(steps: &[(&str, &str)]) -> Layers {
        let mut layers = Layers::default();
        for (key, value) in steps {
            match *key {
                "yaml" => layers.merge_yaml(value, "file.yaml").unwrap(),
                key => layers.set(key, value).unwrap(),
            }
        }
        layers
    }

    #[test]
    fn later_layers_win_maps_merge_and_lists_replace() {
        let l = layers(&[
            ("yaml", "trainer: {max_epochs: 3, logger: [csv, wandb]}\nmodel: {lr: 0.1}"),
            ("trainer.max_epochs", "5"),
            ("yaml", "trainer: {logger: [tensorboard]}\nmodel:\n"),
        ]);
        assert_eq!(l.get("trainer").unwrap(), &fulmen_runtime::serde_json::json!({"max_epochs": 5, "logger": ["tensorboard"]}));
        assert_eq!(l.get("model").unwrap()["lr"], 0.1, "an empty section changes nothing");
        assert_eq!(l.origin("trainer.max_epochs"), "--trainer.max_epochs");
        assert_eq!(l.origin("trainer.logger[0]"), "file.yaml");
        assert_eq!(l.origin("data.root"), "the defaults");
        let l = layers(&[("trainer.max_epochs", "5"), ("yaml", "trainer: {max_epochs: 7}")]);
        assert_eq!(l.get("trainer").unwrap()["max_epochs"], 7, "a file after an override wins");
    }

    #[test]
    fn a_map_replaced_by_a_value_forgets_its_keys_origins() {
        let l = layers(&[("model.opt.beta", "0.9"), ("yaml", "model: {opt: adam}")]);
        assert_eq!(l.get("model").unwrap()["opt"], "adam");
        assert_eq!(l.origin("model.opt.beta"), "file.yaml");
    }

    #[test]
    fn sections_read_check_and_name_their_keys() {
        let options: TrainerOptions = layers(&[("trainer.max_epochs", "4"), ("trainer.limit_train_batches", "0.5")]).section("trainer").unwrap();
        assert_eq!(options.max_epochs, Some(4));
        assert_eq!(options.limit_train_batches, fulmen_runtime::trainer::Limit::Fraction(0.5));
        assert_eq!(layers(&[("trainer.limit_val_batches", "3")]).section::<TrainerOptions>("trainer").unwrap().limit_val_batches, 3usize.into());
        let err = |l: Layers| l.section::<TrainerOptions>("trainer").unwrap_err().to_string();
        assert!(err(layers(&[("trainer.max_epoch", "4")])).contains("unknown key `trainer.max_epoch` (--trainer.max_epoch) (did you mean `max_epochs`?)"));
        assert!(err(layers(&[("yaml", "trainer: {num_nodes: x}")])).contains("`trainer.num_nodes` (file.yaml): invalid type: string \"x\""));
        assert!(err(layers(&[("trainer.num_nodes", "0")])).contains("`trainer.num_nodes` = 0 (--trainer.num_nodes) must be in 1.."));
        assert!(err(layers(&[("yaml", "trainer: 3")])).contains("`trainer` (file.yaml) is a number; it is a map of trainer options"));
    }

    #[test]
    fn top_level_keys_and_values_are_checked_where_they_are_read() {
        let mut l = Layers::default();
        let err = l.merge_yaml("trainr: {}", "a.yaml").unwrap_err().to_string();
        assert!(err.contains("unknown key `trainr` (a.yaml) (did you mean `trainer`?)"), "{err}");
        assert!(l.merge_yaml("[1, 2]", "b.yaml").unwrap_err().to_string().contains("b.yaml: a config is a map"));
        assert!(l.merge_yaml("trainer: [", "c.yaml").unwrap_err().to_string().contains("c.yaml: not a valid YAML config"));
        assert!(l.set("trainer..x", "1").unwrap_err().to_string().contains("an empty key"));
        assert!(l.set("trainer.max_epochs", "[1,").unwrap_err().to_string().contains("not a YAML value"));
    }
}
