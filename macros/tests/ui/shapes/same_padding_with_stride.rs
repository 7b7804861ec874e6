use fulmen::prelude::*;

#[hyperparameters]
pub struct Cfg {
    pub num_classes: usize,
}

// PyTorch refuses `padding = "same"` for strided convolutions; so do the macro and `new()`.
#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = Cfg, input_shape = [3, 8, 8])]
pub struct Net {
    #[layer(conv2d(3 -> 8, kernel = 3, padding = same, stride = 2))]
    conv: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
    #[module(skip)]
    hparams: Cfg,
}

fn main() {}
