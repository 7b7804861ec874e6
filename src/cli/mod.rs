//! `fulmen::cli`: Lightning's LightningCLI for a model and a data module.
//!
//! ```text
//! my_app fit --config config.yaml --trainer.max_epochs 5 --model.learning_rate 1e-3
//! my_app fit --config config.yaml --print_config > resolved.yaml
//! my_app test --config resolved.yaml --ckpt_path best
//! ```
//!
//! A config file has LightningCLI's keys: `seed_everything`, `trainer:` (the Trainer's options,
//! [`TrainerOptions`]), `model:` (the model's `#[hyperparameters]`), `data:` (the data module's,
//! a [`DataConfig`]) and `ckpt_path`. Later layers win: the program's defaults, then every
//! `--config FILE` and `--section.key VALUE` in command-line order. Every key is checked: an
//! unknown one gets a "did you mean", a value of the wrong type or out of range names its key
//! and where it was set. `fit` writes the resolved config as `config.yaml` into the run's
//! version folder.

mod components;
mod data;
mod layers;
mod save_config;
mod trainer_options;

use std::process::ExitCode;

use fulmen_runtime::hparams::{FieldInfo, to_yaml};
use fulmen_runtime::serde_json::{Map, Value};
use fulmen_runtime::trainer::TrainerBuilder;
use fulmen_runtime::{CkptPath, DataConfig, DataModule, Error, FromHparams, Hyperparameters, LightningModule, Result, Trainer};

pub use components::Component;
pub use data::{Cifar10Config, ImageFolderConfig, SyntheticConfig, TransformSpec, compose};
use layers::Layers;
pub use save_config::SaveConfigCallback;
pub use trainer_options::{Setting, TrainerOptions};

/// What to run, as LightningCLI's subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subcommand {
    /// Train (and validate); resumes from `ckpt_path` when given.
    Fit,
    /// Run the validation loop once.
    Validate,
    /// Run the test loop once.
    Test,
    /// Run `predict_step` over the predict loader.
    Predict,
}

impl Subcommand {
    /// Each subcommand with its help line.
    const ALL: [(Subcommand, &'static str); 4] = [
        (Subcommand::Fit, "Train the model (resume with --ckpt_path PATH|last)"),
        (Subcommand::Validate, "Run one validation epoch (of --ckpt_path's weights)"),
        (Subcommand::Test, "Run the test set (of --ckpt_path's weights: a path, last or best)"),
        (Subcommand::Predict, "Predict over the predict set (of --ckpt_path's weights)"),
    ];

    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            Subcommand::Fit => "fit",
            Subcommand::Validate => "validate",
            Subcommand::Test => "test",
            Subcommand::Predict => "predict",
        }
    }
}

/// What a CLI invocation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Printed help, the version or the resolved config, and ran nothing.
    Printed,
    /// Ran a subcommand; `log_dir` is the run's version folder (`None`: no logger).
    Ran {
        /// The subcommand.
        subcommand: Subcommand,
        /// Where the run logged.
        log_dir: Option<std::path::PathBuf>,
    },
}

type Configure<M, C> = Box<dyn FnOnce(TrainerBuilder<M>, &mut <C as DataConfig>::DataModule, &C) -> Result<TrainerBuilder<M>>>;
type AfterFit<M, C> = Box<dyn FnOnce(&mut Trainer<M>, &M, &mut <C as DataConfig>::DataModule, &C) -> Result<()>>;
type AfterPredict<M> = Box<dyn FnOnce(Vec<<M as LightningModule>::Prediction>) -> Result<()>>;

/// LightningCLI for model `M` (built from its `#[hyperparameters]`) and data config `C`.
pub struct LightningCli<M: LightningModule + FromHparams, C: DataConfig> {
    name: String,
    about: String,
    defaults: Vec<String>,
    default_subcommand: Option<Subcommand>,
    configure: Option<Configure<M, C>>,
    after_fit: Option<AfterFit<M, C>>,
    after_predict: Option<AfterPredict<M>>,
}

