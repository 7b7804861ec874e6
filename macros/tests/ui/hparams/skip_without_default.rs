use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    pub learning_rate: f64,
    #[hparam(skip)]
    pub workers: usize,
}

fn main() {}
