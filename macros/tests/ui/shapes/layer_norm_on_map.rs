use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 8, 8])]
pub struct Net {
    #[layer(conv2d(3 -> 12, kernel = 3), relu)]
    conv: Conv2d,
    #[layer(layer_norm)]
    norm: LayerNorm,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
