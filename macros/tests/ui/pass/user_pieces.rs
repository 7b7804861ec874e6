//! The derive with the user's own pieces: `forward_features` (a residual feature extractor),
//! the loss and a metric as methods, dropout from a hyperparameter, and a hyperparameter
//! struct with choices, a skipped field and doc comments, built at compile time.
#![deny(warnings)]

use fulmen::burn::tensor::activation::{log_softmax, relu};
use fulmen::loss::nll_loss;
use fulmen::prelude::*;

/// Hyperparameters of [`Net`].
#[hyperparameters]
pub struct NetConfig {
    /// Channels of the feature extractor.
    #[hparam(default = 4, choices = [4, 8])]
    pub channels: usize,
    /// Dropout before the head.
    #[hparam(default = 0.25, range = 0.0..1.0)]
    pub drop: f64,
    /// Not a property of the model.
    #[hparam(default = false, skip)]
    pub verbose: bool,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(
    hparams = NetConfig,
    input_shape = [4, 6, 6],
    forward_features = residual_features,
    loss = Self::label_smoothing_free_nll,
    metrics(accuracy, Self::mean_max_log_prob),
    optimizer = sgd(lr = 0.05)
)]
pub struct Net {
    #[layer(conv2d(4 -> channels, kernel = 3, padding = same), relu)]
    conv: Conv2d,
    #[layer(linear(auto -> 3), dropout(p = drop), log_softmax)]
    head: Linear,
    #[module(skip)]
    hparams: NetConfig,
}

impl Net {
    fn residual_features(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.conv.forward(x.clone()) + x)
    }

    fn label_smoothing_free_nll(&self, output: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        nll_loss(output, targets)
    }

    fn mean_max_log_prob(&self, output: Tensor<2>, _targets: Tensor<1, Int>) -> Tensor<1> {
        log_softmax(output, 1).max_dim(1).mean()
    }
}

const CONFIG: NetConfig = fulmen::hparams!(NetConfig::new().with_drop(0.5));

fn main() {
    let device = Device::flex();
    let model = Net::new(CONFIG, &device).expect("valid model");
    assert_eq!(model.forward(Tensor::zeros([2, 4, 6, 6], &device)).dims(), [2, 3]);
    let saved = model.hparams().expect("stored");
    assert_eq!(saved["drop"], 0.5);
    assert!(saved.to_yaml().expect("yaml").starts_with("# Channels of the feature extractor.\nchannels: 4\n"));
    assert!(NetConfig::new().with_overrides(&["verbose=true"]).is_err());
}
