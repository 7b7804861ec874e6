//! `fulmen::cli` from a user crate outside the workspace: an image folder of generated PNGs and
//! JPEGs trained from a YAML config with transforms on, then tested, validated and predicted
//! from its checkpoints;
//! `--print_config` round-trips (fed back as `--config`, it repeats the run to the bit); every
//! kind of bad input is an error naming the key or the file.

use std::path::Path;
use std::process::{Command, Output};

use crate::image_folder::write_folder;
use crate::probe::temp_dir;

const MAIN: &str = r#"
use fulmen::cli::{ImageFolderConfig, LightningCli};
use fulmen::prelude::*;

/// The model's hyperparameters.
#[hyperparameters]
pub struct TinyConfig {
    /// Shape of one image.
    pub input_shape: [usize; 3],
    /// Classes.
    pub num_classes: usize,
    /// Adam's learning rate.
    #[hparam(default = 3e-3, range = 1e-6..=1.0)]
    pub learning_rate: f64,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = TinyConfig, loss = cross_entropy, metrics(accuracy), optimizer = adam(lr = learning_rate))]
pub struct Tiny {
    #[layer(conv2d(3 -> 8, kernel = 3), relu, max_pool(2))]
    conv: Conv2d,
    #[layer(linear(auto -> num_classes))]
    fc: Linear,
    #[module(skip)]
    hparams: TinyConfig,
}

fn main() -> std::process::ExitCode {
    LightningCli::<Tiny, ImageFolderConfig>::new("user_cli").run()
}
"#;

fn config(dir: &Path) -> String {
    format!(
        "seed_everything: 7
trainer:
  max_epochs: 3
  accelerator: cpu
  enable_progress_bar: false
  enable_model_summary: false
  default_root_dir: {root}
  callbacks:
    - {{class_path: ModelCheckpoint, init_args: {{monitor: val_acc, mode: max}}}}
model:
  input_shape: [3, 16, 16]
  num_classes: 3
data:
  root: {train}
  test_dir: {test}
  image_size: 16
  batch_size: 8
  train_transforms:
    - RandomCrop: {{size: 16, padding: 2}}
    - RandomHorizontalFlip: {{}}
    - ColorJitter: {{brightness: 0.2, contrast: 0.2}}
",
        root = dir.join("run_a").display(),
        train = dir.join("train").display(),
        test = dir.join("test").display()
    )
}

fn run(binary: &Path, args: &[&str]) -> Output {
    Command::new(binary).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_user_crate_trains_an_image_folder_through_the_cli() {
    let binary = crate::user_crate::build("user_cli", MAIN);
    let dir = temp_dir("cli-image-folder");
    write_folder(&dir.join("train"), 24);
    write_folder(&dir.join("test"), 6);
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, config(&dir)).unwrap();
    let cfg = cfg.to_str().unwrap();

    // Fit from the config with an override; the resolved config is saved in the version folder.
    let fit = run(&binary, &["fit", "--config", cfg, "--model.learning_rate", "0.01"]);
    assert!(fit.status.success(), "{}\n{}", text(&fit.stdout), text(&fit.stderr));
    let version = dir.join("run_a/lightning_logs/version_0");
    let saved = std::fs::read_to_string(version.join("config.yaml")).unwrap();
    let printed = run(&binary, &["fit", "--config", cfg, "--model.learning_rate", "0.01", "--print_config"]);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    assert_eq!(text(&printed.stdout), saved, "--print_config prints what fit saves");
    for line in ["  learning_rate: 0.01", "seed_everything: 7", "  - RandomCrop:", "  image_size: 16", "  # Adam's learning rate."] {
        assert!(saved.contains(line), "{line:?} not in\n{saved}");
    }

    // The printed config, fed back (to another folder), repeats the run to the bit.
    let round_trip = dir.join("printed.yaml");
    std::fs::write(&round_trip, &saved).unwrap();
    let run_b = dir.join("run_b");
    let again = run(&binary, &["fit", "--config", round_trip.to_str().unwrap(), "--trainer.default_root_dir", run_b.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let metrics = |root: &Path| std::fs::read_to_string(root.join("lightning_logs/version_0/metrics.csv")).unwrap();
    assert_eq!(metrics(&dir.join("run_a")), metrics(&run_b));
    assert!(metrics(&run_b).lines().count() > 3);

    // Test the best checkpoint of run A; the model learned the colours.
    let test = run(&binary, &["test", "--config", cfg, "--ckpt_path", "best"]);
    let stdout = text(&test.stdout);
    assert!(test.status.success(), "{stdout}\n{}", text(&test.stderr));
    let acc: f64 =
        stdout.lines().find_map(|l| l.trim().strip_prefix("test_acc")).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no test_acc in {stdout}"));
    assert!(acc > 0.6, "test_acc {acc}:\n{stdout}");
    let validate = run(&binary, &["validate", "--config", cfg, "--ckpt_path", "best"]);
    assert!(validate.status.success() && text(&validate.stdout).contains("val_acc"), "{}\n{}", text(&validate.stdout), text(&validate.stderr));
    // 18 test images in batches of 8.
    let predict = run(&binary, &["predict", "--config", cfg, "--ckpt_path", "last"]);
    assert!(text(&predict.stdout).contains("predicted 3 batches"), "{}\n{}", text(&predict.stdout), text(&predict.stderr));

    // Bad input: each one a single error line naming the key or the file, nothing trained.
    let mut broken = dir.join("broken/red");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("0.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    broken.pop();
    let bad_yaml = dir.join("bad.yaml");
    std::fs::write(&bad_yaml, "trainer:\n  max_epochs: many\n").unwrap();
    let broken = broken.to_str().unwrap().to_string();
    let cases: [(Vec<&str>, String); 5] = [
        (vec!["--data.image_sise", "8"], "unknown key `data.image_sise` (--data.image_sise) (did you mean `image_size`?)".into()),
        (vec!["--config", bad_yaml.to_str().unwrap()], format!("`trainer.max_epochs` ({}): invalid type: string \"many\", expected u64", bad_yaml.display())),
        (vec!["--model.learning_rate", "3"], "`model.learning_rate` = 3 (--model.learning_rate) must be in 1e-6..=1.0".into()),
        (vec!["--trainr.max_epochs", "1"], "unknown key `trainr` (--trainr.max_epochs) (did you mean `trainer`?)".into()),
        (vec!["--data.root", &broken, "--data.test_dir", "null"], format!("{}", Path::new(&broken).join("red/0.png").display())),
    ];
    let never = dir.join("never");
    for (extra, wanted) in cases {
        let mut args = vec!["fit", "--config", cfg, "--trainer.default_root_dir", never.to_str().unwrap()];
        args.extend(&extra);
        let out = run(&binary, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(&wanted), "{extra:?}: wanted {wanted:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let missing = run(&binary, &["fit", "--model.input_shape", "[3, 16, 16]", "--model.num_classes", "3"]);
    let stderr = text(&missing.stderr);
    assert!(stderr.contains("`data.root` is required: set it under `data:` in a config file or with --data.root VALUE"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
