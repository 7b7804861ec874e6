//! Exact resume: a seeded run interrupted and resumed from its checkpoint computes what the
//! uninterrupted run computes, bit for bit on flex; callback states survive; `last`/`best`.
//! Runs in its own test binary (see main.rs).

use fulmen::burn::lr_scheduler::linear::LinearLrSchedulerConfig;
use fulmen::data::Loader;
use fulmen::data::OrderedLoader;
use fulmen::prelude::*;

use crate::probe::{PointBatcher, Points, PointsData, Probe, column, read_csv, temp_dir};

/// Hyperparameters of [`Net`].
#[hyperparameters]
pub struct NetConfig {
    /// Hidden width.
    #[hparam(default = 16)]
    pub hidden: usize,
    /// Dropout after the hidden layer (it draws from the device generator every step).
    #[hparam(default = 0.2, range = 0.0..1.0)]
    pub drop: f64,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = NetConfig, metrics(accuracy), configure_optimizers = optimizer)]
pub struct Net {
    #[layer(linear(2 -> hidden), relu, dropout(p = drop))]
    fc1: Linear,
    #[layer(linear(hidden -> 2))]
    fc2: Linear,
    #[module(skip)]
    hparams: NetConfig,
}

impl Net {
    /// Adam with a linear decay from 0.01 to 0.001 over 20 steps: the scheduler's state must
    /// survive a resume too.
    fn optimizer(&self) -> fulmen::OptimizerConfig {
        let decay = LinearLrSchedulerConfig::new(0.01, 0.001, 20).init().expect("a valid schedule");
        fulmen::adam(0.01).with_scheduler(decay, Interval::Step)
    }
}

/// 64 training points shuffled every epoch by seed, 16 validation points, 2 loader workers,
/// batches of 8.
struct Shuffled;

/// [`Shuffled`] in batches of another size.
struct ShuffledBy(usize);

fn loader(n: usize, shuffle: bool, batch: usize) -> Loader<ClassificationBatch<2>> {
    let loader = OrderedLoader::new(Points(n), PointBatcher, batch).num_workers(2);
    if shuffle { loader.shuffle(11).into_loader() } else { loader.into_loader() }
}

impl DataModule for ShuffledBy {
    type Batch = ClassificationBatch<2>;
    fn train_dataloader(&self) -> fulmen::Result<Loader<Self::Batch>> {
        Ok(loader(64, true, self.0))
    }
    fn val_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        Ok(Some(loader(16, false, self.0)))
    }
    fn test_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        Ok(Some(loader(16, false, self.0)))
    }
}

impl DataModule for Shuffled {
    type Batch = ClassificationBatch<2>;
    fn train_dataloader(&self) -> fulmen::Result<Loader<Self::Batch>> {
        ShuffledBy(8).train_dataloader()
    }
    fn val_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        ShuffledBy(8).val_dataloader()
    }
    fn test_dataloader(&self) -> fulmen::Result<Option<Loader<Self::Batch>>> {
        ShuffledBy(8).test_dataloader()
    }
}

fn trainer(root: &std::path::Path, epochs: u64, checkpoint: ModelCheckpoint) -> Trainer<Net> {
    Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .seed(7)
        .max_epochs(epochs)
        .log_every_n_steps(1)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .default_root_dir(root)
        .callback(checkpoint.dirpath(root.join("ckpts")))
        .callback(LearningRateMonitor::new().logging_interval(Interval::Step))
        .build()
        .unwrap()
}

fn fresh_model(trainer: &Trainer<Net>, drop: f64) -> Net {
    fulmen::seed_everything(7, trainer.device());
    Net::new(NetConfig::new().with_drop(drop), trainer.device()).unwrap()
}

fn weights(net: &Net) -> Vec<Vec<f32>> {
    [net.fc1.weight.val(), net.fc2.weight.val()].into_iter().map(|w| w.into_data().try_to_vec::<f32>().unwrap()).collect()
}

/// Every (step, value) of every metric column of a run's metrics.csv, from `from_step` on.
fn rows(root: &std::path::Path, version: u32, from_step: u64) -> Vec<(String, Vec<(u64, f64)>)> {
    let csv = read_csv(&root.join(format!("lightning_logs/version_{version}/metrics.csv")));
    let names: Vec<String> = csv.0.iter().filter(|h| *h != "step").cloned().collect();
    names.into_iter().map(|n| (n.clone(), column(&csv, &n).into_iter().filter(|(s, _)| *s >= from_step).collect())).collect()
}

