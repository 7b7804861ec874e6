use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(range = 3..3)]
    pub layers: u32,
}

fn main() {}
