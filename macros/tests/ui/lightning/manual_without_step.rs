use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(automatic_optimization = false)]
pub struct Net {
    #[layer(linear(4 -> 2))]
    fc: Linear,
}

fn main() {}
