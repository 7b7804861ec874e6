//! Hand-written steps in a low precision: the batch's inputs are cast to the compute dtype, so
//! a `forward` that calls Burn's layers directly trains; a tensor the step makes in f32 is an
//! error naming the precision and the fix, not Burn's panic.

use fulmen::burn::nn::{Linear, LinearConfig};
use fulmen::burn::tensor::DType;
use fulmen::loss::cross_entropy;
use fulmen::prelude::*;

use crate::probe::{PointsData, Probe};

fn trainer<M: LightningModule>(precision: &str) -> Trainer<M> {
    Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .precision(precision.parse().unwrap())
        .max_epochs(2)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .build()
        .unwrap()
}

#[test]
fn a_hand_written_forward_trains_in_every_precision() {
    for precision in ["bf16-mixed", "16-mixed", "bf16-true", "16-true"] {
        let mut t = trainer::<Probe>(precision);
        let start = Probe::new(t.device(), vec![1.0]);
        let before = start.values();
        let model = t.fit(start, &mut PointsData { train: 32, val: 8, batch: 8 }).unwrap();
        let expected = match precision {
            "bf16-true" => DType::BF16,
            "16-true" => DType::F16,
            _ => DType::F32,
        };
        assert_eq!(model.linear.weight.val().dtype(), expected, "{precision}");
        let after: Vec<f32> = model.linear.weight.val().into_data().convert::<f32>().try_to_vec().unwrap();
        assert_ne!(after, before[..4], "{precision}: it trained");
        let predictions = t.predict(&model, &mut PointsData { train: 0, val: 4, batch: 4 }).unwrap();
        assert_eq!(predictions[0].dims(), [4, 2]);
    }
}

/// What goes wrong in a [`Faulty`] model's forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// A matmul with a matrix it makes in f32.
    MatmulF32,
    /// An elementwise add of a tensor it makes in f32.
    AddF32,
    /// Inputs scaled by 10^5: past f16's largest value, 65,504.
    Overflow,
}

/// A linear model whose forward pass does `fault`.
#[derive(Module, Debug)]
pub struct Faulty {
    linear: Linear,
    #[module(skip)]
    fault: Fault,
}

impl Faulty {
    fn new(fault: Fault, device: &Device) -> Self {
        Faulty { linear: LinearConfig::new(2, 2).init(device), fault }
    }
}

impl LightningModule for Faulty {
    type Batch = ClassificationBatch<2>;
    type Input = Tensor<2>;
    type Output = Tensor<2>;
    type Prediction = Tensor<2>;

    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let ([batch, _], device) = (input.dims(), input.device());
        match self.fault {
            Fault::MatmulF32 => self.linear.forward(input).matmul(Tensor::<2>::ones([2, 2], &device)),
            Fault::AddF32 => self.linear.forward(input) + Tensor::<2>::ones([batch, 2], &device),
            Fault::Overflow => self.linear.forward(input.mul_scalar(1e5)),
        }
    }
    fn training_step(&self, batch: Self::Batch, _ctx: &mut StepContext) -> fulmen::Result<Tensor<1>> {
        Ok(cross_entropy(self.forward(batch.inputs), batch.targets))
    }
    fn configure_optimizers(&self) -> fulmen::Optimizers {
        fulmen::adam(1e-3).into()
    }
}

fn fit_error(precision: &str, fault: Fault) -> String {
    let mut t = trainer::<Faulty>(precision);
    let model = Faulty::new(fault, t.device());
    t.fit(model, &mut PointsData { train: 16, val: 0, batch: 8 }).unwrap_err().to_string()
}

#[test]
fn a_tensor_made_in_f32_inside_a_low_precision_step_is_an_error_with_the_fix() {
    // A matmul and an elementwise add: flex checks both operands' dtypes in release builds too
    // (its typed storage access asserts), so neither computes on reinterpreted bytes.
    for fault in [Fault::MatmulF32, Fault::AddF32] {
        let err = fit_error("bf16-mixed", fault);
        assert!(err.contains("the first training step failed under precision bf16-mixed"), "{fault:?}: {err}");
        assert!(err.contains("BF16") && err.contains("F32") && err.contains("fulmen::precision::cast"), "{fault:?}: {err}");
        // The same model trains in 32-true.
        let mut t = trainer::<Faulty>("32-true");
        t.fit(Faulty::new(fault, t.device()), &mut PointsData { train: 16, val: 0, batch: 8 }).unwrap();
    }
}

#[test]
fn an_f16_overflow_under_16_true_is_an_error_naming_the_precisions_that_avoid_it() {
    let err = fit_error("16-true", Fault::Overflow);
    assert!(err.contains("under 16-true") && err.contains("65,504") && err.contains("16-mixed") && err.contains("bf16-true"), "{err}");
}

/// The GAN example (manual optimization, two optimizers, derived networks, its BCE loss from
/// `fulmen::loss`) for one batch in each mixed precision, as built by `cargo test`.
#[test]
fn the_gan_example_takes_a_batch_in_each_mixed_precision() {
    let example = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/gan");
    let run = |precision: &str| {
        let output = std::process::Command::new(&example)
            .current_dir(crate::probe::temp_dir("gan-precision"))
            .env("XDG_RUNTIME_DIR", crate::probe::temp_dir("runtime-dir"))
            .args(["--fast-dev-run", "--accelerator", "cpu", "--train-size", "32", "--batch-size", "16", "--precision", precision])
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr))
    };
    for precision in ["bf16-mixed", "16-mixed"] {
        let (code, output) = run(precision);
        assert_eq!(code, Some(0), "{precision}: {output}");
        let d_loss: f64 = output.split("d_loss ").nth(1).and_then(|s| s.split(',').next()).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        assert!(d_loss.is_finite() && d_loss > 0.0, "{precision}: a finite discriminator loss: {output}");
    }
    let (code, output) = run("fp8");
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("precision `fp8` is not one of"), "{output}");
}
