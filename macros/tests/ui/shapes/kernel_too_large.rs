use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg, input_shape = [3, 4, 4])]
pub struct Net {
    #[layer(conv2d(3 -> 8, kernel = 5))]
    conv: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
