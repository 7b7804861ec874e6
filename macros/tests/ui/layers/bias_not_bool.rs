use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg)]
pub struct Net {
    #[layer(linear(4 -> 2, bias = 1))]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
