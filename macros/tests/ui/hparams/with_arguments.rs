use fulmen::prelude::*;

#[hyperparameters(strict)]
pub struct Config {
    pub learning_rate: f64,
}

fn main() {}
