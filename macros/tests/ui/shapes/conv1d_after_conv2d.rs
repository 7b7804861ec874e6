use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 16, 16])]
pub struct Net {
    #[layer(conv2d(3 -> 8, kernel = 3))]
    conv: Conv2d,
    #[layer(conv1d(8 -> 8, kernel = 3))]
    seq: Conv1d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
