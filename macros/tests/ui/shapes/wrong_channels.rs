use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg, input_shape = [3, 32, 32])]
pub struct Net {
    #[layer(conv2d(1 -> 8, kernel = 3))]
    conv: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
