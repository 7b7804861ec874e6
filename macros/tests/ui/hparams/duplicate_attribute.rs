use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(default = 0.1)]
    #[hparam(range = 0.0..1.0)]
    pub learning_rate: f64,
}

fn main() {}
