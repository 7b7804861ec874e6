use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(defualt = 0.1)]
    pub learning_rate: f64,
}

fn main() {}
