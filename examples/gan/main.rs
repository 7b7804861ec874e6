//! A DCGAN with manual optimization: two optimizers (generator, discriminator) over two parts
//! of one model, stepped in turn in `manual_training_step`, on generated 32×32 images of
//! coloured shapes (no download). Both networks are `#[derive(Layers)]`: their layers, shapes
//! and forward passes come from `#[layer(...)]` chains, as a LightningModule's do.
//!
//! ```text
//! cargo run --release --example gan                          # 5 epochs, CSV + TensorBoard
//! cargo run --release --example gan -- --fast-dev-run        # one batch
//! cargo run --release --example gan -- --precision bf16-mixed # f32 master weights, bf16 passes
//! cargo run --release --example gan -- --logger wandb        # a W&B offline run (wandb sync)
//! cargo run --release --example gan -- --ckpt-path last --max-epochs 10   # resume
//! ```
//!
//! Every epoch, 16 samples from fixed noise go to every logger as one image grid (`samples`)
//! and into the log folder as `samples_epoch=N.png`; `d_loss` and `g_loss` are logged per step.

use std::process::ExitCode;

use clap::Parser;
use fulmen::burn::tensor::{Distribution, TensorData};
use fulmen::hparams::SavedHparams;
use fulmen::loss::binary_cross_entropy_with_logits as bce;
use fulmen::prelude::*;
use fulmen::rng::SplitMix64;

include!("networks.rs");

/// The model: both networks, stepped by their own optimizers.
#[derive(Module, Debug)]
pub struct Dcgan {
    generator: Generator,
    discriminator: Discriminator,
    #[module(skip)]
    hparams: GanConfig,
}

impl Dcgan {
    pub fn new(hparams: GanConfig, device: &Device) -> fulmen::Result<Self> {
        Ok(Dcgan { generator: Generator::new(hparams.clone(), device)?, discriminator: Discriminator::new(device)?, hparams })
    }

    /// Images from noise `[B, latent]`.
    pub fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        let [batch, latent] = z.dims();
        self.generator.forward(z.reshape([batch, latent, 1, 1]))
    }

    /// One logit per image: high for real.
    pub fn discriminate(&self, images: Tensor<4>) -> Tensor<2> {
        self.discriminator.forward(images)
    }

    fn noise(&self, batch: usize, device: &Device) -> Tensor<2> {
        Tensor::random([batch, self.hparams.latent], Distribution::Normal(0.0, 1.0), device)
    }
}

impl LightningModule for Dcgan {
    type Batch = ClassificationBatch<4>;
    type Input = Tensor<2>;
    type Output = Tensor<4>;
    type Prediction = Tensor<4>;

    fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        self.generate(z)
    }

    fn automatic_optimization(&self) -> bool {
        false
    }

    /// The discriminator learns to tell real from generated images, then the generator learns
    /// to fool it (non-saturating loss), both with binary cross-entropy on logits (computed in
    /// f32 under a mixed precision, as autocast does).
    fn manual_training_step(step: &mut ManualStep<'_, Self>, batch: Self::Batch) -> fulmen::Result<()> {
        let real = batch.inputs;
        let z = step.module().noise(real.dims()[0], &real.device());

        let fake = step.module().generate(z.clone()).detach();
        let d_real = step.module().discriminate(real);
        let d_fake = step.module().discriminate(fake);
        // One-sided label smoothing (real = 0.9) keeps the discriminator from winning outright.
        let d_loss = bce(d_real.clone(), d_real.ones_like().mul_scalar(0.9)) + bce(d_fake.clone(), d_fake.zeros_like());
        step.manual_backward(d_loss.clone())?;
        let mut discriminator = step.optimizer("discriminator")?;
        discriminator.step()?;
        discriminator.zero_grad();

        step.toggle_optimizer("generator")?;
        let d_fooled = step.module().discriminate(step.module().generate(z));
        let g_loss = bce(d_fooled.clone(), d_fooled.ones_like());
        step.manual_backward(g_loss.clone())?;
        let mut generator = step.optimizer("generator")?;
        generator.step()?;
        generator.zero_grad();
        step.untoggle_optimizer();

        step.ctx.log_with("d_loss", &d_loss, LogOptions::new().on_epoch(true).prog_bar(true))?;
        step.ctx.log_with("g_loss", &g_loss, LogOptions::new().on_epoch(true).prog_bar(true))
    }

    fn configure_optimizers(&self) -> fulmen::Optimizers {
        let adam = || fulmen::adam_betas(self.hparams.learning_rate, self.hparams.beta1 as f32, 0.999);
        vec![adam().named("generator").on(&self.generator), adam().named("discriminator").on(&self.discriminator)].into()
    }

    fn hparams(&self) -> Option<SavedHparams> {
        self.hparams.saved().ok()
    }
}

/// Logs a 4×4 grid of samples from fixed noise after every training epoch.
struct SampleGrid {
    noise: Vec<f32>,
    latent: usize,
}

impl SampleGrid {
    const SIDE: usize = 4;

    fn new(latent: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let n = Self::SIDE * Self::SIDE * latent;
        // Box-Muller on a generator of its own, so the training's draws are untouched.
        let noise = (0..n)
            .map(|_| {
                let (u, v) = (rng.uniform(f64::EPSILON, 1.0), rng.uniform(0.0, 1.0));
                ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
            })
            .collect();
        SampleGrid { noise, latent }
    }

