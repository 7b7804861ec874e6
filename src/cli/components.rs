//! Loggers and callbacks named in a config, as LightningCLI writes them: a name (`csv`,
//! `EarlyStopping`) or `{class_path: WandbLogger, init_args: {project: cifar}}`. Each class's
//! `init_args` are a typed struct, so an unknown or mistyped argument names its key.

use fulmen_runtime::serde_json::{Map, Value};
use fulmen_runtime::{
    Callback, CsvLogger, EarlyStopping, Error, Interval, LearningRateMonitor, LightningModule, Logger, Mode, ModelCheckpoint, Result, TensorBoardLogger,
    WandbLogger,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::layers::Layers;

/// A logger or callback in a config: its class, and the arguments of its constructor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Component {
    /// Just the class, with its default arguments (`csv`, `EarlyStopping`).
    Name(String),
    /// The class and its arguments.
    Spec {
        /// The class: its Lightning name (`WandbLogger`, `lightning.pytorch.loggers.WandbLogger`)
        /// or short name (`wandb`).
        class_path: String,
        /// The constructor's arguments.
        #[serde(default)]
        init_args: Map<String, Value>,
    },
}

impl Component {
    /// A component by name, with default arguments.
    pub fn name(name: &str) -> Self {
        Component::Name(name.to_string())
    }

