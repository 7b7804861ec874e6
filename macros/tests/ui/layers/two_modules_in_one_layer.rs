use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg)]
pub struct Net {
    #[layer(linear(4 -> 8), linear(8 -> 2))]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
