use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(default = f64::NAN)]
    pub learning_rate: f64,
}

fn main() {}
