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
    for precision in ["bf16-mixed", "16-mixed", "bf16-true"] {
        let mut t = trainer::<Probe>(precision);
        let start = Probe::new(t.device(), vec![1.0]);
        let before = start.values();
        let model = t.fit(start, &mut PointsData { train: 32, val: 8, batch: 8 }).unwrap();
        let expected = if precision.ends_with("mixed") { DType::F32 } else { DType::BF16 };
        assert_eq!(model.linear.weight.val().dtype(), expected, "{precision}");
        let after: Vec<f32> = model.linear.weight.val().into_data().convert::<f32>().try_to_vec().unwrap();
        assert_ne!(after, before[..4], "{precision}: it trained");
        let predictions = t.predict(&model, &mut PointsData { train: 0, val: 4, batch: 4 }).unwrap();
        assert_eq!(predictions[0].dims(), [4, 2]);
    }
}

/// A linear model whose step multiplies by a matrix it makes in f32.
#[derive(Module, Debug)]
pub struct MakesF32 {
    linear: Linear,
}

impl LightningModule for MakesF32 {
    type Batch = ClassificationBatch<2>;
    type Input = Tensor<2>;
    type Output = Tensor<2>;
    type Prediction = Tensor<2>;

    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let mix = Tensor::<2>::ones([2, 2], &input.device());
        self.linear.forward(input).matmul(mix)
    }
    fn training_step(&self, batch: Self::Batch, _ctx: &mut StepContext) -> fulmen::Result<Tensor<1>> {
        Ok(cross_entropy(self.forward(batch.inputs), batch.targets))
    }
    fn configure_optimizers(&self) -> fulmen::Optimizers {
        fulmen::sgd(0.1).into()
    }
}

#[test]
fn a_tensor_made_in_f32_inside_a_low_precision_step_is_an_error_with_the_fix() {
    let mut t = trainer::<MakesF32>("bf16-mixed");
    let model = MakesF32 { linear: LinearConfig::new(2, 2).init(t.device()) };
    let err = t.fit(model, &mut PointsData { train: 16, val: 0, batch: 8 }).unwrap_err().to_string();
    assert!(err.contains("the first training step failed under precision bf16-mixed"), "{err}");
    assert!(err.contains("BF16") && err.contains("fulmen::precision::cast"), "{err}");
    // The same model trains in 32-true.
    let mut t = trainer::<MakesF32>("32-true");
    t.fit(MakesF32 { linear: LinearConfig::new(2, 2).init(t.device()) }, &mut PointsData { train: 16, val: 0, batch: 8 }).unwrap();
}
