use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
pub struct Net {
    #[layer(linear(4 -> 8), relu, dropout(1.5))]
    fc1: Linear,
    #[layer(linear(8 -> 2), dropout)]
    fc2: Linear,
}

fn main() {}
