//! A residual block with a hand-written constructor and forward still gets hparams saving,
//! step dispatch, logging and the optimizer from the derive.
#![deny(warnings)]

use fulmen::burn::nn::LinearConfig;
use fulmen::burn::nn::conv::Conv2dConfig;
use fulmen::burn::tensor::activation::relu;
use fulmen::prelude::*;

#[hyperparameters]
pub struct ResConfig {
    pub channels: usize,
    #[hparam(default = 1e-3, range = 0.0..1.0)]
    pub learning_rate: f64,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = ResConfig, init = build, forward = residual, metrics(accuracy), optimizer = adamw(lr = learning_rate))]
pub struct Residual {
    conv_a: Conv2d,
    conv_b: Conv2d,
    head: Linear,
    #[module(skip)]
    hparams: ResConfig,
}

impl Residual {
    fn build(hparams: ResConfig, device: &Device) -> fulmen::Result<Self> {
        let c = hparams.channels;
        let conv = || Conv2dConfig::new([c, c], [3, 3]).with_padding(fulmen::burn::nn::PaddingConfig2d::Same).init(device);
        Ok(Residual { conv_a: conv(), conv_b: conv(), head: LinearConfig::new(c, 2).init(device), hparams })
    }

    fn residual(&self, x: Tensor<4>) -> Tensor<2> {
        let y = self.conv_b.forward(relu(self.conv_a.forward(x.clone())));
        let pooled = relu(x + y).mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
        self.head.forward(pooled)
    }
}

fn main() {
    let device = Device::flex();
    let model = Residual::from_hparams(ResConfig::new(4), &device).expect("valid model");
    assert_eq!(LightningModule::forward(&model, Tensor::zeros([2, 4, 6, 6], &device)).dims(), [2, 2]);
    assert_eq!(model.hparams().expect("stored")["channels"], 4);
    assert_eq!(model.configure_optimizers().0[0].name, "AdamW(lr=0.001)");
}