impl<M, C> LightningCli<M, C>
where
    M: LightningModule + FromHparams,
    C: DataConfig,
    C::DataModule: DataModule<Batch = M::Batch>,
{
    /// A CLI named `name` (shown in help).
    pub fn new(name: &str) -> Self {
        LightningCli {
            name: name.to_string(),
            about: String::new(),
            defaults: Vec::new(),
            default_subcommand: None,
            configure: None,
            after_fit: None,
            after_predict: None,
        }
    }

    /// The description in `--help`.
    pub fn about(mut self, text: &str) -> Self {
        self.about = text.to_string();
        self
    }

    /// The program's own defaults, as a config file's text: the first layer, below every
    /// `--config` (Lightning's `default_config_files`). Checked when the CLI runs.
    pub fn default_config(mut self, yaml: &str) -> Self {
        self.defaults.push(yaml.to_string());
        self
    }

    /// The subcommand run when none is given (LightningCLI requires one; default: none).
    pub fn default_subcommand(mut self, subcommand: Subcommand) -> Self {
        self.default_subcommand = Some(subcommand);
        self
    }

    /// Adds to the Trainer what a config cannot say (callbacks of your own, say) after the
    /// config's options, with the data module (not yet prepared or set up) and its config.
    pub fn configure_trainer(mut self, f: impl FnOnce(TrainerBuilder<M>, &mut C::DataModule, &C) -> Result<TrainerBuilder<M>> + 'static) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// Runs after `fit` succeeds, with the trained model (to test it, say).
    pub fn after_fit(mut self, f: impl FnOnce(&mut Trainer<M>, &M, &mut C::DataModule, &C) -> Result<()> + 'static) -> Self {
        self.after_fit = Some(Box::new(f));
        self
    }

    /// Receives `predict`'s outputs, one per batch (default: their count is printed).
    pub fn after_predict(mut self, f: impl FnOnce(Vec<M::Prediction>) -> Result<()> + 'static) -> Self {
        self.after_predict = Some(Box::new(f));
        self
    }

    /// Runs on the process's arguments; prints any error and returns the exit code (130 after
    /// Ctrl-C, with how to resume).
    pub fn run(self) -> ExitCode {
        match self.run_with(std::env::args()) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e @ Error::Interrupted { .. }) => {
                eprintln!("{e}; resume with --ckpt_path last");
                ExitCode::from(130)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Runs on `args` (the first is the program's name).
    pub fn run_with<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Result<Outcome> {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let (layer_args, mut rest) = split_args(args.get(1..).unwrap_or_default())?;
        if let Some(default) = self.default_subcommand
            && !rest.iter().any(|a| !a.starts_with('-'))
        {
            rest.insert(0, default.name().to_string());
        }
        let mut layers = Layers::default();
        for text in &self.defaults {
            layers.merge_yaml(text, "the program's defaults")?;
        }
        let help = self.sections_help(&layers);
        let command = self.command(help);
        let program = args.first().cloned().unwrap_or_else(|| self.name.clone());
        let matches = match command.try_get_matches_from(std::iter::once(program).chain(rest)) {
            Ok(matches) => matches,
            Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
                let _ = e.print();
                return Ok(Outcome::Printed);
            }
            Err(e) => return Err(Error::Cli(e.render().to_string().trim_start_matches("error: ").trim_end().to_string())),
        };
        let (name, sub_matches) = matches.subcommand().ok_or_else(|| Error::Cli("no subcommand; use fit, validate, test or predict".into()))?;
        let subcommand = Subcommand::ALL.iter().map(|(s, _)| *s).find(|s| s.name() == name).unwrap_or(Subcommand::Fit);
        for layer in layer_args {
            match layer {
                LayerArg::File(path) => layers.merge_file(std::path::Path::new(&path))?,
                LayerArg::Set(key, value) => layers.set(&key, &value)?,
            }
        }

        let resolved = Resolved::<M, C>::read(&layers)?;
        let text = resolved.to_yaml()?;
        if sub_matches.get_flag("print_config") {
            print!("{text}");
            return Ok(Outcome::Printed);
        }

        let mut dm = resolved.data.build().map_err(|e| layers.keyed("data", e))?;
        let mut builder = resolved.trainer.builder::<M>(resolved.seed, &layers)?;
        if subcommand == Subcommand::Fit {
            builder = builder.callback(SaveConfigCallback::new(text));
        }
        if let Some(configure) = self.configure.take() {
            builder = configure(builder, &mut dm, &resolved.data)?;
        }
        let mut trainer = builder.build()?;
        let ckpt = resolved.ckpt_path.as_deref().map(CkptPath::from);
        let fresh = |trainer: &Trainer<M>| M::from_hparams(resolved.model.clone(), trainer.device());
        let from_ckpt = |trainer: &Trainer<M>, ckpt: &Option<CkptPath>| -> Result<M> {
            match ckpt {
                Some(ckpt) => M::load_from_checkpoint(trainer.resolve_checkpoint(ckpt)?, trainer.device()),
                None => {
                    eprintln!("warning: no --ckpt_path: {} runs the model's freshly initialized weights", subcommand.name());
                    fresh(trainer)
                }
            }
        };
        match subcommand {
            Subcommand::Fit => {
                let model = fresh(&trainer)?;
                let fitted = match ckpt {
                    Some(ckpt) => trainer.fit_from(model, &mut dm, ckpt)?,
                    None => trainer.fit(model, &mut dm)?,
                };
                if let Some(after_fit) = self.after_fit.take() {
                    after_fit(&mut trainer, &fitted, &mut dm, &resolved.data)?;
                }
            }
            Subcommand::Validate => {
                let model = from_ckpt(&trainer, &ckpt)?;
                trainer.validate(&model, &mut dm)?;
            }
            Subcommand::Test => match ckpt {
                Some(ckpt) => {
                    trainer.test_from(&mut dm, ckpt)?;
                }
                None => {
                    let model = from_ckpt(&trainer, &None)?;
                    trainer.test(&model, &mut dm)?;
                }
            },
            Subcommand::Predict => {
                let model = from_ckpt(&trainer, &ckpt)?;
                let predictions = trainer.predict(&model, &mut dm)?;
                match self.after_predict.take() {
                    Some(after_predict) => after_predict(predictions)?,
                    None => println!("predicted {} batches", predictions.len()),
                }
            }
        }
        Ok(Outcome::Ran { subcommand, log_dir: trainer.state().log_dir.clone() })
    }

    fn command(&self, sections_help: String) -> clap::Command {
        let mut command = clap::Command::new(self.name.clone()).about(self.about.clone()).subcommand_required(true).arg_required_else_help(true);
        for (subcommand, about) in Subcommand::ALL {
            let sub = clap::Command::new(subcommand.name())
                .about(about)
                .arg(
                    clap::Arg::new("config")
                        .long("config")
                        .value_name("FILE")
                        .action(clap::ArgAction::Append)
                        .help("A config file (repeatable; later ones win)"),
                )
                .arg(clap::Arg::new("print_config").long("print_config").action(clap::ArgAction::SetTrue).help("Print the resolved config and exit"))
                .arg(clap::Arg::new("ckpt_path").long("ckpt_path").value_name("PATH|last|best").help("The checkpoint to resume or evaluate"))
                .arg(clap::Arg::new("seed_everything").long("seed_everything").value_name("SEED").help("Seed weights, shuffling and splits (null: unseeded)"))
                .after_help(sections_help.clone());
            command = command.subcommand(sub);
        }
        command
    }

    /// Every section's keys, types, defaults and docs, for `--help`.
    fn sections_help(&self, layers: &Layers) -> String {
        let mut out = String::from("Every option of a config file can be given as --section.key VALUE (VALUE in YAML):\n");
        out += &section_help::<TrainerOptions>("trainer", layers);
        out += &section_help::<M::Hparams>("model", layers);
        out += &section_help::<C>("data", layers);
        if let Some(default) = self.default_subcommand {
            out += &format!("\nWithout a subcommand, `{}` runs.\n", default.name());
        }
        out
    }
}

/// A `--config FILE` or `--section.key VALUE` argument, in command-line order.
enum LayerArg {
    File(String),
    Set(String, String),
}

/// Splits the config layers out of the arguments; the rest goes to clap.
fn split_args(args: &[String]) -> Result<(Vec<LayerArg>, Vec<String>)> {
    let (mut layers, mut rest) = (Vec::new(), Vec::new());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(option) = arg.strip_prefix("--") else {
            rest.push(arg.clone());
            continue;
        };
        let (key, inline) = match option.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (option, None),
        };
        let top_value = matches!(key, "seed_everything" | "ckpt_path");
        let is_layer = key == "config" || key.contains('.') || top_value;
        if !is_layer {
            rest.push(arg.clone());
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => iter.next().cloned().ok_or_else(|| Error::Cli(format!("--{key} needs a value: --{key} VALUE or --{key}=VALUE")))?,
        };
        layers.push(if key == "config" { LayerArg::File(value) } else { LayerArg::Set(key.to_string(), value) });
    }
    Ok((layers, rest))
}

