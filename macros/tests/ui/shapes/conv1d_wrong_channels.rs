use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [10])]
pub struct Net {
    #[layer(embedding(100 -> 16))]
    embed: Embedding,
    #[layer(conv1d(8 -> 8, kernel = 3))]
    conv: Conv1d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
