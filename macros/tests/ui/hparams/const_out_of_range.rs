use fulmen::prelude::*;

#[hyperparameters]
pub struct LitConfig {
    pub num_classes: usize,
    #[hparam(default = 2e-4, range = 1e-6..=1.0)]
    pub learning_rate: f64,
}

const HP: LitConfig = fulmen::hparams!(LitConfig::new(10).with_learning_rate(5.0));

fn main() {
    let _ = HP;
}