    /// A component with arguments.
    pub fn with_args(class_path: &str, init_args: Value) -> Self {
        let init_args = match init_args {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Component::Spec { class_path: class_path.to_string(), init_args }
    }

    /// The class's last path segment, lower-cased, without `_` (`lightning.pytorch.loggers.CSVLogger`
    /// and `csv_logger` are both `csvlogger`).
    fn class(&self) -> String {
        let path = match self {
            Component::Name(name) => name,
            Component::Spec { class_path, .. } => class_path,
        };
        path.rsplit('.').next().unwrap_or_default().to_ascii_lowercase().replace('_', "")
    }

    fn args<A: DeserializeOwned>(&self, key: &str, layers: &Layers) -> Result<A> {
        let args = match self {
            Component::Name(_) => Map::new(),
            Component::Spec { init_args, .. } => init_args.clone(),
        };
        serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
            let at = match e.path().to_string().as_str() {
                "." => format!("{key}.init_args"),
                path => format!("{key}.init_args.{path}"),
            };
            Error::Cli(format!("`{at}` ({}): {}", layers.origin(key), e.into_inner()))
        })
    }

    fn unknown(&self, key: &str, layers: &Layers, what: &str, known: &str) -> Error {
        Error::Cli(format!("`{key}` ({}): unknown {what} `{}`; fulmen has {known}", layers.origin(key), self.class()))
    }

    /// The logger this names.
    pub(crate) fn logger(&self, key: &str, layers: &Layers) -> Result<Box<dyn Logger>> {
        Ok(match self.class().as_str() {
            "csv" | "csvlogger" => {
                let a: DirArgs = self.args(key, layers)?;
                let logger = a.save_dir.map_or_else(CsvLogger::default_root, CsvLogger::new);
                Box::new(a.name.into_iter().fold(logger, |l, n| l.name(n)))
            }
            "tensorboard" | "tensorboardlogger" => {
                let a: DirArgs = self.args(key, layers)?;
                let logger = a.save_dir.map_or_else(TensorBoardLogger::default_root, TensorBoardLogger::new);
                Box::new(a.name.into_iter().fold(logger, |l, n| l.name(n)))
            }
            "wandb" | "wandblogger" => {
                let a: WandbArgs = self.args(key, layers)?;
                let mut logger = WandbLogger::new(a.project).log_model(a.log_model).sync_on_finish(a.sync_on_finish);
                for (value, set) in [
                    (a.name, WandbLogger::name as fn(WandbLogger, String) -> WandbLogger),
                    (a.entity, WandbLogger::entity),
                    (a.group, WandbLogger::group),
                    (a.job_type, WandbLogger::job_type),
                    (a.notes, WandbLogger::notes),
                    (a.save_dir, WandbLogger::save_dir),
                ] {
                    if let Some(value) = value {
                        logger = set(logger, value);
                    }
                }
                Box::new(a.tags.into_iter().fold(logger, |l, t| l.tag(t)))
            }
            _ => return Err(self.unknown(key, layers, "logger", "CSVLogger (csv), TensorBoardLogger (tensorboard) and WandbLogger (wandb)")),
        })
    }

    /// The callback this names.
    pub(crate) fn callback<M: LightningModule>(&self, key: &str, layers: &Layers) -> Result<Box<dyn Callback<M>>> {
        Ok(match self.class().as_str() {
            "earlystopping" => {
                let a: EarlyStoppingArgs = self.args(key, layers)?;
                let mut c = EarlyStopping::new(a.monitor);
                c = apply(c, a.patience, EarlyStopping::patience);
                c = apply(c, a.mode.map(Mode::from), EarlyStopping::mode);
                c = apply(c, a.min_delta, EarlyStopping::min_delta);
                c = apply(c, a.strict, EarlyStopping::strict);
                c = apply(c, a.check_finite, EarlyStopping::check_finite);
                c = apply(c, a.stopping_threshold, EarlyStopping::stopping_threshold);
                c = apply(c, a.divergence_threshold, EarlyStopping::divergence_threshold);
                Box::new(c)
            }
            "modelcheckpoint" => {
                let a: ModelCheckpointArgs = self.args(key, layers)?;
                let mut c = a.monitor.map_or_else(ModelCheckpoint::default, ModelCheckpoint::monitor);
                c = apply(c, a.mode.map(Mode::from), ModelCheckpoint::mode);
                c = apply(c, a.save_top_k, ModelCheckpoint::save_top_k);
                c = apply(c, a.save_last, ModelCheckpoint::save_last);
                c = apply(c, a.save_weights_only, ModelCheckpoint::save_weights_only);
                c = apply(c, a.every_n_epochs, ModelCheckpoint::every_n_epochs);
                c = apply(c, a.every_n_train_steps, ModelCheckpoint::every_n_train_steps);
                c = apply(c, a.dirpath, ModelCheckpoint::dirpath);
                c = apply(c, a.filename, ModelCheckpoint::filename);
                Box::new(c)
            }
            "learningratemonitor" | "lrmonitor" => {
                let a: LrMonitorArgs = self.args(key, layers)?;
                let interval = match a.logging_interval {
                    Some(IntervalArg::Step) => Interval::Step,
                    Some(IntervalArg::Epoch) | None => Interval::Epoch,
                };
                Box::new(LearningRateMonitor::new().logging_interval(interval))
            }
            _ => return Err(self.unknown(key, layers, "callback", "EarlyStopping, ModelCheckpoint and LearningRateMonitor; add others in code")),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirArgs {
    save_dir: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WandbArgs {
    #[serde(default = "default_project")]
    project: String,
    name: Option<String>,
    entity: Option<String>,
    group: Option<String>,
    job_type: Option<String>,
    notes: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    save_dir: Option<String>,
    #[serde(default)]
    log_model: bool,
    /// Runs `wandb sync` when the run ends (fulmen's addition: runs are written offline).
    #[serde(default)]
    sync_on_finish: bool,
}

fn default_project() -> String {
    "lightning_logs".into()
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ModeArg {
    Min,
    Max,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Min => Mode::Min,
            ModeArg::Max => Mode::Max,
        }
    }
}

/// EarlyStopping's arguments; those left out keep the callback's defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EarlyStoppingArgs {
    monitor: String,
    patience: Option<u32>,
    mode: Option<ModeArg>,
    min_delta: Option<f64>,
    strict: Option<bool>,
    check_finite: Option<bool>,
    stopping_threshold: Option<f64>,
    divergence_threshold: Option<f64>,
}

/// ModelCheckpoint's arguments; those left out keep the callback's defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelCheckpointArgs {
    monitor: Option<String>,
    dirpath: Option<String>,
    filename: Option<String>,
    mode: Option<ModeArg>,
    save_top_k: Option<i64>,
    save_last: Option<bool>,
    save_weights_only: Option<bool>,
    every_n_epochs: Option<u64>,
    every_n_train_steps: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum IntervalArg {
    Step,
    Epoch,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LrMonitorArgs {
    logging_interval: Option<IntervalArg>,
}

/// `set(target, value)` when the config gave a value.
fn apply<T, V>(target: T, value: Option<V>, set: fn(T, V) -> T) -> T {
    match value {
        Some(value) => set(target, value),
        None => target,
    }
}
