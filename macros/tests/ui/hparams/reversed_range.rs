use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(default = 5, range = 10..=1)]
    pub layers: u32,
}

fn main() {}
