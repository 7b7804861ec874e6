//! Mixed and low precision (`precision = "16-mixed" | "bf16-mixed" | "*-true"`) on flex: the
//! same training as `32-true` within the dtype's error, the loss scaler's skips and growth,
//! f32 checkpoints that load in any precision. In the resume binary: the comparisons need the
//! same initial weights, drawn from Burn's process-wide generator.

use fulmen::GradScalerConfig;
use fulmen::precision::GradScalerState;
use fulmen::prelude::*;

use crate::probe::temp_dir;

/// A small CNN on the synthetic shapes: conv, batch norm, pool, linear, log-softmax.
#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 32, 32], loss = nll, metrics(accuracy), optimizer = adam(lr = 0.003))]
pub struct Small {
    #[layer(conv2d(3 -> 8, kernel = 3), relu, max_pool(2))]
    conv1: Conv2d,
    #[layer(batch_norm)]
    norm: BatchNorm,
    #[layer(conv2d(8 -> 16, kernel = 3), relu, max_pool(2))]
    conv2: Conv2d,
    #[layer(linear(auto -> 10), log_softmax)]
    fc: Linear,
}

fn data() -> SyntheticDataModule {
    SyntheticDataModule::new(5).sizes(1024, 128, 512).batch_size(32).num_workers(0)
}

fn trainer(precision: &str, configure: impl FnOnce(fulmen::TrainerBuilder<Small>) -> fulmen::TrainerBuilder<Small>) -> Trainer<Small> {
    let builder = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .precision(precision.parse().unwrap())
        .seed(3)
        .log_every_n_steps(1)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false);
    configure(builder).build().unwrap()
}

fn fresh(trainer: &Trainer<Small>) -> Small {
    fulmen::seed_everything(3, trainer.device());
    Small::new(trainer.device()).unwrap()
}

/// Records `train_loss_step` after each of the first steps.
#[derive(Default)]
struct FirstLosses(std::sync::Arc<std::sync::Mutex<Vec<f64>>>);

impl Callback<Small> for FirstLosses {
    fn on_train_batch_end(&mut self, t: &mut TrainerView<'_, Small>, _batch_idx: usize) -> fulmen::Result<()> {
        let mut losses = self.0.lock().unwrap();
        if losses.len() < 3 {
            losses.push(t.state().callback_metrics["train_loss_step"]);
        }
        Ok(())
    }
}

fn weights(model: &Small) -> Vec<f32> {
    model.conv1.weight.val().into_data().convert::<f32>().try_to_vec().unwrap()
}

#[test]
fn mixed_precision_trains_as_32_true_does_within_the_dtypes_error() {
    let _turn = crate::exclusive();
    let mut results = Vec::new();
    for precision in ["32-true", "bf16-mixed", "16-mixed"] {
        let losses = FirstLosses::default();
        let first = losses.0.clone();
        let mut t = trainer(precision, |b| b.max_epochs(2).callback(losses));
        let model = t.fit(fresh(&t), &mut data()).unwrap();
        assert_eq!(model.conv1.weight.val().dtype(), fulmen::burn::tensor::DType::F32, "{precision}: fit returns the f32 master weights");
        let acc = t.test(&model, &mut data()).unwrap()["test_acc"];
        let first = first.lock().unwrap().clone();
        eprintln!("{precision}: test_acc {acc}, first losses {first:?}");
        results.push((precision, acc, first));
    }
    let (_, reference_acc, reference) = &results[0];
    assert!(*reference_acc > 0.8, "32-true learned: {reference_acc}");
    // The first loss is the forward pass alone, on the same weights and batch. bf16 keeps 8
    // significant bits (relative rounding 2^-9 per op), f16 11 bits (2^-12); the logits go
    // through ~4 rounded layers whose errors partly cancel, so allow 4 roundings: 2^-7 for
    // bf16, 2^-10 for f16, relative to the loss.
    for (precision, acc, losses) in &results[1..] {
        let bound = if precision.starts_with("bf16") { 2f64.powi(-7) } else { 2f64.powi(-10) };
        let error = (losses[0] - reference[0]).abs() / reference[0];
        assert!(error <= bound, "{precision}: first loss {} vs {} (relative {error:.2e} > {bound:.2e})", losses[0], reference[0]);
        assert!((acc - reference_acc).abs() <= 0.02, "{precision}: test accuracy {acc} vs 32-true {reference_acc}");
    }
}

#[test]
fn the_loss_scaler_skips_overflowing_steps_and_grows_after_its_interval() {
    let _turn = crate::exclusive();
    // 2^40 times the loss overflows f16's 65,504 in the logits' gradients: every step is
    // skipped, the weights stay, and the scale halves each time.
    let huge = GradScalerConfig { init_scale: 2f64.powi(40), ..Default::default() };
    let mut t = trainer("16-mixed", |b| b.max_steps(3).num_sanity_val_steps(0).grad_scaler(huge));
    let start = fresh(&t);
    let before = weights(&start);
    let model = t.fit(start, &mut data()).unwrap();
    assert_eq!(weights(&model), before, "a skipped step must leave the weights untouched");
    let scaler = t.state().grad_scaler.expect("16-mixed keeps a scaler");
    assert_eq!((scaler.scale, scaler.skipped_steps, t.state().global_step), (2f64.powi(37), 3, 3));
    assert_eq!(t.callback_metrics()["grad_scale"], 2f64.powi(37), "the scale is logged");

    // From a scale of 1 nothing overflows: after every 2 finite steps it doubles.
    let small = GradScalerConfig { init_scale: 1.0, growth_interval: 2, ..Default::default() };
    let mut t = trainer("16-mixed", |b| b.max_steps(5).num_sanity_val_steps(0).grad_scaler(small));
    let start = fresh(&t);
    let before = weights(&start);
    let model = t.fit(start, &mut data()).unwrap();
    assert_ne!(weights(&model), before, "finite steps train");
    let scaler = t.state().grad_scaler.unwrap();
    assert_eq!((scaler.scale, scaler.growth_tracker, scaler.skipped_steps), (4.0, 1, 0));

    let err = Trainer::<Small>::builder().grad_scaler(GradScalerConfig { growth_interval: 0, ..Default::default() }).build().err().unwrap().to_string();
    assert!(err.contains("growth_interval"), "{err}");
}