/// The config every layer resolves to.
struct Resolved<M: FromHparams, C> {
    seed: Option<u64>,
    trainer: TrainerOptions,
    model: M::Hparams,
    data: C,
    ckpt_path: Option<String>,
}

impl<M: FromHparams, C: DataConfig> Resolved<M, C> {
    fn read(layers: &Layers) -> Result<Self> {
        let seed =
            match layers.get("seed_everything") {
                None => None,
                Some(value) => Some(value.as_u64().ok_or_else(|| {
                    Error::Cli(format!("`seed_everything` = {value} ({}) must be a whole number ≥ 0 or null", layers.origin("seed_everything")))
                })?),
            };
        let ckpt_path = match layers.get("ckpt_path") {
            None => None,
            Some(Value::String(path)) => Some(path.clone()),
            Some(value) => {
                return Err(Error::Cli(format!("`ckpt_path` = {value} ({}) must be a path, last or best", layers.origin("ckpt_path"))));
            }
        };
        Ok(Resolved { seed, trainer: layers.section("trainer")?, model: layers.section("model")?, data: layers.section("data")?, ckpt_path })
    }

    /// The config as YAML, every option written out with its doc comment: what
    /// `--print_config` prints and `fit` saves as `config.yaml`.
    fn to_yaml(&self) -> Result<String> {
        let mut out = String::from("# The resolved config of a fulmen LightningCLI run; run it again with --config FILE.\n");
        out += &single("seed_everything", self.seed.map_or(Value::Null, Value::from))?;
        for (name, saved) in [("trainer", self.trainer.saved()?), ("model", self.model.saved()?), ("data", self.data.saved()?)] {
            out += &format!("{name}:\n");
            for line in saved.to_yaml()?.lines() {
                out += &format!("  {line}\n");
            }
        }
        out += &single("ckpt_path", self.ckpt_path.clone().map_or(Value::Null, Value::from))?;
        Ok(out)
    }
}

