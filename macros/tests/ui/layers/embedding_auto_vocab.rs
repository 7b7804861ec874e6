use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [12])]
pub struct Net {
    #[layer(embedding(auto -> 8))]
    embed: Embedding,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

fn main() {}
