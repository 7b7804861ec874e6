//! The hook order: the module's hook, then each callback's, as the README documents it,
//! recorded call by call through fit, validate, test and predict; and on_exception on failure.

use std::sync::{Arc, Mutex};

use fulmen::burn::nn::LinearConfig;
use fulmen::data::SetupStage;
use fulmen::loss::cross_entropy;
use fulmen::prelude::*;
use fulmen::{Error, Stage};

use crate::probe::PointsData;

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, entry: String) {
    log.lock().unwrap().push(entry);
}

/// A linear classifier that records every module hook; its training step fails at
/// `fail_at_step` when set.
#[derive(Module, Debug)]
pub struct Recorder {
    linear: Linear,
    #[module(skip)]
    log: Log,
    #[module(skip)]
    fail_at_step: Option<u64>,
    #[module(skip)]
    nan_at_step: Option<u64>,
}

macro_rules! module_hooks {
    ($($name:ident),*) => {$(
        fn $name(&mut self) -> fulmen::Result<()> {
            push(&self.log, format!("module:{}", stringify!($name)));
            Ok(())
        }
    )*};
}

macro_rules! module_batch_hooks {
    ($($name:ident),*) => {$(
        fn $name(&mut self, _batch_idx: usize) -> fulmen::Result<()> {
            push(&self.log, format!("module:{}", stringify!($name)));
            Ok(())
        }
    )*};
}

impl LightningModule for Recorder {
    type Batch = ClassificationBatch<2>;
    type Input = Tensor<2>;
    type Output = Tensor<2>;
    type Prediction = Tensor<2>;

    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.linear.forward(input)
    }
    fn training_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> fulmen::Result<Tensor<1>> {
        if self.fail_at_step == Some(ctx.global_step()) {
            return Err(Error::user("step failed on purpose"));
        }
        let loss = cross_entropy(self.forward(batch.inputs), batch.targets);
        Ok(if self.nan_at_step == Some(ctx.global_step()) { loss.mul_scalar(f64::NAN) } else { loss })
    }
    fn validation_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> fulmen::Result<()> {
        ctx.log("val_loss", cross_entropy(self.forward(batch.inputs), batch.targets))
    }
    fn test_step(&self, batch: Self::Batch, ctx: &mut StepContext) -> fulmen::Result<()> {
        ctx.log("test_loss", cross_entropy(self.forward(batch.inputs), batch.targets))
    }
    fn predict_step(&self, batch: Self::Batch, _ctx: &mut StepContext) -> fulmen::Result<Tensor<2>> {
        Ok(self.forward(batch.inputs))
    }
    fn configure_optimizers(&self) -> fulmen::Optimizers {
        fulmen::sgd(0.1).into()
    }
    fn setup(&mut self, _stage: SetupStage) -> fulmen::Result<()> {
        push(&self.log, "module:setup".into());
        Ok(())
    }
    fn teardown(&mut self, _stage: SetupStage) -> fulmen::Result<()> {
        push(&self.log, "module:teardown".into());
        Ok(())
    }
    fn on_train_epoch_start(&mut self, _epoch: u64) -> fulmen::Result<()> {
        push(&self.log, "module:on_train_epoch_start".into());
        Ok(())
    }
    fn on_train_epoch_end(&mut self, _epoch: u64) -> fulmen::Result<()> {
        push(&self.log, "module:on_train_epoch_end".into());
        Ok(())
    }
    fn on_before_backward(&mut self, _loss: &Tensor<1>) -> fulmen::Result<()> {
        push(&self.log, "module:on_before_backward".into());
        Ok(())
    }
    module_hooks!(
        on_fit_start,
        on_fit_end,
        on_train_start,
        on_train_end,
        on_validation_start,
        on_validation_end,
        on_test_start,
        on_test_end,
        on_predict_start,
        on_predict_end,
        on_validation_epoch_start,
        on_validation_epoch_end,
        on_test_epoch_start,
        on_test_epoch_end,
        on_predict_epoch_start,
        on_predict_epoch_end,
        on_after_backward
    );
    fn on_before_optimizer_step(&mut self, optimizer: &fulmen::OptimizerConfig) -> fulmen::Result<()> {
        assert_eq!(optimizer.name, "SGD(lr=0.1)", "the hook receives the optimizer about to step");
        push(&self.log, "module:on_before_optimizer_step".into());
        Ok(())
    }
    module_batch_hooks!(
        on_train_batch_start,
        on_train_batch_end,
        on_validation_batch_start,
        on_validation_batch_end,
        on_test_batch_start,
        on_test_batch_end,
        on_predict_batch_start,
        on_predict_batch_end
    );
}