fn single(key: &str, value: Value) -> Result<String> {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    to_yaml(&Value::Object(map))
}

/// One section's keys for `--help`: the defaults as resolved from the program's defaults
/// where the section resolves without more (else as the struct declares them).
fn section_help<H: Hyperparameters>(section: &str, layers: &Layers) -> String {
    let values = layers.section::<H>(section).ok().and_then(|h| h.to_value().ok());
    let mut out = format!("\n{section}:\n");
    for field in H::fields().iter().filter(|f| f.saved) {
        out += &field_help(section, field, values.as_ref());
    }
    out
}

fn field_help(section: &str, field: &FieldInfo, values: Option<&Value>) -> String {
    let default = match values.and_then(|v| v.get(field.name)) {
        Some(value) => Some(fulmen_runtime::serde_json::to_string(value).unwrap_or_default()),
        None => field.default.map(str::to_string),
    };
    let mut line = format!("  --{section}.{} {}", field.name, field.ty);
    match default {
        Some(default) => line += &format!(" (default {default})"),
        None => line += " (required)",
    }
    if let Some(range) = field.range {
        line += &format!(" (range {range})");
    }
    if let Some(choices) = field.choices {
        line += &format!(" (one of {choices})");
    }
    for doc in field.doc.lines() {
        line += &format!("\n      {doc}");
    }
    line + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (layers, rest) = split_args(&args).unwrap();
        let layers = layers
            .into_iter()
            .map(|l| match l {
                LayerArg::File(path) => format!("file {path}"),
                LayerArg::Set(key, value) => format!("{key}={value}"),
            })
            .collect();
        (layers, rest)
    }

    #[test]
    fn config_layers_keep_their_order_and_the_rest_goes_to_clap() {
        let (layers, rest) = split(&[
            "fit",
            "--trainer.max_epochs",
            "5",
            "--config=a.yaml",
            "--print_config",
            "--model.lr=1e-3",
            "--ckpt_path",
            "last",
            "--config",
            "b.yaml",
            "--seed_everything=3",
        ]);
        assert_eq!(layers, ["trainer.max_epochs=5", "file a.yaml", "model.lr=1e-3", "ckpt_path=last", "file b.yaml", "seed_everything=3"]);
        assert_eq!(rest, ["fit", "--print_config"]);
        let args = ["fit".to_string(), "--data.root".to_string()];
        assert!(split_args(&args).err().unwrap().to_string().contains("--data.root needs a value"));
    }
}
