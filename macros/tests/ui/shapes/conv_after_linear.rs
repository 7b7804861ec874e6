use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg)]
pub struct Net {
    #[layer(linear(4 -> 8))]
    fc: Linear,
    #[layer(conv2d(8 -> 8, kernel = 1))]
    conv: Conv2d,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
