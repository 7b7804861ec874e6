use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(range = 1..3)]
    pub name: String,
}

fn main() {}
