//! The one error type of fulmen. Every variant says what went wrong and what to do about it.

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in fulmen, each with a message that names the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hyperparameter failed `validate()`.
    #[error("hyperparameter `{field}` = {value} is invalid: {reason}")]
    Hyperparameter {
        /// The field name.
        field: String,
        /// The offending value, as text.
        value: String,
        /// What the value must be.
        reason: String,
    },
    /// A `NAME=VALUE` hyperparameter override that cannot be applied.
    #[error("hyperparameter override `{item}`: {reason}")]
    Override {
        /// The override as given.
        item: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// A metric got input it cannot use, or no input.
    #[error("metric `{metric}`: {reason}")]
    Metric {
        /// The metric's name.
        metric: String,
        /// What was wrong and what to pass instead.
        reason: String,
    },
    /// A layer chain that cannot produce the shapes it claims.
    #[error("layer `{layer}`: {reason}")]
    Shape {
        /// The field name of the layer.
        layer: String,
        /// What is wrong and what to change.
        reason: String,
    },
    /// A Trainer option that makes no sense (alone or with this module).
    #[error("invalid Trainer configuration: {0}")]
    Config(String),
    /// A command line or config file of `fulmen::cli` that cannot be used; the message names
    /// the key and where it was set.
    #[error("{0}")]
    Cli(String),
    /// The module cannot do what was asked of it (a step or hook it lacks, optimizers that do
    /// not fit its optimization mode).
    #[error("LightningModule: {0}")]
    Module(String),
    /// A callback's options or state are wrong.
    #[error("callback {callback}: {reason}")]
    Callback {
        /// The callback.
        callback: String,
        /// What is wrong and what to change.
        reason: String,
    },
    /// An image, table or chart cannot be made, or a logger cannot take what it was given.
    #[error("logging {what}: {reason}")]
    Media {
        /// What was being logged (`an image`, `table \`name\``, `a W&B run`, ...).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A monitored or requested metric that was never logged.
    #[error("metric `{name}` was not logged; logged metrics are: [{available}]. {hint}")]
    MissingMetric {
        /// The requested metric.
        name: String,
        /// The metrics that were available, comma separated.
        available: String,
        /// How to fix it.
        hint: String,
    },
    /// The requested accelerator is not available in this build or on this machine.
    #[error("accelerator `{requested}` is not available: {reason}")]
    Accelerator {
        /// The accelerator asked for.
        requested: String,
        /// Why not and how to get it.
        reason: String,
    },
    /// A dataset could not be downloaded, verified or read.
    #[error("{0}")]
    Data(String),
    /// Logging a value failed (bad name, non-scalar tensor...).
    #[error("log(\"{name}\"): {reason}")]
    Log {
        /// The metric name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// A batch the model cannot take: labels outside its classes, inputs of another shape.
    #[error("{stage} batch {batch} of epoch {epoch}: {reason}")]
    Batch {
        /// The stage's name (`training`, `validation`, ...).
        stage: &'static str,
        /// Index of the batch within the epoch.
        batch: usize,
        /// The epoch (0-based).
        epoch: u64,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A non-finite loss was produced.
    #[error("the training loss is {value} at global step {step} (epoch {epoch}); {hint}")]
    NonFiniteLoss {
        /// What to try.
        hint: String,
        /// The loss value.
        value: f64,
        /// Global step at which it happened.
        step: u64,
        /// Epoch at which it happened.
        epoch: u64,
    },
    /// A distributed run failed: a collective timed out, another rank failed or died, or the
    /// launcher's environment does not fit the Trainer's options.
    #[error("distributed training, rank {rank}: {reason}")]
    Distributed {
        /// This process's rank.
        rank: usize,
        /// What happened, naming the rank at fault where it is known, and what to do.
        reason: String,
    },
    /// Stopped by Ctrl-C (or `interrupt::request()`).
    #[error("interrupted at global step {step} (epoch {epoch})")]
    Interrupted {
        /// Epoch at which it stopped.
        epoch: u64,
        /// Global step at which it stopped.
        step: u64,
    },
    /// A checkpoint that cannot be read or does not fit the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The underlying error, if one caused it.
        #[source]
        source: Option<BoxError>,
    },
    /// A file-system error, with the path involved.
    #[error("{action} {path}: {source}")]
    Io {
        /// What fulmen was doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Serializing or parsing hyperparameters or metadata failed.
    #[error("{reason}")]
    Serde {
        /// What failed, and why.
        reason: String,
        /// The parser's or serializer's error, if one caused it.
        #[source]
        source: Option<BoxError>,
    },
    /// An error raised by a user's step, hook or callback.
    #[error("{0}")]
    User(String),
    /// An error of user code that `?` converted (I/O, number parsing, JSON), kept as the source.
    #[error("{0}")]
    External(#[source] BoxError),
}

/// `?` on the errors a data module or a step commonly meets keeps them as the source.
macro_rules! external_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for Error {
            fn from(error: $error) -> Self {
                Error::External(Box::new(error))
            }
        }
    )*};
}

external_errors!(std::io::Error, std::num::ParseIntError, std::num::ParseFloatError, serde_json::Error, std::string::FromUtf8Error);

/// An underlying error kept as an [`Error`]'s `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// A checkpoint error (add the underlying error with [`caused_by`](Self::caused_by)).
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), reason: reason.into(), source: None }
    }

    /// A serialization error (add the underlying error with [`caused_by`](Self::caused_by)).
    pub fn serde(reason: impl Into<String>) -> Self {
        Error::Serde { reason: reason.into(), source: None }
    }

    /// Keeps `source` as this error's `source()`, for the variants that hold one.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        if let Error::Checkpoint { source, .. } | Error::Serde { source, .. } = &mut self {
            *source = Some(Box::new(cause));
        }
        self
    }

    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }

    /// An error from user code (a step, hook or callback), with its message.
    pub fn user(message: impl std::fmt::Display) -> Self {
        Error::User(message.to_string())
    }
}
