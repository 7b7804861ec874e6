// The GAN's hyperparameters and its two networks, derived from their layer chains. Included by
// the example (`main.rs`) and by the macros' trybuild pass case `gan_layers.rs`, so the pass case
// builds exactly the example's networks; the includer brings `use fulmen::prelude::*`.

/// The GAN's hyperparameters (saved to hparams.yaml and checkpoints).
#[hyperparameters]
pub struct GanConfig {
    /// Size of the noise vector.
    #[hparam(default = 64, range = 1..=1024)]
    pub latent: usize,
    /// Adam's learning rate, both networks (DCGAN: 2e-4).
    #[hparam(default = 2e-4, range = 1e-6..=1.0)]
    pub learning_rate: f64,
    /// Adam's beta1 (DCGAN: 0.5).
    #[hparam(default = 0.5, range = 0.0..1.0)]
    pub beta1: f64,
}

/// Noise `[latent, 1, 1]` → 128×4×4 → 64×8×8 → 32×16×16 → 3×32×32 in [-1, 1] (DCGAN's generator).
#[derive(Module, Debug, Layers)]
#[layers(hparams = GanConfig)]
pub struct Generator {
    #[layer(conv_transpose2d(latent -> 128, kernel = 4, bias = false))]
    project: ConvTranspose2d,
    #[layer(batch_norm, relu)]
    norm0: BatchNorm,
    #[layer(conv_transpose2d(128 -> 64, kernel = 4, stride = 2, padding = 1, bias = false))]
    up1: ConvTranspose2d,
    #[layer(batch_norm, relu)]
    norm1: BatchNorm,
    #[layer(conv_transpose2d(64 -> 32, kernel = 4, stride = 2, padding = 1, bias = false))]
    up2: ConvTranspose2d,
    #[layer(batch_norm, relu)]
    norm2: BatchNorm,
    #[layer(conv_transpose2d(32 -> 3, kernel = 4, stride = 2, padding = 1), tanh)]
    up3: ConvTranspose2d,
    #[module(skip)]
    hparams: GanConfig,
}

/// 3×32×32 → 32×16×16 → 64×8×8 → 128×4×4 → one logit (DCGAN's discriminator).
#[derive(Module, Debug, Layers)]
#[layers(input_shape = [3, 32, 32])]
pub struct Discriminator {
    #[layer(conv2d(3 -> 32, kernel = 4, stride = 2, padding = 1), leaky_relu(0.2))]
    down1: Conv2d,
    #[layer(conv2d(32 -> 64, kernel = 4, stride = 2, padding = 1, bias = false))]
    down2: Conv2d,
    #[layer(batch_norm, leaky_relu(0.2))]
    norm2: BatchNorm,
    #[layer(conv2d(64 -> 128, kernel = 4, stride = 2, padding = 1), leaky_relu(0.2))]
    down3: Conv2d,
    #[layer(linear(auto -> 1))]
    head: Linear,
}
