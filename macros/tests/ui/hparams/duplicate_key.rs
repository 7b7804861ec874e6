use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(default = 0.1, default = 0.2)]
    pub learning_rate: f64,
}

fn main() {}
