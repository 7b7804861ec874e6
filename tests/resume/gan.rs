//! Manual optimization with two optimizers: a small GAN on a 2-d Gaussian learns its target,
//! resumes bit for bit with both optimizers and both schedulers, and calls its hooks in
//! Lightning's order; what manual optimization refuses, it refuses with the fix.

use std::sync::{Arc, Mutex};

use fulmen::TrainerBuilder;
use fulmen::burn::data::dataloader::batcher::Batcher;
use fulmen::burn::data::dataset::{Dataset, DatasetError};
use fulmen::burn::lr_scheduler::linear::LinearLrSchedulerConfig;
use fulmen::burn::nn::{LeakyReluConfig, LinearConfig};
use fulmen::burn::tensor::activation::{relu, softplus};
use fulmen::burn::tensor::{Distribution, TensorData};
use fulmen::data::{Loader, OrderedLoader};
use fulmen::nn::linear_forward;
use fulmen::prelude::*;
use fulmen::rng::SplitMix64;

use crate::probe::{column, read_csv, temp_dir};

/// Where the real samples are: N([3, -2], 0.5² I).
const MEAN: [f32; 2] = [3.0, -2.0];
const STD: f32 = 0.5;
const NOISE: usize = 4;

type Trace = Arc<Mutex<Vec<String>>>;

#[derive(Module, Debug)]
pub struct Generator {
    fc1: Linear,
    fc2: Linear,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    fc1: Linear,
    fc2: Linear,
}

/// A GAN with manual optimization: the discriminator steps, then the generator.
#[derive(Module, Debug)]
pub struct Gan {
    generator: Generator,
    discriminator: Discriminator,
    /// Step the generator (false: a broken GAN whose generator never moves).
    #[module(skip)]
    train_generator: bool,
    /// Turn manual optimization off (to check the error for two optimizers).
    #[module(skip)]
    automatic: bool,
    #[module(skip)]
    trace: Option<Trace>,
    /// The discriminator optimizer's name (the step looks it up as `discriminator`).
    #[module(skip)]
    discriminator_name: &'static str,
}

impl Gan {
    pub fn new(device: &Device) -> Self {
        Gan {
            generator: Generator { fc1: LinearConfig::new(NOISE, 16).init(device), fc2: LinearConfig::new(16, 2).init(device) },
            discriminator: Discriminator { fc1: LinearConfig::new(2, 32).init(device), fc2: LinearConfig::new(32, 1).init(device) },
            train_generator: true,
            automatic: false,
            trace: None,
            discriminator_name: "discriminator",
        }
    }

    fn discriminate(&self, points: Tensor<2>) -> Tensor<2> {
        let d = &self.discriminator;
        let hidden = LeakyReluConfig::new().with_negative_slope(0.2).init().forward(linear_forward(&d.fc1, points));
        linear_forward(&d.fc2, hidden)
    }

    /// The mean of `n` generated points.
    fn generated_mean(&self, n: usize, device: &Device) -> [f32; 2] {
        let z = Tensor::<2>::random([n, NOISE], Distribution::Normal(0.0, 1.0), device);
        let mean = self.forward(z).mean_dim(0).into_data().try_to_vec::<f32>().unwrap();
        [mean[0], mean[1]]
    }
}

fn distance(mean: [f32; 2]) -> f32 {
    ((mean[0] - MEAN[0]).powi(2) + (mean[1] - MEAN[1]).powi(2)).sqrt()
}

impl LightningModule for Gan {
    type Batch = ClassificationBatch<2>;
    type Input = Tensor<2>;
    type Output = Tensor<2>;
    type Prediction = Tensor<2>;

    fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        // fulmen's layer forwards cast the noise (f32) to the weights' dtype under bf16-mixed.
        linear_forward(&self.generator.fc2, relu(linear_forward(&self.generator.fc1, z)))
    }

    fn automatic_optimization(&self) -> bool {
        self.automatic
    }

    fn training_step(&self, batch: Self::Batch, _ctx: &mut StepContext) -> fulmen::Result<Tensor<1>> {
        Ok(self.discriminate(batch.inputs).mean())
    }

    fn manual_training_step(step: &mut ManualStep<'_, Self>, batch: Self::Batch) -> fulmen::Result<()> {
        let real = batch.inputs;
        let device = real.device();
        let z = Tensor::<2>::random([real.dims()[0], NOISE], Distribution::Normal(0.0, 1.0), &device);

        // The discriminator: real points score high, generated ones low (BCE with logits).
        let fake = step.module().forward(z.clone()).detach();
        let d_loss = softplus(-step.module().discriminate(real), 1.0).mean() + softplus(step.module().discriminate(fake), 1.0).mean();
        step.manual_backward(d_loss.clone())?;
        let mut d = step.optimizer("discriminator")?;
        d.step()?;
        d.zero_grad();
        d.scheduler_step();

        // The generator: its points should score high; only its own parameters get gradients.
        step.toggle_optimizer("generator")?;
        let g_loss = softplus(-step.module().discriminate(step.module().forward(z)), 1.0).mean();
        step.manual_backward(g_loss.clone())?;
        let train_generator = step.module().train_generator;
        let mut g = step.optimizer(0)?;
        if train_generator {
            g.step()?;
        }
        g.zero_grad();
        g.scheduler_step();
        step.untoggle_optimizer();

        step.ctx.log("d_loss", &d_loss)?;
        step.ctx.log("g_loss", &g_loss)
    }

    fn configure_optimizers(&self) -> fulmen::Optimizers {
        let schedule = || LinearLrSchedulerConfig::new(0.01, 0.002, 200).init().expect("a valid schedule");
        let adam = || fulmen::adam_betas(0.01, 0.5, 0.999);
        let generator = adam().named("generator").on(&self.generator).with_scheduler(schedule(), Interval::Step);
        let discriminator = adam().named(self.discriminator_name).on(&self.discriminator).with_scheduler(schedule(), Interval::Step);
        vec![generator, discriminator].into()
    }

    fn on_before_optimizer_step(&mut self, optimizer: &OptimizerConfig) -> fulmen::Result<()> {
        if let Some(trace) = &self.trace {
            trace.lock().unwrap().push(format!("module:on_before_optimizer_step({})", optimizer.label()));
        }
        Ok(())
    }
}

/// `n` points of the target distribution, the same for the same index on every run.
#[derive(Clone)]
struct Target(usize);

