use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg)]
pub struct Net {
    #[layer(conv2d(3 -> 8, kernal = 3))]
    conv: Conv2d,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
