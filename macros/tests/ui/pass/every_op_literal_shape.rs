//! Every op of the layer grammar, a literal input shape (checked at compile time), no
//! hyperparameters, and the derives in the other order: image ops, then sequence ops.
#![deny(warnings)]

use fulmen::prelude::*;

#[derive(LightningModule, Module, Debug)]
#[lightning(input_shape = [4, 16, 16], optimizer = sgd(lr = 0.01))]
pub struct Everything {
    #[layer(conv2d(4 -> 8, kernel = 3, padding = same), leaky_relu(0.2))]
    stem: Conv2d,
    #[layer(batch_norm, gelu)]
    norm: BatchNorm,
    #[layer(conv_transpose2d(8 -> 8, kernel = 3, padding = 1), upsample(2), max_pool(2))]
    transposed: ConvTranspose2d,
    #[layer(conv2d(auto -> 8, kernel = 3, stride = 2, padding = 1, groups = 2, bias = false), silu, avg_pool(2))]
    grouped: Conv2d,
    #[layer(conv2d(8 -> 16, kernel = 3, dilation = 2, padding = 2), tanh, max_pool(kernel = 2, stride = 1))]
    dilated: Conv2d,
    #[layer(conv2d(16 -> 16, kernel = 1, padding = valid), sigmoid, adaptive_avg_pool(2, 2), flatten)]
    pointwise: Conv2d,
    #[layer(linear(64 -> 10, bias = true), softmax)]
    head: Linear,
}

/// The sequence ops and a skip connection, on `[B, C, L]` inputs (the first op is a conv1d).
#[derive(LightningModule, Module, Debug)]
#[lightning(input_shape = [4, 32])]
pub struct EverySequenceOp {
    #[layer(conv1d(4 -> 12, kernel = 3, padding = same), gelu)]
    stem: Conv1d,
    #[layer(group_norm(groups = 3))]
    grouped: GroupNorm,
    #[layer(conv1d(12 -> 12, kernel = 3, dilation = 2, padding = 2, groups = 3, bias = false), residual(grouped), dropout(0.2))]
    dilated: Conv1d,
    #[layer(layer_norm, max_pool1d(kernel = 3, stride = 2, padding = 1), flatten)]
    norm: LayerNorm,
    #[layer(linear(192 -> 5), log_softmax)]
    head: Linear,
}

fn main() {
    let device = Device::flex();
    let model = Everything::new(&device).expect("valid model");
    assert_eq!(model.forward(Tensor::zeros([3, 4, 16, 16], &device)).dims(), [3, 10]);
    let model = EverySequenceOp::new(&device).expect("valid model");
    let batch: ClassificationBatch<3> = ClassificationBatch { inputs: Tensor::zeros([2, 4, 32], &device), targets: Tensor::zeros([2], &device) };
    assert_eq!(model.forward(batch.inputs).dims(), [2, 5]);
}