#[test]
fn a_run_resumed_at_an_epoch_boundary_is_bit_identical() {
    let _turn = crate::exclusive();
    let (full_root, split_root) = (temp_dir("resume-full"), temp_dir("resume-split"));
    let mut full = trainer(&full_root, 4, ModelCheckpoint::default());
    let model = fresh_model(&full, 0.2);
    let full_model = full.fit(model, &mut Shuffled).unwrap();

    let mut first = trainer(&split_root, 2, ModelCheckpoint::default().save_last(true));
    let model = fresh_model(&first, 0.2);
    first.fit(model, &mut Shuffled).unwrap();
    let mut second = trainer(&split_root, 4, ModelCheckpoint::default().save_last(true));
    // The resumed run starts from other weights: everything must come from the checkpoint.
    let other = Net::new(NetConfig::new(), second.device()).unwrap();
    let resumed = second.fit_from(other, &mut Shuffled, "last").unwrap();

    assert_eq!(second.state().resumed_from.as_deref(), Some(split_root.join("ckpts/last.ckpt").as_path()));
    assert_eq!(second.state().global_step, full.state().global_step);
    assert_eq!(second.state().global_step, 32);
    assert_eq!(weights(&resumed), weights(&full_model), "weights after 4 epochs");
    let expected = rows(&full_root, 0, 16);
    assert_eq!(rows(&split_root, 1, 0), expected, "epochs 2-3: the same metrics at the same global steps");
    assert!(expected.iter().any(|(n, v)| n == "train_loss_step" && v.len() == 16), "{expected:?}");
    let lr = &expected.iter().find(|(n, _)| n == "lr-Adam").expect("the monitor logs lr-Adam").1;
    assert_eq!(lr.len(), 16);
    assert!((lr[0].1 - (0.01 - 0.009 * 16.0 / 20.0)).abs() < 1e-12 && (lr[15].1 - 0.001).abs() < 1e-12, "{lr:?}");
}

#[test]
fn a_run_resumed_mid_epoch_continues_with_the_next_batch() {
    let _turn = crate::exclusive();
    let (full_root, split_root) = (temp_dir("resume-mid-full"), temp_dir("resume-mid-split"));
    let mut full = trainer(&full_root, 2, ModelCheckpoint::default());
    let model = fresh_model(&full, 0.0);
    let full_model = full.fit(model, &mut Shuffled).unwrap();

    let mut first = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .seed(7)
        .max_steps(12)
        .log_every_n_steps(1)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .default_root_dir(&split_root)
        .callback(ModelCheckpoint::default().dirpath(split_root.join("ckpts")).every_n_train_steps(4))
        .build()
        .unwrap();
    let model = fresh_model(&first, 0.0);
    first.fit(model, &mut Shuffled).unwrap();
    let checkpoint = fulmen::Checkpoint::read(&split_root.join("ckpts/epoch=1-step=12.ckpt")).unwrap();
    assert_eq!((checkpoint.header.epoch, checkpoint.header.batches_in_epoch, checkpoint.header.epoch_finished), (1, 4, false));

    let mut second = trainer(&split_root, 2, ModelCheckpoint::default());
    let resumed = second.fit_from(fresh_model(&first, 0.0), &mut Shuffled, "last").unwrap();
    assert_eq!(second.state().global_step, 16);
    assert_eq!(weights(&resumed), weights(&full_model));
    let resumed_steps: Vec<u64> = rows(&split_root, 1, 0).into_iter().find(|(n, _)| n == "train_loss_step").unwrap().1.iter().map(|(s, _)| *s).collect();
    assert_eq!(resumed_steps, (12..16).collect::<Vec<_>>(), "the global step continues");
}

/// A mid-epoch checkpoint records the samples done, so a resume with another batch size skips
/// those samples; a batch size that would split a batch, or another seed (another order), is
/// refused with the fix.
#[test]
fn a_mid_epoch_resume_with_another_batch_size_skips_the_samples_done() {
    let _turn = crate::exclusive();
    let root = temp_dir("resume-rebatch");
    let mut first = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .seed(7)
        .max_steps(12)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .callback(ModelCheckpoint::default().dirpath(root.join("ckpts")).every_n_train_steps(12))
        .build()
        .unwrap();
    first.fit(fresh_model(&first, 0.0), &mut Shuffled).unwrap();
    let path = root.join("ckpts/epoch=1-step=12.ckpt");
    let header = fulmen::Checkpoint::read(&path).unwrap().header;
    assert_eq!((header.epoch, header.batches_in_epoch, header.samples_in_epoch, header.seed), (1, 4, Some(32), Some(7)));

    let resume = |batch: usize, seed: u64| {
        let mut t = Trainer::builder()
            .accelerator(fulmen::Accelerator::Cpu)
            .seed(seed)
            .max_epochs(2)
            .no_logger()
            .enable_progress_bar(false)
            .enable_model_summary(false)
            .build()
            .unwrap();
        let result = t.fit_from(fresh_model(&t, 0.0), &mut ShuffledBy(batch), path.as_path());
        result.map(|_| (t.state().global_step, t.state().train_batches_done, t.state().train_samples_done))
    };
    // Batches of 16: 32 samples are 2 batches; the epoch's other 32 samples are 2 steps.
    assert_eq!(resume(16, 7).unwrap(), (14, 4, 64));
    // Batches of 4: 8 skipped, 8 trained.
    assert_eq!(resume(4, 7).unwrap(), (20, 16, 64));
    let err = resume(24, 7).unwrap_err().to_string();
    assert!(err.contains("after sample 32 of epoch 1, which falls inside a batch") && err.contains("divides 32"), "{err}");
    let err = resume(8, 8).unwrap_err().to_string();
    assert!(err.contains("by a run with seed 7, and this run has seed 8") && err.contains("Resume with the checkpoint's seed"), "{err}");
}

