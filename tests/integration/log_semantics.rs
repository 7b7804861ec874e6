//! Lightning's `log` semantics: stage defaults, `_step`/`_epoch` names, batch-size-weighted epoch
//! means, when step values are written, and what reaches `callback_metrics`.

use fulmen::module::{LogValue, Logged};
use fulmen::prelude::*;
use fulmen::trainer::{EpochResults, Target};

use crate::probe::{PointsData, Probe, column, read_csv, temp_dir};

#[test]
fn stage_defaults_follow_lightning() {
    let mut train = StepContext::new(Stage::Train, 0, 8, 0, 0);
    train.log("a", 1.0).unwrap();
    let mut val = StepContext::new(Stage::Validation, 0, 8, 0, 0);
    val.log("a", 1.0).unwrap();
    let (t, v) = (&train.logged()[0], &val.logged()[0]);
    assert_eq!((t.on_step, t.on_epoch), (true, false));
    assert_eq!((v.on_step, v.on_epoch), (false, true));
    assert_eq!(t.weight, 8, "the weight defaults to the batch size");
}

#[test]
fn bad_log_calls_are_errors_that_name_the_metric() {
    let device = Device::flex();
    let mut ctx = StepContext::new(Stage::Train, 0, 4, 0, 0);
    ctx.log("loss", 1.0).unwrap();
    let twice = ctx.log("loss", 2.0).unwrap_err().to_string();
    assert!(twice.contains("loss") && twice.contains("twice"), "{twice}");
    let wide = ctx.log("w", Tensor::<1>::from_floats([1.0, 2.0], &device)).unwrap_err().to_string();
    assert!(wide.contains("one-element"), "{wide}");
    let nowhere = ctx.log_with("n", 1.0, LogOptions::new().on_step(false).on_epoch(false)).unwrap_err().to_string();
    assert!(nowhere.contains("both false"), "{nowhere}");
    let mut predict = StepContext::new(Stage::Predict, 0, 4, 0, 0);
    assert!(predict.log("p", 1.0).is_err());
}

fn logged(name: &str, value: LogValue, weight: usize, on_step: bool, reduce: fulmen::Reduce) -> Logged {
    Logged { name: name.into(), value, on_step, on_epoch: true, prog_bar: false, logger: true, weight, reduce, sync_dist: false }
}

#[test]
fn epoch_values_are_batch_weighted_and_named_by_their_flags() {
    let device = Device::flex();
    let mut results = EpochResults::default();
    for (i, weight) in [4usize, 4, 2].into_iter().enumerate() {
        let tensor = LogValue::Tensor(Tensor::<1>::from_floats([i as f32], &device));
        results
            .record(vec![
                logged("both", LogValue::Scalar(i as f64), weight, true, fulmen::Reduce::Mean),
                logged("dev", tensor, weight, false, fulmen::Reduce::Mean),
                logged("sum", LogValue::Scalar(i as f64), weight, false, fulmen::Reduce::Sum),
                logged("max", LogValue::Scalar(i as f64), weight, false, fulmen::Reduce::Max),
            ])
            .unwrap();
    }
    let values: std::collections::BTreeMap<String, f64> = results.epoch_values().unwrap().values.into_iter().map(|v| (v.name, v.value)).collect();
    // (0*4 + 1*4 + 2*2) / 10 = 0.8, not the unweighted 1.0
    assert!((values["both_epoch"] - 0.8).abs() < 1e-9, "{values:?}");
    assert!((values["dev"] - 0.8).abs() < 1e-6, "{values:?}");
    assert_eq!(values["sum"], 3.0);
    assert_eq!(values["max"], 2.0);
    let step = results.step_values(Target::Logger);
    assert_eq!(step.get("both_step"), Some(&2.0), "the latest step value, with the _step suffix: {step:?}");
    assert!(!step.contains_key("dev"), "epoch-only values have no step value");
}

#[test]
fn changing_options_mid_epoch_is_an_error() {
    let mut results = EpochResults::default();
    results.record(vec![logged("a", LogValue::Scalar(1.0), 1, true, fulmen::Reduce::Mean)]).unwrap();
    let err = results.record(vec![logged("a", LogValue::Scalar(1.0), 1, false, fulmen::Reduce::Mean)]).unwrap_err();
    assert!(err.to_string().contains("different"), "{err}");
}

#[test]
fn the_trainer_writes_step_rows_every_n_steps_and_weighted_epoch_rows() {
    let root = temp_dir("log-semantics");
    let mut trainer = Trainer::builder()
        .max_epochs(2)
        .log_every_n_steps(2)
        .accelerator(fulmen::Accelerator::Cpu)
        .default_root_dir(&root)
        .enable_progress_bar(false)
        .build()
        .unwrap();
    let model = Probe::new(trainer.device(), vec![0.5]);
    // 10 items in batches of 4, 4, 2: three steps per epoch.
    trainer.fit(model, &mut PointsData { train: 10, val: 10, batch: 4 }).unwrap();
    assert_eq!(trainer.state().global_step, 6);

    let csv = read_csv(&root.join("lightning_logs/version_0/metrics.csv"));
    let header = csv.0.clone();
    for expected in ["epoch", "step", "x_step", "x_epoch", "t_step", "t_epoch", "v", "val_loss"] {
        assert!(header.contains(&expected.to_string()), "missing {expected} in {header:?}");
    }
    // Step rows at global steps 2, 4, 6 (written with the index of the step just taken).
    assert_eq!(column(&csv, "x_step"), vec![(1, 1.0), (3, 0.0), (5, 2.0)]);
    assert_eq!(column(&csv, "t_step"), vec![(1, 1.0), (3, 0.0), (5, 2.0)]);
    // Epoch rows: batch-size-weighted means, at the last step of each epoch.
    for name in ["x_epoch", "t_epoch", "v"] {
        let values = column(&csv, name);
        assert_eq!(values.iter().map(|v| v.0).collect::<Vec<_>>(), vec![2, 5], "{name}: {values:?}");
        assert!(values.iter().all(|(_, v)| (v - 0.8).abs() < 1e-6), "{name}: {values:?}");
    }
    // The sanity check logged nothing; validation once per epoch.
    assert_eq!(column(&csv, "val_loss").len(), 2);

    let metrics = trainer.callback_metrics();
    assert!((metrics["x"] - 0.8).abs() < 1e-9 && (metrics["x_epoch"] - 0.8).abs() < 1e-9, "{metrics:?}");
    assert_eq!(metrics["val_loss"], 0.5);
    assert!(trainer.state().progress_bar_metrics.contains_key("t_epoch"));
    let _ = std::fs::remove_dir_all(root);
}
