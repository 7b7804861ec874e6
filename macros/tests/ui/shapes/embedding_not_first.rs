use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]

pub struct Net {
    #[layer(linear(4 -> 8))]
    fc: Linear,
    #[layer(embedding(100 -> 8))]
    embed: Embedding,
}

fn main() {}
