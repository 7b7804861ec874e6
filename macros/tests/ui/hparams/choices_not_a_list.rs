use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(default = 32, choices = 16..64)]
    pub width: usize,
    #[hparam(default = 32, choices = [])]
    pub height: usize,
}

fn main() {}
