use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
pub struct Net {
    #[layer(linear(4 -> num_classes))]
    fc: Linear,
}

fn main() {}
