use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [8, 6, 6])]
pub struct Net {
    #[layer(conv2d(8 -> 8, kernel = 3, padding = same), relu)]
    conv1: Conv2d,
    #[layer(conv2d(8 -> 8, kernel = 3, padding = same), residual(conv))]
    conv2: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