/// A callback that records every hook.
struct Tracer(Log);

macro_rules! callback_hooks {
    ($($name:ident),*) => {$(
        fn $name(&mut self, _t: &mut TrainerView<'_, Recorder>) -> fulmen::Result<()> {
            push(&self.0, format!("callback:{}", stringify!($name)));
            Ok(())
        }
    )*};
}

macro_rules! callback_batch_hooks {
    ($($name:ident),*) => {$(
        fn $name(&mut self, _t: &mut TrainerView<'_, Recorder>, _batch_idx: usize) -> fulmen::Result<()> {
            push(&self.0, format!("callback:{}", stringify!($name)));
            Ok(())
        }
    )*};
}

impl Callback<Recorder> for Tracer {
    fn setup(&mut self, _t: &mut TrainerView<'_, Recorder>, _stage: SetupStage) -> fulmen::Result<()> {
        push(&self.0, "callback:setup".into());
        Ok(())
    }
    fn teardown(&mut self, _t: &mut TrainerView<'_, Recorder>, _stage: SetupStage) -> fulmen::Result<()> {
        push(&self.0, "callback:teardown".into());
        Ok(())
    }
    fn on_before_backward(&mut self, _t: &mut TrainerView<'_, Recorder>, _loss: &Tensor<1>) -> fulmen::Result<()> {
        push(&self.0, "callback:on_before_backward".into());
        Ok(())
    }
    fn on_exception(&mut self, t: &mut TrainerView<'_, Recorder>, error: &Error) -> fulmen::Result<()> {
        push(&self.0, format!("callback:on_exception at step {}: {error}", t.state().global_step));
        Ok(())
    }
    callback_hooks!(
        on_fit_start,
        on_fit_end,
        on_sanity_check_start,
        on_sanity_check_end,
        on_train_start,
        on_train_end,
        on_validation_start,
        on_validation_end,
        on_test_start,
        on_test_end,
        on_predict_start,
        on_predict_end,
        on_train_epoch_start,
        on_train_epoch_end,
        on_validation_epoch_start,
        on_validation_epoch_end,
        on_test_epoch_start,
        on_test_epoch_end,
        on_predict_epoch_start,
        on_predict_epoch_end,
        on_after_backward
    );
    fn on_before_optimizer_step(&mut self, _t: &mut TrainerView<'_, Recorder>, optimizer: &fulmen::OptimizerConfig) -> fulmen::Result<()> {
        assert_eq!(optimizer.name, "SGD(lr=0.1)", "the hook receives the optimizer about to step");
        push(&self.0, "callback:on_before_optimizer_step".into());
        Ok(())
    }
    callback_batch_hooks!(
        on_train_batch_start,
        on_train_batch_end,
        on_validation_batch_start,
        on_validation_batch_end,
        on_test_batch_start,
        on_test_batch_end,
        on_predict_batch_start,
        on_predict_batch_end
    );
}

/// `module:<hook>` then `callback:<hook>`.
fn both(hooks: &[&str]) -> Vec<String> {
    hooks.iter().flat_map(|h| [format!("module:{h}"), format!("callback:{h}")]).collect()
}

