use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 8, 8])]
pub struct Net {
    #[layer(conv2d(3 -> 12, kernel = 3), relu)]
    conv: Conv2d,
    #[layer(group_norm(5))]
    norm: GroupNorm,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
