//! Trainer options: bad values are clear errors; fast_dev_run, EarlyStopping and ModelCheckpoint
//! behave as in Lightning.

use fulmen::prelude::*;

use crate::probe::{PointsData, Probe, temp_dir};

fn builder() -> fulmen::TrainerBuilder<Probe> {
    Trainer::builder().accelerator(fulmen::Accelerator::Cpu).enable_progress_bar(false).enable_model_summary(false)
}

fn build_error(b: fulmen::TrainerBuilder<Probe>) -> String {
    match b.build() {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_options_are_errors_that_say_what_to_do() {
    assert!(build_error(builder().max_epochs(0)).contains("max_epochs = 0"));
    assert!(build_error(builder().limit_train_batches(1.5)).contains("0.0..=1.0"));
    assert!(build_error(builder().limit_val_batches(-1)).contains("limit_val_batches"));
    assert!(build_error(builder().devices(2)).contains("devices = 2"));
    assert!(build_error(builder().log_every_n_steps(0)).contains("log_every_n_steps"));
    let cuda = build_error(builder().accelerator(fulmen::Accelerator::Cuda));
    assert!(cuda.contains("--features cuda"), "{cuda}");
    let unknown = "tpu".parse::<fulmen::Accelerator>().unwrap_err().to_string();
    assert!(unknown.contains("auto, cpu, cuda, wgpu"), "{unknown}");
}

#[test]
fn fast_dev_run_runs_one_batch_of_each_and_writes_nothing() {
    let root = temp_dir("fast-dev-run");
    let mut trainer = builder().fast_dev_run(1).default_root_dir(&root).callback(ModelCheckpoint::default()).build().unwrap();
    let model = Probe::new(trainer.device(), vec![1.0]);
    trainer.fit(model, &mut PointsData { train: 40, val: 40, batch: 4 }).unwrap();
    assert_eq!(trainer.state().global_step, 1);
    assert!(trainer.callback_metrics().contains_key("val_loss"));
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0, "fast_dev_run must not write logs or checkpoints");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn limits_and_max_steps_bound_the_run() {
    let mut trainer = builder().no_logger().max_epochs(3).limit_train_batches(2).build().unwrap();
    let model = Probe::new(trainer.device(), vec![1.0]);
    trainer.fit(model, &mut PointsData { train: 40, val: 8, batch: 4 }).unwrap();
    assert_eq!(trainer.state().global_step, 6);
    let mut trainer = builder().no_logger().max_steps(5).limit_train_batches(0.5).build().unwrap();
    let model = Probe::new(trainer.device(), vec![1.0]);
    trainer.fit(model, &mut PointsData { train: 40, val: 8, batch: 4 }).unwrap();
    assert_eq!(trainer.state().global_step, 5);
    assert_eq!(trainer.state().epoch, 1, "epoch 0 ran 5 of 10 batches, max_steps stopped epoch 1 before it began");
}

#[test]
fn early_stopping_stops_after_patience_checks_without_improvement() {
    let losses = vec![1.0, 0.9, 0.95, 0.91, 0.97, 0.2, 0.1];
    let mut trainer = builder().no_logger().max_epochs(7).callback(EarlyStopping::new("val_loss").patience(3)).build().unwrap();
    let model = Probe::new(trainer.device(), losses);
    trainer.fit(model, &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    // Best 0.9 at epoch 1; epochs 2, 3, 4 do not improve: stop after epoch 4.
    assert_eq!(trainer.state().epoch, 5);
    let reason = trainer.state().stop_reason.clone().expect("a stop reason");
    assert!(reason.contains("val_loss") && reason.contains("0.9"), "{reason}");
}

#[test]
fn early_stopping_names_the_available_metrics_when_its_metric_is_missing() {
    let mut trainer = builder().no_logger().max_epochs(2).callback(EarlyStopping::new("val_acc")).build().unwrap();
    let model = Probe::new(trainer.device(), vec![1.0]);
    let err = trainer.fit(model, &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap_err().to_string();
    assert!(err.contains("val_acc") && err.contains("val_loss") && err.contains("strict"), "{err}");
}

#[test]
fn model_checkpoint_keeps_the_top_k_by_the_monitored_metric() {
    let root = temp_dir("checkpoint-topk");
    let dir = root.join("ckpts");
    let mut trainer = builder()
        .no_logger()
        .max_epochs(4)
        .callback(ModelCheckpoint::monitor("val_loss").dirpath(&dir).save_top_k(2).filename("{epoch}-{val_loss:.2f}").save_last(true))
        .build()
        .unwrap();
    let model = Probe::new(trainer.device(), vec![3.0, 1.0, 2.0, 0.5]);
    trainer.fit(model, &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, vec!["epoch=1-val_loss=1.00.ckpt", "epoch=3-val_loss=0.50.ckpt", "last.ckpt"]);
    assert_eq!(trainer.state().best_model_path.as_deref(), Some(dir.join("epoch=3-val_loss=0.50.ckpt").as_path()));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn model_checkpoint_every_n_epochs_steps_and_weights_only() {
    let root = temp_dir("checkpoint-every");
    let listing = |dir: &std::path::Path| {
        let mut files: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        files.sort();
        files
    };
    // 2 batches per epoch, 4 epochs: every 2 epochs keeps epochs 1 and 3; every 3 steps, steps 3 and 6.
    let (epochs, steps) = (root.join("epochs"), root.join("steps"));
    let mut trainer = builder()
        .no_logger()
        .max_epochs(4)
        .callback(ModelCheckpoint::default().dirpath(&epochs).every_n_epochs(2).save_top_k(-1).save_weights_only(true))
        .callback(ModelCheckpoint::default().dirpath(&steps).every_n_train_steps(3).save_top_k(-1))
        .build()
        .unwrap();
    trainer.fit(Probe::new(trainer.device(), vec![1.0]), &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    assert_eq!(listing(&epochs), ["epoch=1-step=4.ckpt", "epoch=3-step=8.ckpt"]);
    assert_eq!(listing(&steps), ["epoch=1-step=3.ckpt", "epoch=2-step=6.ckpt"]);
    let weights_only = fulmen::Checkpoint::read(&epochs.join("epoch=3-step=8.ckpt")).unwrap();
    assert_eq!(weights_only.header.sections.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["model"]);
    let mid_epoch = fulmen::Checkpoint::read(&steps.join("epoch=1-step=3.ckpt")).unwrap();
    assert_eq!((mid_epoch.header.batches_in_epoch, mid_epoch.header.epoch_finished), (1, false));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn learning_rate_monitor_logs_every_epoch_by_default() {
    let root = temp_dir("lr-monitor");
    let mut trainer = builder().max_epochs(3).default_root_dir(&root).callback(LearningRateMonitor::new()).build().unwrap();
    trainer.fit(Probe::new(trainer.device(), vec![1.0]), &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    let csv = crate::probe::read_csv(&root.join("lightning_logs/version_0/metrics.csv"));
    // Probe uses SGD(lr = 0.1); one row per epoch start, at global steps 0, 2, 4.
    assert_eq!(crate::probe::column(&csv, "lr-SGD"), [(0, 0.1), (2, 0.1), (4, 0.1)]);
    let _ = std::fs::remove_dir_all(root);
}