fn validation_run(batches: usize) -> Vec<String> {
    let mut out = both(&["on_validation_start", "on_validation_epoch_start"]);
    for _ in 0..batches {
        out.extend(both(&["on_validation_batch_start", "on_validation_batch_end"]));
    }
    out.extend(both(&["on_validation_epoch_end", "on_validation_end"]));
    out
}

fn setup(fail_at_step: Option<u64>) -> (Log, Trainer<Recorder>, Recorder) {
    let log: Log = Arc::default();
    let trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(2)
        .num_sanity_val_steps(1)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .callback(Tracer(log.clone()))
        .build()
        .unwrap();
    let model = Recorder { linear: LinearConfig::new(2, 2).init(trainer.device()), log: log.clone(), fail_at_step, nan_at_step: None };
    (log, trainer, model)
}

#[test]
fn hooks_run_module_first_in_lightnings_order() {
    let (log, mut trainer, model) = setup(None);
    // 2 training batches and 2 validation batches per epoch.
    let mut data = PointsData { train: 8, val: 8, batch: 4 };
    let model = trainer.fit(model, &mut data).unwrap();

    let mut expected = both(&["setup", "on_fit_start"]);
    expected.push("callback:on_sanity_check_start".into());
    expected.extend(validation_run(1));
    expected.push("callback:on_sanity_check_end".into());
    expected.extend(both(&["on_train_start"]));
    for _epoch in 0..2 {
        expected.extend(both(&["on_train_epoch_start"]));
        for _batch in 0..2 {
            expected.extend(both(&["on_train_batch_start", "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_train_batch_end"]));
        }
        expected.extend(validation_run(2));
        expected.extend(both(&["on_train_epoch_end"]));
    }
    expected.extend(both(&["on_train_end", "on_fit_end", "teardown"]));
    assert_eq!(*log.lock().unwrap(), expected);

    for (stage, run) in [(Stage::Validation, "validation"), (Stage::Test, "test"), (Stage::Predict, "predict")] {
        log.lock().unwrap().clear();
        match stage {
            Stage::Validation => drop(trainer.validate(&model, &mut data).unwrap()),
            Stage::Test => drop(trainer.test(&model, &mut data).unwrap()),
            _ => drop(trainer.predict(&model, &mut data).unwrap()),
        }
        let mut expected = both(&["setup", &format!("on_{run}_start"), &format!("on_{run}_epoch_start")]);
        for _ in 0..2 {
            expected.extend(both(&[&format!("on_{run}_batch_start"), &format!("on_{run}_batch_end")]));
        }
        expected.extend(both(&[&format!("on_{run}_epoch_end"), &format!("on_{run}_end"), "teardown"]));
        assert_eq!(*log.lock().unwrap(), expected, "{run}");
    }
}

#[test]
fn a_failing_step_reaches_on_exception_and_stops_fit() {
    let (log, mut trainer, model) = setup(Some(3));
    let err = trainer.fit(model, &mut PointsData { train: 8, val: 8, batch: 4 }).unwrap_err();
    assert!(err.to_string().contains("step failed on purpose"), "{err}");
    let log = log.lock().unwrap();
    assert_eq!(log.last().map(String::as_str), Some("callback:on_exception at step 3: step failed on purpose"), "{log:#?}");
    assert!(!log.iter().any(|e| e.ends_with("on_fit_end")));
    assert_eq!(log.iter().filter(|e| *e == "callback:on_train_batch_end").count(), 3);
}

#[test]
fn a_nan_loss_is_reported_with_the_step_that_produced_it() {
    let (log, mut trainer, mut model) = setup(None);
    model.nan_at_step = Some(1);
    // 4 steps per epoch: the loss is read at the epoch end, and names step 1, not 3.
    let err = trainer.fit(model, &mut PointsData { train: 16, val: 4, batch: 4 }).unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { step: 1, epoch: 0, .. }), "{err}");
    assert!(err.to_string().contains("NaN at global step 1 (epoch 0)"), "{err}");
    assert!(log.lock().unwrap().last().is_some_and(|e| e.starts_with("callback:on_exception")));
}
