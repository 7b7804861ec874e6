use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg, loss = cross_entropy)]
pub struct Net {
    #[layer(linear(4 -> 2), log_softmax)]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
