use fulmen::prelude::*;

#[hyperparameters]
pub struct LitConfig {
    #[hparam(default = 32, choices = [16, 32, 64])]
    pub batch_size: usize,
}

fn main() {
    let hp = hparams!(LitConfig::new().with_batch_size(48));
    let _ = hp;
}
