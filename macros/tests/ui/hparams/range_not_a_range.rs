use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(range = 5)]
    pub layers: u32,
}

fn main() {}
