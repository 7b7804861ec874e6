use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [4, 16])]
pub struct Net {
    #[layer(conv1d(4 -> 8, kernel = 3), max_pool1d(2, strid = 2))]
    conv: Conv1d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