impl Dataset<[f32; 2]> for Target {
    fn get(&self, index: usize) -> Result<[f32; 2], DatasetError> {
        let mut rng = SplitMix64::new(0x5EED ^ index as u64);
        // Box-Muller.
        let (u, v) = (rng.uniform(f64::EPSILON, 1.0), rng.uniform(0.0, 1.0));
        let r = (-2.0 * u.ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * v;
        Ok([MEAN[0] + STD * (r * angle.cos()) as f32, MEAN[1] + STD * (r * angle.sin()) as f32])
    }
    fn len(&self) -> usize {
        self.0
    }
}

#[derive(Clone)]
struct TargetBatcher;

impl Batcher<[f32; 2], ClassificationBatch<2>> for TargetBatcher {
    fn batch(&self, items: Vec<[f32; 2]>, device: &Device) -> ClassificationBatch<2> {
        let n = items.len();
        ClassificationBatch {
            inputs: Tensor::from_data(TensorData::new(items.concat(), [n, 2]), device),
            targets: Tensor::from_data(TensorData::new(vec![0i64; n], [n]), device),
        }
    }
}

/// 512 target points, 64 per batch, shuffled by seed.
struct TargetData;

impl DataModule for TargetData {
    type Batch = ClassificationBatch<2>;
    fn train_dataloader(&self) -> fulmen::Result<Loader<Self::Batch>> {
        Ok(OrderedLoader::new(Target(512), TargetBatcher, 64).shuffle(3).into_loader())
    }
}

fn trainer(root: &std::path::Path, epochs: u64) -> TrainerBuilder<Gan> {
    Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .seed(5)
        .max_epochs(epochs)
        .log_every_n_steps(1)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .default_root_dir(root)
}

fn fresh(trainer: &Trainer<Gan>) -> Gan {
    fulmen::seed_everything(5, trainer.device());
    Gan::new(trainer.device())
}

fn weights(gan: &Gan) -> Vec<Vec<f32>> {
    let g = &gan.generator;
    let d = &gan.discriminator;
    [g.fc1.weight.val(), g.fc2.weight.val(), d.fc1.weight.val(), d.fc2.weight.val()].into_iter().map(|w| w.into_data().try_to_vec::<f32>().unwrap()).collect()
}

#[test]
fn a_gan_moves_its_samples_to_the_target() {
    let _turn = crate::exclusive();
    let root = temp_dir("gan-learns");
    let mut t = trainer(&root, 25).no_logger().build().unwrap();
    let gan = fresh(&t);
    let before = distance(gan.generated_mean(2000, t.device()));
    let fitted = t.fit(gan, &mut TargetData).unwrap();
    let after = distance(fitted.generated_mean(2000, t.device()));
    assert_eq!(t.state().global_step, 25 * 8 * 2, "one global step per optimizer step, two per batch");
    // The generator starts about 3.6 from the target mean; a generator that never steps stays there.
    assert!(before > 3.0, "the samples start far from the target: {before}");
    assert!(after < 0.5, "the samples' mean came within 0.5 of the target's: {before} -> {after}");

    // In the mixed precisions (f32 master weights; low-dtype forward passes made anew after each
    // backward and step; under 16-mixed each optimizer's step unscales and updates the scaler).
    let mixed = |precision: Precision| {
        let mut t = trainer(&temp_dir("gan-mixed"), 25).precision(precision).no_logger().build().unwrap();
        let fitted = t.fit(fresh(&t), &mut TargetData).unwrap();
        let distance = distance(fitted.generated_mean(2000, t.device()));
        assert!(distance < 0.5, "{precision}: the samples' mean came within 0.5 of the target's: {before} -> {distance}");
        (distance, t.state().grad_scaler)
    };
    let (in_bf16, no_scaler) = mixed(Precision::Bf16Mixed);
    let (in_f16, scaler) = mixed(Precision::F16Mixed);
    assert!(no_scaler.is_none());
    let scaler = scaler.expect("16-mixed keeps a scaler");
    // One scaler update per optimizer step (two per batch): from seed 5 the first step overflows
    // at 2^16 and every one of the other 399 is finite, fewer than the 2,000 it takes to grow.
    assert_eq!(scaler.growth_tracker as u64 + scaler.skipped_steps, 25 * 8 * 2, "{scaler:?}");
    assert_eq!(scaler.scale, 65536.0 * 0.5f64.powi(scaler.skipped_steps as i32), "{scaler:?}");

    let mut broken = trainer(&temp_dir("gan-broken"), 25).no_logger().build().unwrap();
    let mut gan = fresh(&broken);
    gan.train_generator = false;
    let frozen = broken.fit(gan, &mut TargetData).unwrap();
    let stuck = distance(frozen.generated_mean(2000, broken.device()));
    eprintln!(
        "distance of the generated mean to the target's: {before:.3} -> {after:.3} (bf16-mixed: {in_bf16:.3}, 16-mixed: {in_f16:.3}, generator frozen: {stuck:.3})"
    );
    assert!((stuck - before).abs() < 0.2, "a generator that never steps does not move: {before} -> {stuck}");
    assert_eq!(broken.state().global_step, 25 * 8, "only the discriminator stepped");
}

#[test]
fn two_optimizers_and_their_schedulers_resume_bit_identically() {
    let _turn = crate::exclusive();
    let (full_root, split_root) = (temp_dir("gan-full"), temp_dir("gan-split"));
    let mut full = trainer(&full_root, 4).callback(LearningRateMonitor::new().logging_interval(Interval::Step)).build().unwrap();
    let gan = fresh(&full);
    let full_gan = full.fit(gan, &mut TargetData).unwrap();

    let checkpoint = || ModelCheckpoint::default().dirpath(split_root.join("ckpts")).save_last(true);
    let monitor = || LearningRateMonitor::new().logging_interval(Interval::Step);
    let mut first = trainer(&split_root, 2).callback(checkpoint()).callback(monitor()).build().unwrap();
    let gan = fresh(&first);
    first.fit(gan, &mut TargetData).unwrap();
    let saved = fulmen::Checkpoint::read(&split_root.join("ckpts/last.ckpt")).unwrap();
    let names: Vec<&str> = saved.header.optimizers.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["generator", "discriminator"]);
    let sections: Vec<&str> = saved.header.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(sections, ["model", "optimizer", "scheduler", "optimizer.1", "scheduler.1"]);

    let mut second = trainer(&split_root, 4).callback(checkpoint()).callback(monitor()).build().unwrap();
    // Other initial weights: everything must come from the checkpoint.
    let other = Gan::new(second.device());
    let resumed = second.fit_from(other, &mut TargetData, "last").unwrap();
    assert_eq!(second.state().global_step, full.state().global_step);
    assert_eq!(second.state().global_step, 4 * 8 * 2);
    assert_eq!(weights(&resumed), weights(&full_gan), "both networks' weights after 4 epochs");

    let full_csv = read_csv(&full_root.join("lightning_logs/version_0/metrics.csv"));
    let split_csv = read_csv(&split_root.join("lightning_logs/version_1/metrics.csv"));
    for name in ["d_loss", "g_loss", "lr-generator", "lr-discriminator"] {
        let expected: Vec<(u64, f64)> = column(&full_csv, name).into_iter().filter(|(s, _)| *s >= 32).collect();
        assert!(!expected.is_empty(), "{name} is logged");
        assert_eq!(column(&split_csv, name), expected, "{name} in epochs 2-3");
    }
    let lr = column(&full_csv, "lr-generator");
    assert!((lr.last().unwrap().1 - (0.01 - 0.008 * 31.0 / 200.0)).abs() < 1e-9, "the generator's schedule stepped once per batch: {lr:?}");

