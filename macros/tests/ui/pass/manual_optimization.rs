//! Manual optimization from the derive: `automatic_optimization = false` with the step named
//! by `training_step`, two optimizers over two parts of the model, each stepped by name.
#![deny(warnings)]

use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 32, 32], automatic_optimization = false, training_step = manual, configure_optimizers = optimizers)]
pub struct Net {
    #[layer(conv2d(3 -> 4, kernel = 3, stride = 2), relu, adaptive_avg_pool(1, 1))]
    body: Conv2d,
    #[layer(linear(4 -> 10))]
    head: Linear,
}

impl Net {
    fn manual(step: &mut ManualStep<'_, Self>, batch: ClassificationBatch<4>) -> fulmen::Result<()> {
        let loss = fulmen::loss::cross_entropy(step.module().forward(batch.inputs), batch.targets);
        step.manual_backward(loss.clone())?;
        for name in ["body", "head"] {
            let mut optimizer = step.optimizer(name)?;
            optimizer.step()?;
            optimizer.zero_grad();
        }
        step.ctx.log("train_loss", &loss)
    }

    fn optimizers(&self) -> Vec<OptimizerConfig> {
        vec![fulmen::sgd(0.1).named("body").on(&self.body), fulmen::adam(1e-3).named("head").on(&self.head)]
    }
}

fn main() {
    let mut trainer = Trainer::builder().fast_dev_run(1).enable_model_summary(false).enable_progress_bar(false).build().expect("trainer");
    let model = Net::new(trainer.device()).expect("valid model");
    assert!(!model.automatic_optimization());
    let mut data = SyntheticDataModule::new(0).sizes(8, 8, 8).batch_size(4);
    trainer.fit(model, &mut data).expect("fit");
    assert_eq!(trainer.state().global_step, 2, "one step per optimizer");
}
