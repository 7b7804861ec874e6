use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [8, 5, 5])]
pub struct Net {
    #[layer(conv_transpose2d(8 -> 4, kernel = 3, padding = same))]
    up: ConvTranspose2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