/// 16-mixed resumes bit for bit, the loss scaler included: with a growth interval of 5 the
/// scale grows (and overflows, and backs off) within the run, so a scaler that restarted at
/// its initial state would step differently.
#[test]
fn a_16_mixed_run_resumed_at_an_epoch_boundary_is_bit_identical() {
    let _turn = crate::exclusive();
    let root = temp_dir("precision-resume");
    let scaler = GradScalerConfig { init_scale: 2f64.powi(14), growth_interval: 5, ..Default::default() };
    let run = |epochs: u64, resume: bool| {
        let checkpoints = ModelCheckpoint::default().dirpath(root.join("ckpts")).save_last(true);
        let mut t = trainer("16-mixed", |b| b.max_epochs(epochs).grad_scaler(scaler).callback(checkpoints));
        let model = if resume { t.fit_from(fresh(&t), &mut data(), "last") } else { t.fit(fresh(&t), &mut data()) }.unwrap();
        (weights(&model), t.state().grad_scaler.unwrap(), t.state().global_step)
    };
    let (full, full_scaler, steps) = run(3, false);
    let _ = std::fs::remove_dir_all(root.join("ckpts"));
    run(2, false);
    let saved = fulmen::Checkpoint::read(&root.join("ckpts/last.ckpt")).unwrap().header.grad_scaler.unwrap();
    let (resumed, resumed_scaler, resumed_steps) = run(3, true);
    assert_eq!(steps, 96);
    assert!(full_scaler.skipped_steps > 0 && full_scaler.scale != 2f64.powi(14), "the scale moved: {full_scaler:?}");
    assert_ne!(saved, GradScalerState { scale: 2f64.powi(14), growth_tracker: 0, skipped_steps: 0 });
    assert_eq!((resumed, resumed_scaler, resumed_steps), (full, full_scaler, steps));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn checkpoints_hold_f32_weights_and_load_in_any_precision() {
    let _turn = crate::exclusive();
    let root = temp_dir("precision-ckpt");
    let fit = |precision: &str, dir: &str| {
        let mut t = trainer(precision, |b| b.max_steps(4).callback(ModelCheckpoint::default().dirpath(root.join(dir))));
        t.fit(fresh(&t), &mut data()).unwrap_or_else(|e| panic!("{precision}: {e}"));
        t.state().best_model_path.clone().unwrap()
    };
    for (trained, tested) in [("bf16-mixed", "32-true"), ("bf16-true", "32-true"), ("32-true", "16-mixed"), ("16-mixed", "bf16-true")] {
        let path = fit(trained, trained);
        let checkpoint = fulmen::Checkpoint::read(&path).unwrap();
        assert_eq!(checkpoint.header.precision.as_deref(), Some(trained));
        let mut t = trainer(tested, |b| b);
        let model = checkpoint.load_weights(Small::new(t.device()).unwrap(), &path).unwrap();
        assert_eq!(model.conv1.weight.val().dtype(), fulmen::burn::tensor::DType::F32, "{trained}: the checkpoint's weights are f32");
        let acc = t.test(&model, &mut data()).unwrap()["test_acc"];
        assert!(acc.is_finite(), "{trained} tested in {tested}: {acc}");
    }
    // `*-true` steps its weights with an f32 update and keeps f32 optimizer state, so its
    // checkpoints resume exactly, in its own precision or any other.
    let straight = |precision: &str| {
        let mut t = trainer(precision, |b| b.max_steps(8));
        weights(&t.fit(fresh(&t), &mut data()).unwrap())
    };
    for precision in ["bf16-true", "16-true"] {
        let path = fit(precision, &format!("resume-{precision}"));
        let mut t = trainer(precision, |b| b.max_steps(8));
        let resumed = t.fit_from(fresh(&t), &mut data(), path.as_path()).unwrap_or_else(|e| panic!("{precision}: {e}"));
        assert_eq!(t.state().global_step, 8);
        assert_eq!(weights(&resumed), straight(precision), "{precision}: 4 steps, a checkpoint and 4 more are 8 steps");
        let mut t = trainer("32-true", |b| b.max_steps(8));
        t.fit_from(fresh(&t), &mut data(), path.as_path()).unwrap_or_else(|e| panic!("{precision} into 32-true: {e}"));
        assert_eq!(t.state().global_step, 8);
    }
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_precision_that_does_not_exist_names_the_ones_that_do() {
    let err = "fp8".parse::<Precision>().unwrap_err().to_string();
    assert!(err.contains("precision `fp8` is not one of 32-true, 16-mixed, bf16-mixed, 16-true, bf16-true"), "{err}");
}
