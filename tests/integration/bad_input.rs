//! Hyperparameters that pass `validate()` but do not fit the data: labels outside the model's
//! classes, inputs of another shape, layers of size 0 or too large to allocate. Each is an error
//! naming the problem and the fix (never a panic inside Burn), from the library and from the
//! tutorial's command line.

use std::process::Command;

use fulmen::burn::data::dataloader::DataLoaderBuilder;
use fulmen::burn::data::dataloader::batcher::Batcher;
use fulmen::data::Loader;
use fulmen::prelude::*;

use crate::probe::temp_dir;
use crate::seed_cnn::{SeedCnn, SeedConfig};

fn trainer() -> Trainer<SeedCnn> {
    Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(1)
        .limit_train_batches(fulmen::Limit::Batches(3))
        .num_sanity_val_steps(0)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .build()
        .unwrap()
}

fn data() -> SyntheticDataModule {
    SyntheticDataModule::new(3).sizes(96, 32, 32).batch_size(32)
}

#[test]
fn labels_outside_the_models_classes_are_an_error_naming_label_classes_and_batch() {
    let mut trainer = trainer();
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 5), trainer.device()).unwrap();
    let err = trainer.fit(model.clone(), &mut data()).unwrap_err();
    assert!(matches!(err, fulmen::Error::Batch { stage: "training", epoch: 0, .. }), "{err:?}");
    let text = err.to_string();
    // The synthetic data has 10 classes; the first batch holds labels up to 9.
    assert!(text.contains("label 9") && text.contains("0..5") && text.contains("at least 10 classes"), "{text}");
    let err = trainer.validate(&model, &mut data()).unwrap_err().to_string();
    assert!(err.starts_with("validation batch 0 of epoch 0: label 9"), "{err}");
    // In range: no error.
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10), trainer.device()).unwrap();
    trainer.validate(&model, &mut data()).unwrap();
}

#[test]
fn a_batch_of_another_shape_is_an_error_before_the_forward_pass() {
    for shape in [[3, 16, 16], [3, 64, 64]] {
        let mut trainer = trainer();
        let model = SeedCnn::new(SeedConfig::new(shape, 10), trainer.device()).unwrap();
        let err = trainer.fit(model, &mut data()).unwrap_err().to_string();
        let expected = format!("[batch, {}, {}, {}]", shape[0], shape[1], shape[2]);
        assert!(err.contains("[32, 3, 32, 32]") && err.contains(&expected) && err.contains("input_shape"), "{err}");
    }
}

#[test]
fn sizes_of_zero_or_too_large_to_allocate_are_refused_when_the_model_is_built() {
    let device = Device::flex();
    let err = SeedCnn::new(SeedConfig::new([3, 32, 32], 0), &device).unwrap_err().to_string();
    assert!(err.contains("fc3") && err.contains("size of 0"), "{err}");
    let err = SeedCnn::new(SeedConfig::new([3, 32, 32], 1 << 45), &device).unwrap_err().to_string();
    assert!(err.contains("fc3") && err.contains("allocate"), "{err}");
    let err = SeedCnn::new(SeedConfig::new([3, 1 << 20, 1 << 20], 10), &device).unwrap_err().to_string();
    assert!(err.contains("fc1") && err.contains("allocate"), "{err}");
}

/// A batcher that drops every item (a filter gone wrong): each batch is empty.
#[derive(Clone)]
struct DropsEverything(fulmen::data::ImageBatcher);

impl Batcher<fulmen::data::ImageItem, ClassificationBatch<4>> for DropsEverything {
    fn batch(&self, _: Vec<fulmen::data::ImageItem>, device: &Device) -> ClassificationBatch<4> {
        self.0.batch(Vec::new(), device)
    }
}

struct EmptyBatches;

impl DataModule for EmptyBatches {
    type Batch = ClassificationBatch<4>;
    fn train_dataloader(&self) -> fulmen::Result<Loader<Self::Batch>> {
        let images = fulmen::data::ImageSet::new(vec![0; 4 * 3 * 32 * 32], vec![0; 4], 3 * 32 * 32);
        let batcher = DropsEverything(fulmen::data::ImageBatcher::new([3, 32, 32], &[0.5; 3], &[0.25; 3]));
        Ok(DataLoaderBuilder::new(batcher).batch_size(2).build(images))
    }
    fn val_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        self.train_dataloader().map(Some)
    }
}

#[test]
fn an_empty_batch_is_an_error_naming_the_loader() {
    let mut trainer = trainer();
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10), trainer.device()).unwrap();
    let err = trainer.validate(&model, &mut EmptyBatches).unwrap_err().to_string();
    assert!(err.contains("the val loader gave an empty batch (batch 0)"), "{err}");
    let err = trainer.fit(model, &mut EmptyBatches).unwrap_err().to_string();
    assert!(err.contains("the training loader gave an empty batch (batch 0)"), "{err}");
}

/// The tutorial's binary with `args`, in a fresh folder: exit code and stderr.
fn cifar(name: &str, args: &[&str]) -> (Option<i32>, String) {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(temp_dir(name))
        .env("CARGO_TARGET_DIR", workspace.join("target"))
        .env_remove("RUST_BACKTRACE")
        // A login session's runtime folder: without one, libwayland (loaded by Mesa's Vulkan
        // driver while wgpu lists adapters) prints "XDG_RUNTIME_DIR is invalid" on stderr.
        .env("XDG_RUNTIME_DIR", temp_dir("runtime-dir"))
        .args(["run", "--release", "--offline", "--quiet", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .args(crate::probe::same_features())
        .args(["--example", "cifar", "--", "fit", "--data.synthetic", "true", "--trainer.fast_dev_run", "1"])
        .args(args)
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_tutorial_exits_1_with_one_paragraph_for_hyperparameters_that_do_not_fit() {
    for (set, wanted) in [
        ("--model.num_classes=5", "label 9 is outside the model's classes 0..5"),
        ("--model.num_classes=0", "layer `fc3`: linear 128 -> 0 has a size of 0"),
        ("--model.num_classes=100000000000", "more than this machine can allocate"),
        ("--model.input_shape=[3,16,16]", "but the model expects [batch, 3, 16, 16]"),
        ("--model.learning_rate=2.0", "`model.learning_rate` = 2 (--model.learning_rate) must be in 1e-6..=1.0"),
        ("--model.learnin_rate=0.1", "unknown key `model.learnin_rate` (--model.learnin_rate) (did you mean `learning_rate`?)"),
    ] {
        let (code, stderr) = cifar("bad-hparams", &[set]);
        assert_eq!(code, Some(1), "{set}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{set}: {stderr}");
        let paragraph: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(paragraph.len(), 1, "{set}: {stderr}");
        assert!(paragraph[0].starts_with("error: ") && paragraph[0].contains(wanted), "{set}: {stderr}");
    }
}
