//! The tutorial's CNN, derived, compiles without warnings and runs a forward pass.
#![deny(warnings)]

use fulmen::prelude::*;

#[hyperparameters]
pub struct LitConfig {
    pub input_shape: [usize; 3],
    pub num_classes: usize,
    #[hparam(default = 2e-4, range = 1e-6..=1.0)]
    pub learning_rate: f64,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = LitConfig, loss = nll, metrics(accuracy), optimizer = adam(lr = learning_rate))]
pub struct LitModel {
    #[layer(conv2d(3 -> 32, kernel = 3), relu)]
    conv1: Conv2d,
    #[layer(conv2d(32 -> 32, kernel = 3), relu, max_pool(2))]
    conv2: Conv2d,
    #[layer(conv2d(32 -> 64, kernel = 3), relu)]
    conv3: Conv2d,
    #[layer(conv2d(64 -> 64, kernel = 3), relu, max_pool(2))]
    conv4: Conv2d,
    #[layer(linear(auto -> 512), relu)]
    fc1: Linear,
    #[layer(linear(512 -> 128), relu)]
    fc2: Linear,
    #[layer(linear(128 -> num_classes), log_softmax)]
    fc3: Linear,
    #[module(skip)]
    hparams: LitConfig,
}

fn main() {
    let device = Device::flex();
    let model = LitModel::new(LitConfig::new([3, 32, 32], 10), &device).expect("valid model");
    assert_eq!(model.forward_features(Tensor::zeros([2, 3, 32, 32], &device)).dims(), [2, 64, 5, 5]);
    assert_eq!(model.forward(Tensor::zeros([2, 3, 32, 32], &device)).dims(), [2, 10]);
    assert_eq!(model.configure_optimizers().0[0].name, "Adam(lr=0.0002)");
}
