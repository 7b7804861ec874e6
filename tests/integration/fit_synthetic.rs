//! End to end: the derived tutorial CNN learns the synthetic dataset, and its logs, hparams.yaml
//! and best checkpoint are what Lightning would leave.

use fulmen::prelude::*;

use crate::probe::{column, read_csv, temp_dir};
use crate::seed_cnn::{SeedCnn, SeedConfig};

#[test]
fn the_derived_cnn_learns_and_leaves_lightning_style_artifacts() {
    let root = temp_dir("fit-synthetic");
    let mut trainer = Trainer::builder()
        .max_epochs(2)
        .seed(3)
        .accelerator(fulmen::Accelerator::Cpu)
        .default_root_dir(&root)
        .enable_progress_bar(false)
        .callback(ModelCheckpoint::monitor("val_loss"))
        .build()
        .unwrap();
    fulmen::seed_everything(3, trainer.device());
    let config = SeedConfig::new([3, 32, 32], 10).with_learning_rate(1e-3);
    let model = SeedCnn::new(config, trainer.device()).unwrap();
    let mut dm = SyntheticDataModule::new(5).sizes(1600, 320, 480).batch_size(32).num_workers(1);
    let fitted = trainer.fit(model, &mut dm).unwrap();
    let metrics = trainer.test(&fitted, &mut dm).unwrap();
    let acc = metrics["test_acc"];
    assert!(acc > 0.5, "test accuracy {acc} is not well above chance (0.1)");

    let version = root.join("lightning_logs/version_0");
    let hparams = SeedConfig::from_yaml_file(version.join("hparams.yaml")).unwrap();
    assert_eq!((hparams.input_shape, hparams.num_classes, hparams.learning_rate), ([3, 32, 32], 10, 1e-3));
    let csv = read_csv(&version.join("metrics.csv"));
    assert_eq!(column(&csv, "train_loss_epoch").len(), 2);
    assert_eq!(column(&csv, "val_acc").len(), 2);
    assert_eq!(column(&csv, "test_acc"), vec![(99, acc)]);
    assert_eq!(column(&csv, "train_loss_step").iter().map(|r| r.0).collect::<Vec<_>>(), vec![49, 99]);

    // The best checkpoint rebuilds the model from its stored hyperparameters.
    let best = trainer.state().best_model_path.clone().expect("a best checkpoint");
    assert!(best.starts_with(version.join("checkpoints")), "{}", best.display());
    let restored = SeedCnn::load_from_checkpoint(&best, trainer.device()).unwrap();
    let again = trainer.test(&restored, &mut dm).unwrap();
    assert!(again["test_acc"] > 0.5);

    let predictions = trainer.predict(&restored, &mut dm).unwrap();
    assert_eq!(predictions.len(), 15);
    assert_eq!(predictions[0].dims(), [32, 10]);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn an_impossible_chain_is_a_runtime_error_naming_the_layer() {
    let err = SeedCnn::new(SeedConfig::new([3, 8, 8], 10), &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("conv4") || err.contains("conv3"), "{err}");
    let err = SeedCnn::new(SeedConfig::new([1, 32, 32], 10), &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("conv1") && err.contains("receives 1"), "{err}");
    let err = SeedCnn::new(SeedConfig::new([3, 32, 32], 10).with_learning_rate(2.0), &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("learning_rate"), "{err}");
}
