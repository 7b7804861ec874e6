use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [8, 6, 6])]
pub struct Net {
    #[layer(conv2d(8 -> 8, kernel = 3), relu)]
    conv1: Conv2d,
    #[layer(conv2d(8 -> 8, kernel = 1), residual(conv1))]
    conv2: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