#[test]
fn early_stopping_keeps_its_patience_across_a_resume() {
    let _turn = crate::exclusive();
    // val_loss = 1, 2, 3, ...: never improves after epoch 0, so patience 3 stops after epoch 3.
    let losses: Vec<f64> = (1..=10).map(f64::from).collect();
    let root = temp_dir("resume-es");
    let build = |epochs| {
        Trainer::builder()
            .accelerator(fulmen::Accelerator::Cpu)
            .max_epochs(epochs)
            .enable_progress_bar(false)
            .enable_model_summary(false)
            .default_root_dir(&root)
            .callback(EarlyStopping::new("val_loss").patience(3))
            .callback(ModelCheckpoint::default().dirpath(root.join("ckpts")).save_last(true))
            .build()
            .unwrap()
    };
    let mut first = build(2);
    first.fit(Probe::new(first.device(), losses.clone()), &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    let checkpoint = fulmen::Checkpoint::read(&root.join("ckpts/last.ckpt")).unwrap();
    let state = &checkpoint.header.callbacks["earlystopping{monitor=val_loss, mode=min}"];
    assert_eq!((state["wait_count"].as_u64(), state["best_score"].as_f64()), (Some(1), Some(1.0)), "{state}");

    let mut second = build(10);
    second.fit_from(Probe::new(second.device(), losses), &mut PointsData { train: 8, val: 4, batch: 4 }, "last").unwrap();
    assert_eq!(second.state().epoch, 4, "stopped after epoch 3, as the uninterrupted run does");
    assert!(second.state().stop_reason.as_deref().is_some_and(|r| r.contains("did not improve in the last 3")), "{:?}", second.state().stop_reason);
}

#[test]
fn best_and_last_are_found_by_a_new_trainer() {
    let _turn = crate::exclusive();
    let root = temp_dir("resume-best");
    let checkpoint = || ModelCheckpoint::monitor("val_loss").save_top_k(2).save_last(true);
    let mut first = trainer(&root, 3, checkpoint());
    let model = fresh_model(&first, 0.0);
    first.fit(model, &mut Shuffled).unwrap();
    let best = first.state().best_model_path.clone().expect("a best checkpoint");
    assert_eq!(std::fs::read_dir(root.join("ckpts")).unwrap().count(), 3, "two best + last.ckpt");

    // A new Trainer (a new process, say) finds the best through the last checkpoint's state.
    let mut tester = trainer(&root, 1, checkpoint());
    let metrics = tester.test_from(&mut Shuffled, "best").unwrap();
    let reference = {
        let model = Net::load_from_checkpoint(&best, tester.device()).unwrap();
        tester.test(&model, &mut Shuffled).unwrap()
    };
    assert_eq!(metrics, reference);

    let err = tester.fit_from(fresh_model(&first, 0.0), &mut Shuffled, root.join("missing.ckpt")).unwrap_err().to_string();
    assert!(err.contains("missing.ckpt") && err.contains("no such file"), "{err}");
    let empty = temp_dir("resume-none");
    let err = trainer(&empty, 1, ModelCheckpoint::default()).fit_from(fresh_model(&first, 0.0), &mut Shuffled, "last").unwrap_err().to_string();
    assert!(err.contains("no .ckpt file"), "{err}");
}

#[test]
fn resuming_from_another_models_checkpoint_says_so() {
    let _turn = crate::exclusive();
    let root = temp_dir("resume-foreign");
    let mut probe_trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(1)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .callback(ModelCheckpoint::default().dirpath(&root))
        .build()
        .unwrap();
    probe_trainer.fit(Probe::new(probe_trainer.device(), vec![1.0]), &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    let path = probe_trainer.state().best_model_path.clone().unwrap();
    let mut t = trainer(&temp_dir("resume-foreign-net"), 1, ModelCheckpoint::default());
    let model = fresh_model(&t, 0.0);
    let err = t.fit_from(model, &mut Shuffled, path).unwrap_err().to_string();
    assert!(err.contains("holds a `integration::probe::Probe`") || err.contains("probe::Probe`, not a"), "{err}");
}
