use fulmen::prelude::*;

// PyTorch: output_padding must be smaller than the stride or the dilation.
#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [8, 5, 5])]
pub struct Net {
    #[layer(conv_transpose2d(8 -> 4, kernel = 3, stride = 2, output_padding = 2))]
    up: ConvTranspose2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
