//! The GAN example's generator and discriminator, derived with `#[derive(Layers)]`: a Burn
//! module's `new` and `forward` from its layer chains, without the steps. The generator's
//! forward returns images (the chain never becomes flat), the discriminator's one logit.
#![deny(warnings)]

use fulmen::prelude::*;

include!("../../../../examples/gan/networks.rs");

fn main() {
    let device = Device::flex();
    let generator = Generator::new(GanConfig::new(), &device).expect("valid generator");
    let discriminator = Discriminator::new(&device).expect("valid discriminator");
    let images: Tensor<4> = generator.forward(Tensor::zeros([2, 64, 1, 1], &device));
    assert_eq!(images.dims(), [2, 3, 32, 32]);
    let logits: Tensor<2> = discriminator.forward(images);
    assert_eq!(logits.dims(), [2, 1]);
    assert_eq!(discriminator.head.weight.dims(), [128 * 4 * 4, 1]);
    assert!(Generator::new(GanConfig::new().with_latent(0), &device).is_err());
}
