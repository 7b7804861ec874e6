use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg, input_shape = [3, 8, 8])]
pub struct Net {
    #[layer(conv2d(3 -> 8, kernel = 3), max_pool(2))]
    conv1: Conv2d,
    #[layer(conv2d(8 -> 8, kernel = 3), max_pool(2))]
    conv2: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
