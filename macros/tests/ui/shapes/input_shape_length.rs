use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 32])]
pub struct Net {
    #[layer(conv2d(3 -> 8, kernel = 3))]
    conv: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
