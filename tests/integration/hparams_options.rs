//! `#[hparam(choices, skip)]`, doc comments as descriptions, `NAME=VALUE` overrides, `help()`,
//! and the compile-time `hparams!` constructor; plus what the derive's `dropout`, user loss and
//! user metric do in a fit.

use fulmen::burn::tensor::activation::softmax;
use fulmen::loss::cross_entropy;
use fulmen::prelude::*;

use crate::probe::{PointsData, column, read_csv, temp_dir};
use crate::seed_cnn::SeedConfig;

/// Hyperparameters of [`Mlp`].
#[hyperparameters]
pub struct MlpConfig {
    /// Width of the hidden layer.
    #[hparam(default = 8, choices = [4, 8, 16])]
    pub hidden: usize,
    /// Dropout probability after the hidden layer.
    ///
    /// Zero turns it off.
    #[hparam(default = 0.5, range = 0.0..1.0)]
    pub drop: f64,
    /// Which optimizer the experiment notes say was used.
    #[hparam(default = "adam", choices = ["adam", "sgd"])]
    pub optimizer: String,
    /// Loader threads: a property of the machine, not of the model.
    #[hparam(default = 3, skip)]
    pub workers: usize,
}

/// A two-layer perceptron with dropout, a user loss (cross-entropy + 10) and a user metric.
#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = MlpConfig, loss = Self::offset_loss, metrics(accuracy, Self::confidence), optimizer = sgd(lr = 0.1))]
pub struct Mlp {
    #[layer(linear(2 -> hidden), relu, dropout(p = drop))]
    fc1: Linear,
    #[layer(linear(hidden -> 2))]
    fc2: Linear,
    #[module(skip)]
    hparams: MlpConfig,
}

impl Mlp {
    fn offset_loss(&self, output: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        cross_entropy(output, targets).add_scalar(10.0)
    }

    fn confidence(&self, output: Tensor<2>, _targets: Tensor<1, Int>) -> Tensor<1> {
        softmax(output, 1).max_dim(1).mean()
    }
}

#[test]
fn hparams_yaml_has_doc_comments_and_no_skipped_field() {
    let yaml = MlpConfig::new().saved().unwrap().to_yaml().unwrap();
    assert!(yaml.starts_with("# Width of the hidden layer.\nhidden: 8\n"), "{yaml}");
    assert!(yaml.contains("# Dropout probability after the hidden layer.\n#\n# Zero turns it off.\ndrop: 0.5\n"), "{yaml}");
    assert!(!yaml.contains("workers"), "{yaml}");
    let back = MlpConfig::from_yaml_str(&yaml).unwrap();
    assert_eq!((back.hidden, back.drop, back.optimizer.as_str(), back.workers), (8, 0.5, "adam", 3));
    assert!(MlpConfig::from_yaml_str("workers: 2\n").unwrap_err().to_string().contains("workers"));
}

#[test]
fn fields_and_help_describe_every_saved_field() {
    let fields = MlpConfig::fields();
    assert_eq!(fields.iter().map(|f| f.name).collect::<Vec<_>>(), ["hidden", "drop", "optimizer", "workers"]);
    assert_eq!(fields[0].choices, Some("[4, 8, 16]"));
    assert_eq!(fields[1].range, Some("0.0..1.0"));
    assert_eq!(fields[2].default, Some("\"adam\""));
    assert!(!fields[3].saved && fields[0].saved);
    let help = MlpConfig::help();
    assert!(help.contains("  hidden: usize = 8  (one of [4, 8, 16])\n      Width of the hidden layer.\n"), "{help}");
    assert!(help.contains("drop: f64 = 0.5  (range 0.0..1.0)"), "{help}");
    assert!(!help.contains("workers"), "{help}");
}

