use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(default = 5.0, range = 1e-6..=1.0)]
    pub learning_rate: f64,
}

fn main() {}
