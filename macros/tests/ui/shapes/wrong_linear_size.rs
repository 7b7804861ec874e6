use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg, input_shape = [3, 32, 32])]
pub struct Net {
    #[layer(conv2d(3 -> 32, kernel = 3), relu, max_pool(2))]
    conv: Conv2d,
    #[layer(linear(1000 -> num_classes))]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