    // The checkpoint's optimizers must match the module's.
    let mut wrong = trainer(&temp_dir("gan-wrong"), 4).build().unwrap();
    let mut gan = fresh(&wrong);
    gan.automatic = true;
    let err = wrong.fit_from(gan, &mut TargetData, split_root.join("ckpts/last.ckpt")).unwrap_err().to_string();
    assert!(err.contains("automatic optimization steps one"), "{err}");
}

/// Records the callbacks' hooks of training batches (and the module's optimizer hook).
struct Tracer(Trace);

impl Callback<Gan> for Tracer {
    fn on_train_batch_start(&mut self, _t: &mut TrainerView<'_, Gan>, batch_idx: usize) -> fulmen::Result<()> {
        self.0.lock().unwrap().push(format!("on_train_batch_start({batch_idx})"));
        Ok(())
    }
    fn on_before_backward(&mut self, _t: &mut TrainerView<'_, Gan>, _loss: &Tensor<1>) -> fulmen::Result<()> {
        self.0.lock().unwrap().push("on_before_backward".into());
        Ok(())
    }
    fn on_after_backward(&mut self, _t: &mut TrainerView<'_, Gan>) -> fulmen::Result<()> {
        self.0.lock().unwrap().push("on_after_backward".into());
        Ok(())
    }
    fn on_before_optimizer_step(&mut self, t: &mut TrainerView<'_, Gan>, optimizer: &OptimizerConfig) -> fulmen::Result<()> {
        let step = t.state().global_step;
        self.0.lock().unwrap().push(format!("on_before_optimizer_step({}, global_step={step})", optimizer.label()));
        Ok(())
    }
    fn on_train_batch_end(&mut self, t: &mut TrainerView<'_, Gan>, batch_idx: usize) -> fulmen::Result<()> {
        let step = t.state().global_step;
        self.0.lock().unwrap().push(format!("on_train_batch_end({batch_idx}, global_step={step})"));
        Ok(())
    }
}

#[test]
fn manual_optimization_calls_the_hooks_in_lightnings_order() {
    let _turn = crate::exclusive();
    let trace = Trace::default();
    let mut t = trainer(&temp_dir("gan-hooks"), 1).limit_train_batches(2).no_logger().callback(Tracer(trace.clone())).build().unwrap();
    let mut gan = fresh(&t);
    gan.trace = Some(trace.clone());
    t.fit(gan, &mut TargetData).unwrap();
    let batch = |i: usize| {
        let s = 2 * i;
        vec![
            format!("on_train_batch_start({i})"),
            "on_before_backward".into(),
            "on_after_backward".into(),
            "module:on_before_optimizer_step(discriminator)".into(),
            format!("on_before_optimizer_step(discriminator, global_step={s})"),
            "on_before_backward".into(),
            "on_after_backward".into(),
            "module:on_before_optimizer_step(generator)".into(),
            format!("on_before_optimizer_step(generator, global_step={})", s + 1),
            format!("on_train_batch_end({i}, global_step={})", s + 2),
        ]
    };
    assert_eq!(*trace.lock().unwrap(), [batch(0), batch(1)].concat());
}

#[test]
fn manual_optimization_refuses_what_it_does_not_do_with_the_fix() {
    let _turn = crate::exclusive();
    let root = temp_dir("gan-refuse");
    let fit = |builder: TrainerBuilder<Gan>| {
        let mut t = builder.no_logger().build().unwrap();
        let gan = fresh(&t);
        t.fit(gan, &mut TargetData).map(|_| ()).unwrap_err().to_string()
    };
    let err = fit(trainer(&root, 1).gradient_clip(GradientClip::Norm(1.0)));
    assert!(err.contains("gradient_clip") && err.contains("clip_gradients"), "{err}");
    let err = fit(trainer(&root, 1).accumulate_grad_batches(2));
    assert!(err.contains("accumulate_grad_batches") && err.contains("zero_grad"), "{err}");

    let mut t = trainer(&root, 1).no_logger().build().unwrap();
    let mut gan = fresh(&t);
    gan.automatic = true;
    let err = t.fit(gan, &mut TargetData).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("returns 2 optimizers") && err.contains("automatic_optimization = false"), "{err}");
}

#[test]
fn an_unknown_optimizer_name_lists_the_known_ones() {
    let _turn = crate::exclusive();
    let mut t = trainer(&temp_dir("gan-misnamed"), 1).no_logger().build().unwrap();
    let mut gan = fresh(&t);
    gan.discriminator_name = "critic";
    let err = t.fit(gan, &mut TargetData).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("no optimizer named `discriminator`") && err.contains("[0: generator, 1: critic]"), "{err}");
}