#[test]
fn choices_are_checked_at_run_time() {
    let err = MlpConfig::new().with_hidden(5).validate().unwrap_err().to_string();
    assert!(err.contains("`hidden` = 5") && err.contains("one of [4, 8, 16]"), "{err}");
    let err = MlpConfig::new().with_optimizer("rmsprop".into()).validate().unwrap_err().to_string();
    assert!(err.contains("\"rmsprop\"") && err.contains(r#"["adam", "sgd"]"#), "{err}");
    assert!(MlpConfig::new().with_hidden(16).with_optimizer("sgd".into()).validate().is_ok());
}

#[test]
fn overrides_set_fields_and_explain_bad_ones() {
    let c = MlpConfig::new().with_overrides(&["hidden=16", "optimizer=sgd", "drop = 0.25"]).unwrap();
    assert_eq!((c.hidden, c.optimizer.as_str(), c.drop), (16, "sgd", 0.25));
    let c = SeedConfig::new([3, 32, 32], 10).with_overrides(&["learning_rate=1e-3", "input_shape=[1, 28, 28]"]).unwrap();
    assert_eq!((c.learning_rate, c.input_shape), (1e-3, [1, 28, 28]));
    let cases: [(&str, &[&str]); 6] = [
        ("hiden=4", &["unknown hyperparameter `hiden`", "did you mean `hidden`"]),
        ("hidden=5", &["`hidden` = 5", "one of [4, 8, 16]"]),
        ("drop=1.5", &["`drop` = 1.5", "0.0..1.0"]),
        ("drop=abc", &["`drop=abc`", "f64"]),
        ("workers=2", &["`workers`", "skip"]),
        ("hidden", &["NAME=VALUE"]),
    ];
    for (item, expected) in cases {
        let err = MlpConfig::new().with_overrides(&[item]).unwrap_err().to_string();
        for part in expected {
            assert!(err.contains(part), "{item}: {err}");
        }
    }
}

/// Evaluated at compile time: an out-of-range literal here would not compile (see tests/ui).
const CHECKED: SeedConfig = fulmen::hparams!(SeedConfig::new([3, 32, 32], 10).with_learning_rate(1e-3));

#[test]
fn hparams_macro_builds_constants() {
    assert_eq!((CHECKED.input_shape, CHECKED.num_classes, CHECKED.learning_rate), ([3, 32, 32], 10, 1e-3));
    let local = hparams!(SeedConfig::new([1, 28, 28], 7));
    assert_eq!(local.learning_rate, 2e-4);
}

#[test]
fn dropout_is_active_in_training_only() {
    let device = Device::flex();
    let config = MlpConfig::new().with_hidden(16);
    let x = |device: &Device| Tensor::<2>::from_floats([[0.5, -0.5], [0.25, -0.25], [1.0, -1.0], [0.75, -0.75]], device);
    let plain = Mlp::new(config.clone(), &device).unwrap();
    assert_eq!(plain.forward(x(&device)).into_data(), plain.forward(x(&device)).into_data(), "no dropout outside training");
    let autodiff = device.clone().autodiff();
    let training = plain.to_device(&autodiff);
    let outputs: Vec<_> = (0..8).map(|_| training.forward(x(&autodiff)).into_data()).collect();
    assert!(outputs.windows(2).any(|w| w[0] != w[1]), "dropout draws a new mask per call");
    let err = Mlp::new(config.with_drop(1.0), &device).unwrap_err().to_string();
    assert!(err.contains("`drop` = 1") && err.contains("0.0..1.0"), "{err}");
}

#[test]
fn user_loss_and_metric_are_logged_under_the_stage_prefix() {
    let root = temp_dir("user-loss");
    let mut trainer =
        Trainer::builder().max_epochs(2).log_every_n_steps(1).default_root_dir(&root).enable_progress_bar(false).enable_model_summary(false).build().unwrap();
    let model = Mlp::new(MlpConfig::new().with_drop(0.0), trainer.device()).unwrap();
    let mut data = PointsData { train: 32, val: 16, batch: 8 };
    let model = trainer.fit(model, &mut data).unwrap();
    trainer.validate(&model, &mut data).unwrap();
    let csv = read_csv(&root.join("lightning_logs/version_0/metrics.csv"));
    let losses = column(&csv, "train_loss_step");
    assert_eq!(losses.len(), 8);
    assert!(losses.iter().all(|(_, l)| (10.0..11.0).contains(l)), "cross-entropy of 2 classes + 10: {losses:?}");
    let confidence = column(&csv, "val_confidence");
    assert!(!confidence.is_empty() && confidence.iter().all(|(_, c)| (0.5..=1.0).contains(c)), "{confidence:?}");
    assert!(!column(&csv, "train_confidence_epoch").is_empty());
    let yaml = std::fs::read_to_string(root.join("lightning_logs/version_0/hparams.yaml")).unwrap();
    assert!(yaml.contains("# Width of the hidden layer.\nhidden: 8"), "{yaml}");
}
