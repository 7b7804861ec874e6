use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg)]
pub struct Net {
    #[layer(linear(4 -> 2))]
    fc: Linear,
    extra: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
