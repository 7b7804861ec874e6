use fulmen::prelude::*;

#[derive(Debug, Clone)]
pub struct Plain {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Plain)]
pub struct Net {
    #[layer(linear(4 -> 2))]
    fc: Linear,
    #[module(skip)]
    hparams: Plain,
}

fn main() {}