    /// The samples as one image, 2-pixel gaps between tiles.
    fn grid(&self, model: &Dcgan, device: &Device) -> fulmen::Result<fulmen::Image> {
        let n = Self::SIDE * Self::SIDE;
        let z = Tensor::<2>::from_data(TensorData::new(self.noise.clone(), [n, self.latent]), device);
        let images = model.valid().generate(z);
        let [_, _, h, w] = images.dims();
        let tiles: Vec<fulmen::Image> =
            (0..n).map(|i| fulmen::Image::from_tensor(images.clone().narrow(0, i, 1).reshape([3, h, w]), [0.5; 3], [0.5; 3])).collect::<fulmen::Result<_>>()?;
        let (gap, side) = (2, Self::SIDE);
        let (width, height) = (side * (w + gap) + gap, side * (h + gap) + gap);
        let mut rgb = vec![255u8; 3 * width * height];
        for (i, tile) in tiles.iter().enumerate() {
            let (x0, y0) = (gap + (i % side) * (w + gap), gap + (i / side) * (h + gap));
            for y in 0..h {
                for x in 0..w {
                    let at = 3 * ((y0 + y) * width + x0 + x);
                    rgb[at..at + 3].copy_from_slice(&tile.pixel(x as u32, y as u32));
                }
            }
        }
        fulmen::Image::from_rgb(width as u32, height as u32, rgb)
    }
}

impl Callback<Dcgan> for SampleGrid {
    fn on_train_epoch_end(&mut self, trainer: &mut TrainerView<'_, Dcgan>) -> fulmen::Result<()> {
        if trainer.state().fast_dev_run {
            return Ok(());
        }
        let device = trainer.module.discriminator.head.weight.device();
        let image = self.grid(trainer.module, &device)?.with_caption(format!("epoch {}", trainer.state().epoch));
        trainer.log_images("samples", std::slice::from_ref(&image))?;
        if let Some(dir) = trainer.state().log_dir.clone() {
            let path = dir.join(format!("samples_epoch={}.png", trainer.state().epoch));
            fulmen::fs::atomic_write(&path, &image.to_png()?)?;
        }
        Ok(())
    }
}

/// Train a DCGAN on generated images of coloured shapes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Epochs to train.
    #[arg(long, default_value_t = 5)]
    max_epochs: u64,
    /// Images per epoch.
    #[arg(long, default_value_t = 2048)]
    train_size: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// auto, cpu, cuda or wgpu.
    #[arg(long, default_value = "auto")]
    accelerator: String,
    /// 32-true, bf16-mixed, 16-mixed, bf16-true or 16-true (Lightning's names).
    #[arg(long, default_value = "32-true")]
    precision: String,
    /// Run one batch, then stop.
    #[arg(long)]
    fast_dev_run: bool,
    /// Seed for the weights, the noise and the data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where lightning_logs/ goes.
    #[arg(long, default_value = ".")]
    default_root_dir: std::path::PathBuf,
    /// Resume from a checkpoint: a path or `last`.
    #[arg(long, value_name = "PATH|last")]
    ckpt_path: Option<String>,
    /// Where to log (repeatable); default: csv and tensorboard.
    #[arg(long = "logger", value_enum)]
    loggers: Vec<LoggerKind>,
    /// The W&B project of `--logger wandb`.
    #[arg(long, default_value = "fulmen-gan")]
    wandb_project: String,
}

/// A logger for `--logger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LoggerKind {
    Csv,
    Tensorboard,
    Wandb,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ fulmen::Error::Interrupted { .. }) => {
            eprintln!("{e}; resume with --ckpt-path last");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> fulmen::Result<()> {
    let config = GanConfig::new();
    let mut builder = Trainer::builder()
        .max_epochs(args.max_epochs)
        .accelerator(args.accelerator.parse()?)
        .precision(args.precision.parse()?)
        .seed(args.seed)
        .fast_dev_run(usize::from(args.fast_dev_run))
        .limit_val_batches(0)
        .default_root_dir(&args.default_root_dir)
        .callback(SampleGrid::new(config.latent, args.seed))
        .callback(ModelCheckpoint::default().save_last(true));
    let kinds = if args.loggers.is_empty() { vec![LoggerKind::Csv, LoggerKind::Tensorboard] } else { args.loggers.clone() };
    for kind in kinds {
        builder = match kind {
            LoggerKind::Csv => builder.logger(CsvLogger::default_root()),
            LoggerKind::Tensorboard => builder.logger(TensorBoardLogger::default_root()),
            LoggerKind::Wandb => builder.logger(WandbLogger::new(&args.wandb_project).job_type("train")),
        };
    }
    let mut trainer = builder.build()?;
    let model = Dcgan::new(config, trainer.device())?;
    let mut data = SyntheticDataModule::new(args.seed).sizes(args.train_size, 0, 0).batch_size(args.batch_size);
    let start = std::time::Instant::now();
    match &args.ckpt_path {
        Some(ckpt) => trainer.fit_from(model, &mut data, ckpt.as_str())?,
        None => trainer.fit(model, &mut data)?,
    };
    let state = trainer.state();
    let metric = |name: &str| state.callback_metrics.get(name).map_or("-".into(), |v| format!("{v:.4}"));
    println!(
        "Trained {} epochs ({} optimizer steps) in {:.1}s: d_loss {}, g_loss {}{}",
        state.epoch,
        state.global_step,
        start.elapsed().as_secs_f64(),
        metric("d_loss_epoch"),
        metric("g_loss_epoch"),
        state.log_dir.as_ref().map(|d| format!("; samples and logs in {}", d.display())).unwrap_or_default()
    );
    Ok(())
}
