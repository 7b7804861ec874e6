//! The grammar's upsampling ops train: a derived model that shrinks, grows again with
//! `conv_transpose2d` and `upsample`, and classifies learns the synthetic shapes, and the
//! transposed layer's weights move (its gradient flows through `upsample`).

use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 32, 32], metrics(accuracy), optimizer = adam(lr = 0.005))]
pub struct UpDown {
    #[layer(conv2d(3 -> 8, kernel = 3, stride = 2, padding = 1), relu)]
    down: Conv2d,
    #[layer(conv_transpose2d(8 -> 8, kernel = 4, stride = 2, padding = 1), relu, max_pool(4), upsample(2), max_pool(4))]
    up: ConvTranspose2d,
    #[layer(linear(auto -> 10))]
    head: Linear,
}

#[test]
fn a_model_with_transposed_convolution_and_upsampling_learns() {
    let mut dm = SyntheticDataModule::new(4).sizes(512, 64, 128).batch_size(32).num_workers(2);
    let mut trainer = Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .seed(2)
        .max_epochs(3)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .no_logger()
        .build()
        .unwrap();
    let model = UpDown::new(trainer.device()).unwrap();
    let before = model.up.weight.val().into_data();
    let model = trainer.fit(model, &mut dm).unwrap();
    assert_ne!(model.up.weight.val().into_data(), before, "the transposed layer did not train");
    let metrics = trainer.test(&model, &mut dm).unwrap();
    assert!(metrics["test_acc"] > 0.3, "chance is 0.1: {metrics:?}");
}
