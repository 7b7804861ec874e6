//! A small text classifier derived without hand-written layers: token ids → embedding →
//! conv1d → max_pool1d → linear. Its batch type, `ClassificationBatch<2, Int>`, follows from
//! its first op; sizes come from the hyperparameters and `auto`.
#![deny(warnings)]

use fulmen::prelude::*;

/// The classifier's hyperparameters.
#[hyperparameters]
pub struct TextConfig {
    /// Token ids are below this.
    #[hparam(default = 1000, range = 2..=1_000_000)]
    pub vocab: usize,
    /// Channels of each token's vector.
    #[hparam(default = 32, range = 1..=4096)]
    pub dim: usize,
    /// Classes.
    #[hparam(default = 4, range = 2..=1000)]
    pub num_classes: usize,
}

#[derive(Module, Debug, LightningModule)]
#[lightning(hparams = TextConfig, input_shape = [24], metrics(accuracy), optimizer = adamw(lr = 1e-3))]
pub struct TextClassifier {
    #[layer(embedding(vocab -> dim), dropout(0.1))]
    embed: Embedding,
    #[layer(conv1d(auto -> 64, kernel = 5, padding = 2), relu, max_pool1d(2))]
    conv: Conv1d,
    #[layer(layer_norm)]
    norm: LayerNorm,
    #[layer(linear(auto -> num_classes))]
    head: Linear,
    #[module(skip)]
    hparams: TextConfig,
}

fn takes_token_batches<M: LightningModule<Batch = ClassificationBatch<2, Int>, Input = Tensor<2, Int>>>(_: &M) {}

fn main() {
    let device = Device::flex();
    let model = TextClassifier::new(TextConfig::new(), &device).expect("valid model");
    takes_token_batches(&model);
    assert_eq!(model.head.weight.dims(), [64 * 12, 4]);
    assert_eq!(model.forward(Tensor::<2, Int>::zeros([3, 24], &device)).dims(), [3, 4]);
    let err = TextClassifier::new(TextConfig::new().with_dim(0), &device).unwrap_err().to_string();
    assert!(err.contains("dim") || err.contains("embedding"), "{err}");
}
