//! The tutorial's CNN, shared by the integration tests and the benchmark (the example keeps its
//! own copy so it reads on its own).

use fulmen::prelude::*;

/// Hyperparameters of [`SeedCnn`].
#[hyperparameters]
pub struct SeedConfig {
    /// Shape of one image.
    pub input_shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// Adam's learning rate.
    #[hparam(default = 2e-4, range = 1e-6..=1.0)]
    pub learning_rate: f64,
}

/// conv(3→32) conv(32→32) pool conv(32→64) conv(64→64) pool fc(auto→512) fc(512→128) fc(128→classes).
#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = SeedConfig, loss = nll, metrics(accuracy), optimizer = adam(lr = learning_rate))]
pub struct SeedCnn {
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
    hparams: SeedConfig,
}
